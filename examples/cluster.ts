/**
 * Many processes, one session: Node's `cluster` module forks several workers
 * that share one port; each worker is its own Koa app, and they share sessions
 * (and the per-session lock) through Redis. Parallel requests of one visitor may
 * land on different workers and still never lose an update.
 *
 * Run:
 *   REDIS_URL=redis://127.0.0.1:6379 WORKERS=4 PORT=3000 npx tsx examples/cluster.ts
 * then open http://localhost:3000 (each response names the worker that served it).
 *
 * In an app: `import { session, RedisStore, RedisLocker } from 'koa-locked-session'`.
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import Koa from 'koa';
import { createClient } from 'redis';
import { RedisLocker, RedisStore, session } from '../src/index.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const port = Number(process.env.PORT ?? 3000);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

if (cluster.isPrimary) {
  const workers = Number(process.env.WORKERS ?? Math.min(4, availableParallelism()));
  let listening = 0;
  let stopping = false;
  cluster.on('listening', () => {
    if (++listening === workers) console.log(`cluster example (${workers} workers, sessions in ${redisUrl}) on http://localhost:${port}`);
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    // A crashed worker's session locks expire after the lease (leaseMs); the others carry on.
    console.error(`worker ${worker.process.pid} died (${signal ?? code}); starting another`);
    cluster.fork();
  });
  for (let i = 0; i < workers; i++) cluster.fork();

  const stop = (): void => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.disconnect();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} else {
  // One connection per worker, shared by the store and the locker: with the same
  // client, the locker takes the lock and reads the session in one round trip,
  // and a save only lands while this worker still holds the lock (fencing).
  const redis = createClient({ url: redisUrl });
  redis.on('error', (error: Error) => console.error(`redis: ${error.message}`)); // it reconnects by itself
  await redis.connect();

  const app = new Koa();
  // Every worker must verify every other worker's cookies: the same keys everywhere.
  app.keys = [process.env.SESSION_SECRET ?? 'dev-only-secret-change-me'];
  app.use(
    session({
      master: new RedisStore({ client: redis }),
      // leaseMs: how long a crashed worker can block its sessions; renewed while a scope runs.
      locker: new RedisLocker({ client: redis, leaseMs: 10_000 }),
    }),
  );

  app.use(async (ctx) => {
    if (ctx.path === '/favicon.ico') return;
    const count = await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1));
    ctx.body = { count, worker: process.pid };
  });

  const server = app.listen(port, '127.0.0.1');
  // The primary disconnects us on shutdown: finish in-flight requests, then leave.
  process.on('disconnect', () => {
    server.close(() => void redis.close().finally(() => process.exit(0)));
    server.closeIdleConnections();
  });
}
