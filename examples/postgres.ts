/**
 * Sessions in PostgreSQL, and the lock in PostgreSQL too: a per-visitor
 * counter whose sessions are rows of the `sessions` table, each locked
 * (`SELECT … FOR UPDATE` in a transaction) while a request works on it.
 * No Redis needed to serialize requests across processes.
 *
 * Run (needs PostgreSQL; see README "PostgreSQL"):
 *   PG_URL=postgres://postgres@127.0.0.1:5432/postgres PORT=3000 npx tsx examples/postgres.ts
 * then open http://localhost:3000 a few times; /reset ends the session.
 *
 * The table and its index are created on the first request (or pass
 * `createTable: false` and create them with your migrations).
 *
 * In an app: `import { session, PostgresStore, PostgresLocker } from 'koa-locked-session'`.
 */
import Koa from 'koa';
import { PostgresLocker, PostgresStore, session } from '../src/index.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const pgUrl = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const port = Number(process.env.PORT ?? 3000);

// Its own pg.Pool (ended by sessions.close()). With a pool of your own:
// new PostgresStore({ pool }) — and give the pool an 'error' listener.
const store = await PostgresStore.connect({ connectionString: pgUrl, table: process.env.PG_TABLE ?? 'sessions', poolOptions: { max: 10 } });
// The lock is the session's row: reads and writes happen in the lock's own transaction.
const locker = new PostgresLocker({ store });

const app = new Koa();
// Signs the sid cookie. Use your own long random secrets in production (first signs, all verify).
app.keys = [process.env.SESSION_SECRET ?? 'dev-only-secret-change-me'];

const sessions = session({ master: store, locker, ttl: 24 * 3600_000 });
app.use(sessions);

app.use(async (ctx) => {
  if (ctx.path === '/favicon.ico') return;
  if (ctx.path === '/reset') {
    await ctx.session.destroy();
    ctx.redirect('/');
    return;
  }
  // Read-modify-write under the row lock: parallel requests (of any process) never lose an increment.
  const count = await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1));
  ctx.body = { count, id: ctx.session.id, store: 'postgres' };
});

const server = app.listen(port, '127.0.0.1', () =>
  console.log(`postgres example (sessions in ${new URL(pgUrl).host}) on http://localhost:${port}`),
);
const stop = (): void => {
  server.close(() => void sessions.close());
  server.closeIdleConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
