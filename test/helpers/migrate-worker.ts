/**
 * A worker process of the new app after the switch from express-session +
 * connect-redis (test/migrate/two-processes.test.ts): RedisStore + RedisLocker
 * master, `migrateFrom: expressSession` on the old connect-redis store.
 * GET / counts a visit under the lock and answers `{ views, user, id }`.
 * Env: REDIS_URL, OLD_PREFIX, MASTER_PREFIX, SECRET.
 */
import Koa from 'koa';
import { RedisStore as ConnectRedis } from 'connect-redis';
import { createClient } from 'redis';
import { expressSession, RedisLocker, RedisStore, session } from '../../src/index.js';
import { serveForParent } from './worker-serve.js';

declare module '../../src/index.js' {
  interface SessionData {
    views?: number;
    account?: { id: string };
  }
}

const client = await createClient({ url: process.env.REDIS_URL! }).connect();
client.on('error', () => {});
const locker = new RedisLocker({ client });
const app = new Koa();
app.keys = ['app key kept from the old app'];
app.silent = true;
app.use(
  session({
    master: new RedisStore({ client, prefix: process.env.MASTER_PREFIX! }),
    locker,
    migrateFrom: expressSession({ store: new ConnectRedis({ client, prefix: process.env.OLD_PREFIX! }), secret: process.env.SECRET! }),
  }),
);
app.use(async (ctx) => {
  const views = await ctx.session.withLock((s) => (s.views = (s.views ?? 0) + 1));
  ctx.body = { views, user: (await ctx.session.get()).account ?? null, id: ctx.session.id ?? null };
});
serveForParent(
  app,
  (m) => void process.send!(m),
  async () => {
    await locker.close();
    await client.quit();
  },
);
