/**
 * Sessions in MongoDB: a per-visitor counter whose sessions are documents
 * `{ _id: sid, value, expiresAt }` in the `sessions` collection.
 *
 * Run (needs MongoDB, or FerretDB: see README "Stores"):
 *   MONGO_URL=mongodb://127.0.0.1:27017/ PORT=3000 npx tsx examples/mongo.ts
 * then open http://localhost:3000 a few times; /reset ends the session.
 *
 * The TTL index on `expiresAt` is created on the first write (FerretDB 1.x has
 * no TTL indexes: the store then sweeps expired documents itself, and says so).
 *
 * In an app: `import { session, MongoStore } from 'koa-locked-session'`.
 */
import Koa from 'koa';
import { MongoStore, session } from '../src/index.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const mongoUrl = process.env.MONGO_URL ?? 'mongodb://127.0.0.1:27017/';
const port = Number(process.env.PORT ?? 3000);

// Its own MongoClient (closed by sessions.close()). With a client of your own:
// new MongoStore({ collection: client.db('app').collection('sessions') }).
const store = await MongoStore.connect({ url: mongoUrl, dbName: process.env.MONGO_DB ?? 'koa_locked_session_example' });

const app = new Koa();
// Signs the sid cookie. Use your own long random secrets in production (first signs, all verify).
app.keys = [process.env.SESSION_SECRET ?? 'dev-only-secret-change-me'];

const sessions = session({ master: store, ttl: 24 * 3600_000 });
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
  ctx.body = { count, id: ctx.session.id, store: 'mongo' };
});

const server = app.listen(port, '127.0.0.1', () => console.log(`mongo example (sessions in ${mongoUrl}) on http://localhost:${port}`));
const stop = (): void => {
  server.close(() => void sessions.close());
  server.closeIdleConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
