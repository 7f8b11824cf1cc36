/**
 * A Redis Sentinel setup for failover tests, from the `redis-server` binary on
 * free loopback ports: a primary, one replica and three Sentinels (quorum 2),
 * each in its own temp dir (Sentinel rewrites its config file, so it is
 * written there), stopped by PID. `down-after-milliseconds 500` and
 * `failover-timeout 2000` keep a failover within a few seconds. The data
 * nodes run with `replica-serve-stale-data no`, as docs/redis-sentinel.md asks.
 *
 * `pauseReplica()` SIGSTOPs the replica and cuts its replication link
 * (`CLIENT KILL TYPE replica` on the primary), so that what the primary
 * writes from then on is acknowledged to clients but never replicated (a
 * lagging replica, made certain rather than left to timing); `killPrimary()` SIGKILLs the
 * current primary, SIGCONTs a paused replica, and waits (polling
 * `SENTINEL get-master-addr-by-name`: Sentinel has no event we could await
 * from outside) until the Sentinels name another primary; `rejoin()` starts
 * the killed one again as a replica of the new primary, so saves that wait
 * for a replica can be confirmed again.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from 'redis';
import { findBinary } from './binaries.js';
import { waitUntil } from './process.js';
import { missingServer } from './skip.js';
import { startServer, type StartedServer } from './started-server.js';
import { probeTcp } from './tcp-probe.js';

/** The name the Sentinels monitor the primary under. */
export const MASTER_NAME = 'mymaster';

export interface SentinelSetup {
  /** The Sentinels' ports (what `createSentinel({ sentinelRootNodes })` / ioredis `sentinels` get). */
  readonly sentinelPorts: readonly number[];
  /** The ports of the two data nodes (the primary and the replica, in either role). */
  readonly dataPorts: readonly number[];
  /** The port of the primary the Sentinels name now. */
  masterPort(): Promise<number>;
  /** SIGSTOP the replica (of the current primary): the primary's writes from now on are not replicated. */
  pauseReplica(): Promise<void>;
  /** SIGKILL the current primary (then SIGCONT a paused replica); resolves with the new primary's port once the Sentinels name it. */
  killPrimary(): Promise<{ killed: number; promoted: number }>;
  /** Start the killed server again, as a replica of the current primary, and wait until it is in sync. */
  rejoin(): Promise<void>;
  /** Stop every process we started (by PID) and remove their dirs. Idempotent. */
  stop(): Promise<void>;
}

/** One `SENTINEL …` (or any) command to 127.0.0.1:`port` on a short-lived connection. */
async function command(port: number, args: string[]): Promise<unknown> {
  const client = createClient({ socket: { host: '127.0.0.1', port, connectTimeout: 1000, reconnectStrategy: false } });
  client.on('error', () => {});
  await client.connect();
  try {
    return await client.sendCommand(args);
  } finally {
    client.destroy();
  }
}

/** The replication section of `INFO` on `port`. */
async function replication(port: number): Promise<string> {
  return String(await command(port, ['INFO', 'replication']));
}

/** Start the setup; `undefined` (skipped, or a failure under CI=true) without `redis-server`. */
export async function redisSentinel(): Promise<SentinelSetup | undefined> {
  const binary = await findBinary('redis-server');
  if (!binary) return missingServer('redis', 'redis-server not found on PATH: install it (apt-get install -y redis-server redis-tools)');

  /** A data node; `replicaOf()` is read at every (re)start, so a rejoin starts as a replica. */
  const dataNode = (replicaOf: () => number | undefined) =>
    startServer({
      name: 'redis-sentinel-data',
      binary,
      args: (port, dir) => {
        const of = replicaOf();
        return [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
          // A restarted old primary loads the RDB of its last sync as a replica
          // and would answer reads with it until it caught up; a client whose
          // Sentinel still names it as primary would read that old data.
          '--replica-serve-stale-data',
          'no',
          ...(of ? ['--replicaof', '127.0.0.1', String(of)] : []),
        ];
      },
      ready: (port) => probeTcp(port, 'PING\r\n', '+PONG'),
      url: (port) => `redis://127.0.0.1:${port}`,
    });

  const started: StartedServer[] = [];
  const stopAll = () => Promise.all(started.map((s) => s.stop()));
  try {
    /** The primary a rejoining node replicates (set by `rejoin()`); before that only the replica has one. */
    let rejoinOf: number | undefined;
    const primary = await dataNode(() => rejoinOf);
    started.push(primary);
    const replica = await dataNode(() => rejoinOf ?? primary.port);
    started.push(replica);
    const data = [primary, replica];

    const sentinels: StartedServer[] = [];
    for (let i = 0; i < 3; i++) {
      const sentinel = await startServer({
        name: 'redis-sentinel',
        binary,
        args: (port, dir) => {
          const file = join(dir, 'sentinel.conf');
          writeFileSync(
            file,
            [
              `port ${port}`,
              'bind 127.0.0.1',
              `dir ${dir}`,
              `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primary.port} 2`,
              `sentinel down-after-milliseconds ${MASTER_NAME} 500`,
              `sentinel failover-timeout ${MASTER_NAME} 2000`,
              `sentinel parallel-syncs ${MASTER_NAME} 1`,
              '',
            ].join('\n'),
          );
          return [file, '--sentinel'];
        },
        ready: (port) => probeTcp(port, 'PING\r\n', '+PONG'),
        url: (port) => `redis://127.0.0.1:${port}`,
      });
      started.push(sentinel);
      sentinels.push(sentinel);
    }
    const sentinelPorts = sentinels.map((s) => s.port);

    const masterPort = async (): Promise<number> => {
      for (const port of sentinelPorts) {
        try {
          const reply = (await command(port, ['SENTINEL', 'get-master-addr-by-name', MASTER_NAME])) as string[] | null;
          if (reply) return Number(reply[1]);
        } catch {
          // that Sentinel is not answering: ask the next
        }
      }
      throw new Error('no Sentinel names a primary');
    };
    /** Every Sentinel agrees on `port` as the primary and can authorise a failover (quorum and majority reachable). */
    const settled = async (port: number): Promise<boolean> => {
      for (const s of sentinelPorts) {
        const reply = (await command(s, ['SENTINEL', 'get-master-addr-by-name', MASTER_NAME])) as string[] | null;
        if (Number(reply?.[1]) !== port) return false;
        await command(s, ['SENTINEL', 'CKQUORUM', MASTER_NAME]); // rejects (NOQUORUM) until the Sentinels know each other
        const replicas = (await command(s, ['SENTINEL', 'REPLICAS', MASTER_NAME])) as unknown[];
        if (!replicas.some((r) => !JSON.stringify(r).includes('s_down') && !JSON.stringify(r).includes('disconnected'))) return false;
      }
      return true;
    };
    /** The replica on `port` is connected to its primary and has loaded its data. */
    const inSync = async (port: number): Promise<boolean> => {
      const info = await replication(port);
      return info.includes('role:slave') && info.includes('master_link_status:up');
    };

    await waitUntil(() => inSync(replica.port), { what: 'the replica in sync with the primary', timeoutMs: 20_000 });
    await waitUntil(() => settled(primary.port), {
      what: 'three Sentinels that know the primary, its replica and each other',
      timeoutMs: 30_000,
    });

    let killed: StartedServer | undefined;
    let paused: StartedServer | undefined;
    const resumePaused = (): void => {
      if (paused) process.kill(paused.pid, 'SIGCONT');
      paused = undefined;
    };
    return {
      sentinelPorts,
      dataPorts: data.map((s) => s.port),
      masterPort,
      async pauseReplica() {
        const port = await masterPort();
        const node = data.find((s) => s.port !== port && s.pid !== 0);
        if (!node) throw new Error('no live replica to pause');
        process.kill(node.pid, 'SIGSTOP');
        paused = node;
        // A stopped process still receives into its socket buffer: the
        // replication stream must be cut too, or it would all be read on SIGCONT.
        await command(port, ['CLIENT', 'KILL', 'TYPE', 'replica']);
      },
      async killPrimary() {
        const port = await masterPort();
        const victim = data.find((s) => s.port === port);
        if (!victim) throw new Error(`the primary ${port} is not one of ours`);
        process.kill(victim.pid, 'SIGKILL');
        await victim.halt(); // waits for the exit (the SIGTERM it sends finds the process gone)
        resumePaused();
        killed = victim;
        let promoted = 0;
        await waitUntil(
          async () => {
            promoted = await masterPort();
            return promoted !== port && (await replication(promoted)).includes('role:master');
          },
          { what: 'a failover to the replica', timeoutMs: 30_000, intervalMs: 50 },
        );
        return { killed: port, promoted };
      },
      async rejoin() {
        if (!killed) return;
        const node = killed;
        killed = undefined;
        rejoinOf = await masterPort();
        await node.resume();
        await waitUntil(() => inSync(node.port), { what: 'the old primary back as a replica', timeoutMs: 20_000 });
        await waitUntil(() => settled(rejoinOf!), { what: 'the Sentinels seeing the rejoined replica', timeoutMs: 30_000 });
      },
      stop: async () => {
        resumePaused();
        await stopAll();
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
