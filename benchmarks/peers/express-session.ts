/**
 * Express 5 + express-session + connect-redis (node-redis client): what an
 * Express user would run. `resave: false, saveUninitialized: false`, the
 * recommended settings. express-session loads the session on every request
 * that carries its cookie (the untouched route too) and, when the session did
 * not change, calls the store's `touch` (a Redis EXPIRE) instead of saving.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import type { VariantFactory } from '../lib/types.js';
import { appStats, countOf, countRmw, countStatus, ROUTES } from '../lib/routes.js';

type Data = { count?: number };
const data = (req: express.Request): Data => req.session as unknown as Data;

export const expressSession: VariantFactory = async (env) => {
  const client = createClient({ url: env.servers.redis! });
  client.on('error', () => {});
  await client.connect();
  const app = express();
  // Koa sends neither header; keep the routes equal.
  app.disable('x-powered-by');
  app.disable('etag');
  // Outermost, like the Koa counters: our end() runs after express-session's
  // end hook has saved, so a 2xx counted here is saved.
  app.use((req: IncomingMessage, res: ServerResponse, next: () => void) => {
    appStats.requests++;
    appStats.inflight++;
    const end = res.end;
    const rmw = req.url === ROUTES.rmw;
    res.end = function (this: ServerResponse, ...args: unknown[]) {
      appStats.inflight--;
      countStatus(res.statusCode);
      if (rmw) countRmw(res.statusCode);
      return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as ServerResponse['end'];
    next();
  });
  app.use(
    session({
      store: new RedisStore({ client, prefix: 'sess:', ttl: Math.ceil(env.ttlMs / 1000) }),
      secret: 'benchmark secret, not a secret',
      name: 'connect.sid',
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: env.ttlMs, httpOnly: true, sameSite: 'lax' },
    }),
  );
  app.get(ROUTES.fresh, (req, res) => {
    data(req).count = 1;
    res.json({ count: 1 });
  });
  app.get(ROUTES.rmw, (req, res) => {
    const s = data(req);
    s.count = (countOf(s) ?? 0) + 1;
    res.json({ count: s.count });
  });
  app.get(ROUTES.read, (req, res) => {
    res.json({ count: countOf(data(req)) ?? null });
  });
  app.get(ROUTES.untouched, (_req, res) => {
    res.json({ ok: true });
  });
  return { listener: app, close: async () => void (await client.quit()) };
};
