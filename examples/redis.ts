/**
 * Sessions in Redis: a per-visitor counter whose sessions (and per-session
 * locks) live in Redis, so any number of processes can serve the same visitor.
 *
 * Run (needs a Redis server):
 *   REDIS_URL=redis://127.0.0.1:6379 PORT=3000 npx tsx examples/redis.ts
 * then open http://localhost:3000 a few times; /reset ends the session.
 *
 * In an app: `import { session, RedisStore, RedisLocker } from 'koa-locked-session'`.
 */
import Koa from 'koa';
import { createClient } from 'redis';
import { RedisLocker, RedisStore, session } from '../src/index.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const port = Number(process.env.PORT ?? 3000);

// One connection for the store and the locker: the lock and the session read
// share a round trip, and a save only lands while the lock is still ours.
const redis = createClient({ url: redisUrl });
redis.on('error', (error: Error) => console.error(`redis: ${error.message}`)); // it reconnects by itself
await redis.connect();

const app = new Koa();
// Signs the sid cookie. Use your own long random secrets in production (first signs, all verify).
app.keys = [process.env.SESSION_SECRET ?? 'dev-only-secret-change-me'];

const sessions = session({
  master: new RedisStore({ client: redis }), // keys `sess:{sid}`, expiry by Redis (PX)
  locker: new RedisLocker({ client: redis }), // locks `lock:{sid}`: safe across processes
  ttl: 24 * 3600_000,
});
app.use(sessions);

app.use(async (ctx) => {
  if (ctx.path === '/favicon.ico') return;
  if (ctx.path === '/reset') {
    await ctx.session.destroy();
    ctx.redirect('/');
    return;
  }
  // Read-modify-write under the session lock: parallel requests never lose an increment.
  const count = await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1));
  ctx.body = { count, id: ctx.session.id, store: 'redis' };
});

const server = app.listen(port, '127.0.0.1', () => console.log(`redis example (sessions in ${redisUrl}) on http://localhost:${port}`));
const stop = (): void => {
  server.close(() => void sessions.close().finally(() => redis.close()));
  server.closeIdleConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
