/**
 * Master + mirror: sessions are read from Redis (the master) and every write
 * and destroy also goes to MongoDB (a mirror, e.g. a durable copy for audits
 * or a warm standby). A failing mirror never fails a request: it is reported
 * as `session:mirror-error`.
 *
 * Run (needs Redis and MongoDB or FerretDB):
 *   REDIS_URL=redis://127.0.0.1:6379 MONGO_URL=mongodb://127.0.0.1:27017/ PORT=3000 npx tsx examples/mirrors.ts
 * then open http://localhost:3000 a few times, and http://localhost:3000/mirror
 * to see the same record in both stores.
 *
 * In an app: `import { session, RedisStore, RedisLocker, MongoStore } from 'koa-locked-session'`.
 */
import Koa from 'koa';
import { createClient } from 'redis';
import { MongoStore, RedisLocker, RedisStore, session } from '../src/index.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const mongoUrl = process.env.MONGO_URL ?? 'mongodb://127.0.0.1:27017/';
const port = Number(process.env.PORT ?? 3000);

const redis = createClient({ url: redisUrl });
redis.on('error', (error: Error) => console.error(`redis: ${error.message}`)); // it reconnects by itself
await redis.connect();

const master = new RedisStore({ client: redis });
const mirror = await MongoStore.connect({ url: mongoUrl, dbName: process.env.MONGO_DB ?? 'koa_locked_session_example' });

const app = new Koa();
// Signs the sid cookie. Use your own long random secrets in production (first signs, all verify).
app.keys = [process.env.SESSION_SECRET ?? 'dev-only-secret-change-me'];
app.on('session:mirror-error', ({ store, sid, op, error }) => {
  console.error(`mirror ${store} failed to ${op} session ${sid.slice(0, 8)}…: ${(error as Error).message}`);
});

const sessions = session({
  master, // reads come from here; a master failure fails the request (503)
  mirrors: [mirror], // written after the master, in parallel; failures only reported
  locker: new RedisLocker({ client: redis }),
  ttl: 24 * 3600_000,
});
app.use(sessions);

app.use(async (ctx) => {
  if (ctx.path === '/favicon.ico') return;
  if (ctx.path === '/reset') {
    await ctx.session.destroy(); // gone from the master and the mirror
    ctx.redirect('/');
    return;
  }
  if (ctx.path === '/mirror') {
    // The raw records of this session in each store (the store key is the sid).
    const sid = ctx.session.id;
    ctx.body = sid ? { id: sid, master: await master.get(sid), mirror: await mirror.get(sid) } : { id: null, master: null, mirror: null };
    return;
  }
  const count = await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1));
  ctx.body = { count, id: ctx.session.id, master: 'redis', mirrors: ['mongo'] };
});

const server = app.listen(port, '127.0.0.1', () =>
  console.log(`mirrors example (master ${redisUrl}, mirror ${mongoUrl}) on http://localhost:${port}`),
);
const stop = (): void => {
  server.close(() => void sessions.close().finally(() => redis.close()));
  server.closeIdleConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
