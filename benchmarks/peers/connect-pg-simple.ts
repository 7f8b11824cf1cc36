/**
 * Express 5 + express-session + connect-pg-simple (on a `pg.Pool`): what an
 * Express user with sessions in PostgreSQL runs today. `resave: false,
 * saveUninitialized: false`, the recommended settings. No lock: concurrent
 * requests of one session lose updates.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import session from 'express-session';
import connectPgSimple from 'connect-pg-simple';
import pg from 'pg';
import type { VariantFactory } from '../lib/types.js';
import { appStats, countOf, countRmw, ROUTES } from '../lib/routes.js';
import { postgresUrlOf } from './postgres-url.js';

type Data = { count?: number };
const data = (req: express.Request): Data => req.session as unknown as Data;

export const connectPgSimpleVariant: VariantFactory = async (env) => {
  const pool = new pg.Pool({ connectionString: postgresUrlOf(env), max: 10 });
  pool.on('error', () => {});
  const PgStore = connectPgSimple(session);
  const store = new PgStore({ pool, tableName: 'cps_session', createTableIfMissing: true, pruneSessionInterval: false });
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // Outermost, as in the other Express peer: a 2xx counted here is saved.
  app.use((req: IncomingMessage, res: ServerResponse, next: () => void) => {
    appStats.requests++;
    appStats.inflight++;
    const end = res.end;
    const rmw = req.url === ROUTES.rmw;
    res.end = function (this: ServerResponse, ...args: unknown[]) {
      appStats.inflight--;
      if (rmw) countRmw(res.statusCode);
      return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as ServerResponse['end'];
    next();
  });
  app.use(
    session({
      store,
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
  return {
    listener: app,
    close: async () => {
      store.close();
      await pool.end();
    },
  };
};
