/**
 * Sessions in Memcached: a per-visitor counter whose sessions live in memcached.
 *
 * Run (needs a memcached server):
 *   MEMCACHED_URL=127.0.0.1:11211 PORT=3000 npx tsx examples/memcached.ts
 * then open http://localhost:3000 a few times; /reset ends the session.
 *
 * Memcached has no locks: the default MemoryLocker serializes requests within
 * this one process. For several processes, add a RedisLocker (see examples/redis.ts).
 *
 * In an app: `import { session, MemcachedStore } from 'koa-locked-session'`.
 */
import Koa from 'koa';
import { MemcachedStore, session } from '../src/index.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const memcachedUrl = process.env.MEMCACHED_URL ?? '127.0.0.1:11211';
const port = Number(process.env.PORT ?? 3000);

const app = new Koa();
// Signs the sid cookie. Use your own long random secrets in production (first signs, all verify).
app.keys = [process.env.SESSION_SECRET ?? 'dev-only-secret-change-me'];

const sessions = session({
  // The store creates its memcached client on first use (failing fast while the
  // server is down, reconnecting when it is back) and ends it on close().
  master: new MemcachedStore({ servers: memcachedUrl }),
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
  ctx.body = { count, id: ctx.session.id, store: 'memcached' };
});

const server = app.listen(port, '127.0.0.1', () =>
  console.log(`memcached example (sessions in ${memcachedUrl}) on http://localhost:${port}`),
);
const stop = (): void => {
  server.close(() => void sessions.close());
  server.closeIdleConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
