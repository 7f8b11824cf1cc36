/**
 * The app child: serves one variant on a free loopback port and answers the
 * harness over IPC. Started by `benchmarks/run.ts` (pinned with taskset), never
 * by hand, though `node --import tsx benchmarks/app.ts ours-memory` works for
 * poking at a variant (it prints the port when there is no IPC channel).
 *
 *   app.ts <variant> [--processes N]
 *
 * With `--processes N > 1` this process becomes a Node cluster primary: N
 * workers share one port (the primary hands out connections round-robin) and
 * the primary sums their counters (and lists each worker's lock waits).
 * Environment: `BENCH_REDIS_URL`, `BENCH_MEMCACHED_URL`, `BENCH_MONGO_URL`,
 * `BENCH_PG_URL`, `BENCH_TTL_MS`, `BENCH_LOCK_WAITS=1` (record lock waits).
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Session } from 'node:inspector/promises';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { appStats } from './lib/routes.js';
import type { AppCommand, AppEnv, AppInstance, AppMessage, AppStats } from './lib/types.js';
import { loadVariant } from './variants/index.js';

/** Extra commands the harness may send (CPU profile of the measured window). */
type ProfileCommand = { type: 'profile-start' } | { type: 'profile-stop'; file: string };
type Command = AppCommand | ProfileCommand;
type WorkerReply = { type: 'worker-stats'; id: number; stats: AppStats } | { type: 'worker-ready'; port: number };

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { processes: { type: 'string', default: '1' } },
});
const variant = positionals[0];
const processes = Number(values.processes);

const send = (message: AppMessage): void => {
  if (process.send) process.send(message);
  else if (message.type === 'ready') console.log(`${variant} listening on http://127.0.0.1:${message.port}/`);
  else if (message.type === 'fatal') console.error(message.message);
};

function fatal(error: unknown): never {
  send({ type: 'fatal', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  // Let the IPC message leave before we go.
  setTimeout(() => process.exit(1), 50);
  throw error;
}

const env: AppEnv = {
  servers: {
    ...(process.env.BENCH_REDIS_URL ? { redis: process.env.BENCH_REDIS_URL } : {}),
    ...(process.env.BENCH_MEMCACHED_URL ? { memcached: process.env.BENCH_MEMCACHED_URL } : {}),
    ...(process.env.BENCH_MONGO_URL ? { mongo: process.env.BENCH_MONGO_URL } : {}),
    ...(process.env.BENCH_PG_URL ? { postgres: process.env.BENCH_PG_URL } : {}),
  },
  processes,
  ttlMs: Number(process.env.BENCH_TTL_MS ?? 3_600_000),
  recordLockWaits: process.env.BENCH_LOCK_WAITS === '1',
};

/** A CPU profile of the measured window only (not start-up or warm-up). */
function profiler() {
  let session: Session | undefined;
  return {
    async start() {
      session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      // 100 µs instead of V8's 1 ms: enough samples per window for a per-function table.
      await session.post('Profiler.setSamplingInterval', { interval: 100 });
      await session.post('Profiler.start');
    },
    async stop(file: string) {
      if (!session) return;
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      session = undefined;
      await writeFile(file, JSON.stringify(profile));
    },
  };
}

function stats(instance: AppInstance | undefined, resetLockWaits = false): AppStats {
  if (resetLockWaits) instance?.lockWaits?.reset();
  const store = instance?.storeCalls?.();
  const waits = instance?.lockWaits?.snapshot();
  const cpu = process.cpuUsage();
  return { ...appStats, cpuUs: cpu.user + cpu.system, ...(store ? { store } : {}), ...(waits ? { lockWaits: [waits] } : {}) };
}

/** One process serving the variant (alone, or as a cluster worker). */
async function serve(): Promise<void> {
  if (!variant) fatal(new Error('usage: app.ts <variant> [--processes N]'));
  const factory = await loadVariant(variant);
  const instance = await factory(env);
  const server: Server = createServer(instance.listener);
  // The load generator keeps its connections; Node's 5 s default would reset idle ones between phases.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const prof = profiler();
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    server.closeAllConnections();
    server.close();
    await instance.close().catch(() => {});
    process.exit(0);
  };
  process.on('message', (message: Command) => {
    switch (message.type) {
      case 'stats':
        if (cluster.isWorker)
          process.send!({ type: 'worker-stats', id: message.id, stats: stats(instance, message.resetLockWaits) } satisfies WorkerReply);
        else send({ type: 'stats', id: message.id, stats: stats(instance, message.resetLockWaits) });
        break;
      case 'profile-start':
        void prof.start();
        break;
      case 'profile-stop':
        void prof.stop(message.file.replace('%p', String(process.pid)));
        break;
      case 'stop':
        void stop();
        break;
    }
  });
  // The harness went away (crash, Ctrl-C): do not outlive it.
  process.on('disconnect', () => void stop());
  if (cluster.isWorker) process.send!({ type: 'worker-ready', port } satisfies WorkerReply);
  else send({ type: 'ready', port, pids: [process.pid] });
}

/** The cluster primary: start the workers, relay the harness's commands, sum the counters. */
async function primary(): Promise<void> {
  const workers: Worker[] = [];
  const ready: Promise<number>[] = [];
  for (let i = 0; i < processes; i++) {
    const worker = cluster.fork(process.env);
    workers.push(worker);
    ready.push(
      new Promise((resolve, reject) => {
        worker.on('message', (m: WorkerReply | AppMessage) => {
          if (m.type === 'worker-ready') resolve(m.port);
          if (m.type === 'fatal') reject(new Error(m.message));
        });
        worker.once('exit', (code) => reject(new Error(`worker exited with code ${code} before it was ready`)));
      }),
    );
  }
  const ports = await Promise.all(ready).catch(fatal);
  const pending = new Map<number, { left: number; sum: AppStats }>();
  for (const worker of workers) {
    worker.on('message', (m: WorkerReply) => {
      if (m.type !== 'worker-stats') return;
      const entry = pending.get(m.id);
      if (!entry) return;
      const sum = entry.sum;
      sum.requests += m.stats.requests;
      sum.rmwOk += m.stats.rmwOk;
      sum.inflight += m.stats.inflight;
      sum.cpuUs = (sum.cpuUs ?? 0) + (m.stats.cpuUs ?? 0);
      for (const [k, v] of Object.entries(m.stats.non2xx ?? {})) {
        sum.non2xx ??= {};
        sum.non2xx[k] = (sum.non2xx[k] ?? 0) + v;
      }
      // Lock waits stay per process: a maximum summed or merged would hide a starved worker.
      if (m.stats.lockWaits) (sum.lockWaits ??= []).push(...m.stats.lockWaits);
      if (m.stats.store) {
        sum.store ??= {};
        for (const [k, v] of Object.entries(m.stats.store)) sum.store[k] = (sum.store[k] ?? 0) + v;
      }
      if (--entry.left === 0) {
        pending.delete(m.id);
        send({ type: 'stats', id: m.id, stats: sum });
      }
    });
  }
  const stopAll = (): void => {
    for (const worker of workers) worker.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 200);
  };
  process.on('message', (message: Command) => {
    if (message.type === 'stats') {
      pending.set(message.id, { left: workers.length, sum: { requests: 0, rmwOk: 0, inflight: 0 } });
      for (const worker of workers) worker.send(message);
    } else if (message.type === 'stop') {
      stopAll();
    } else {
      for (const worker of workers) worker.send(message);
    }
  });
  process.on('disconnect', stopAll);
  // Workers calling listen(0) share one port through the primary.
  send({ type: 'ready', port: ports[0]!, pids: [process.pid, ...workers.map((w) => w.process.pid!)] });
}

try {
  if (processes > 1 && cluster.isPrimary) await primary();
  else await serve();
} catch (error) {
  fatal(error);
}
