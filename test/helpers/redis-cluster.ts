/**
 * A real local Redis Cluster for tests: three `redis-server --cluster-enabled yes`
 * on free loopback ports, joined with `redis-cli --cluster create …
 * --cluster-replicas 0 --cluster-yes`, ready when every node reports
 * `cluster_state:ok`.
 *
 * - `REDIS_CLUSTER_URLS` (comma separated root node URLs such as
 *   `redis://127.0.0.1:7000`) borrows an existing cluster; we never stop it.
 * - Missing `redis-server`/`redis-cli`: like `servers.ts`, a loud skip
 *   (`{ skip: skipReason('redis-cluster') }`), and a thrown error under `CI`.
 *
 * Every node we start is stopped by its PID only (and killed if this process
 * exits first, through `servers.ts`).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  findBinary,
  freePort,
  makeTempDir,
  missingServer,
  probeTcp,
  removeDir,
  startProcess,
  stopProcess,
  waitUntil,
  type ManagedProcess,
} from './servers.js';

const run = promisify(execFile);

/** A running (or borrowed) cluster. */
export interface RedisCluster {
  /** Root node URLs, for `createCluster({ rootNodes: cluster.urls.map((url) => ({ url })) })`. */
  readonly urls: string[];
  /** True when borrowed through `REDIS_CLUSTER_URLS`. */
  readonly external: boolean;
  /** Ports of the nodes we started (empty when external). */
  readonly ports: number[];
  /** Stop the nodes we started and remove their directory. Idempotent; a no-op when external. */
  stop(): Promise<void>;
}

/** Skip key for `skipReason('redis-cluster')`. */
export const CLUSTER_KIND = 'redis-cluster';

/** Two free ports whose cluster bus port (port + 10000) is usable too. */
async function nodePort(taken: number[]): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = await freePort();
    if (port + 10_000 <= 65_535 && !taken.includes(port) && !taken.includes(port + 10_000)) return port;
  }
  throw new Error('no free port (with a free cluster bus port) for a Redis Cluster node');
}

/**
 * Start a 3-master cluster on loopback (or borrow `REDIS_CLUSTER_URLS`).
 * `undefined` when the binaries are missing (after a loud message; throws under `CI`).
 */
export async function redisCluster(): Promise<RedisCluster | undefined> {
  const env = process.env.REDIS_CLUSTER_URLS;
  if (env) {
    const urls = env
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    return { urls, external: true, ports: [], stop: async () => {} };
  }
  const server = await findBinary('redis-server');
  const cli = await findBinary('redis-cli');
  if (!server || !cli) {
    return missingServer(
      CLUSTER_KIND,
      'redis-server/redis-cli not found on PATH: install them (apt-get install -y redis-server redis-tools) or set REDIS_CLUSTER_URLS',
    );
  }

  const dir = await makeTempDir('redis-cluster');
  const procs: ManagedProcess[] = [];
  const ports: number[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(procs.map((p) => stopProcess(p)));
    await removeDir(dir);
  };

  try {
    for (let i = 0; i < 3; i++) {
      let started = false;
      // A port taken between our probe and the bind: try another one.
      for (let attempt = 0; attempt < 5 && !started; attempt++) {
        const port = await nodePort(ports);
        const proc = await startProcess(
          server,
          [
            '--port',
            String(port),
            '--bind',
            '127.0.0.1',
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, `nodes-${port}.conf`),
            '--dir',
            dir,
            '--save',
            '',
            '--appendonly',
            'no',
          ],
          { cwd: dir, logFile: join(dir, `node-${port}.log`) },
        );
        try {
          await waitUntil(() => probeTcp(port, 'PING\r\n', '+PONG'), { what: `redis-server (cluster node) on 127.0.0.1:${port}`, proc });
          procs.push(proc);
          ports.push(port);
          started = true;
        } catch (error) {
          await stopProcess(proc);
          if (attempt === 4) throw error;
        }
      }
    }
    await run(cli, ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    // No event announces that every node has converged on the slot map.
    for (const port of ports) {
      await waitUntil(
        async () => (await run(cli, ['-h', '127.0.0.1', '-p', String(port), 'cluster', 'info'])).stdout.includes('cluster_state:ok'),
        { what: `Redis Cluster node 127.0.0.1:${port} reaching cluster_state:ok`, timeoutMs: 30_000, intervalMs: 50 },
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { urls: ports.map((p) => `redis://127.0.0.1:${p}`), external: false, ports, stop };
}
