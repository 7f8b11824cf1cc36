/**
 * koa-locked-session on PostgreSQL: PostgresStore + PostgresLocker on one
 * pool (the lock is the session's row; the save commits its transaction), and
 * the metadata to list it, the raw floor and connect-pg-simple in
 * variants/index.ts once the harness starts a PostgreSQL server.
 */
import pg from 'pg';
import { PostgresLocker, PostgresStore, session } from '../../src/index.js';
import type { VariantFactory, VariantInfo } from '../lib/types.js';
import { koaApp, countOf, type SessionOps } from '../lib/routes.js';
import { postgresUrlOf } from '../peers/postgres-url.js';

type Counter = { count?: number };

const ops: SessionOps = {
  async fresh(ctx) {
    await ctx.session.withLock((s) => {
      (s as Counter).count = 1;
    });
  },
  rmw(ctx) {
    return ctx.session.withLock((s) => ((s as Counter).count = (countOf(s) ?? 0) + 1));
  },
  async read(ctx) {
    return countOf(await ctx.session.get());
  },
};

export const oursPostgres: VariantFactory = async (env) => {
  const pool = new pg.Pool({ connectionString: postgresUrlOf(env), max: 10 });
  pool.on('error', () => {});
  const store = new PostgresStore({ pool, table: 'kls_sessions' });
  await store.ensureTable();
  const sessions = session({ master: store, locker: new PostgresLocker({ store }), ttl: env.ttlMs });
  const app = koaApp({ middleware: [sessions], ops });
  return {
    listener: app.callback(),
    close: async () => {
      await sessions.close();
      await pool.end();
    },
  };
};

/** Rows for variants/index.ts (their `needs` is PostgreSQL: the harness's server list gains `postgres`). */
export const POSTGRES_VARIANTS: readonly (Omit<VariantInfo, 'needs'> & { needs: readonly string[] })[] = [
  {
    id: 'raw-pg',
    label: 'raw PostgreSQL SELECT+UPDATE (floor)',
    group: 'baseline',
    needs: ['postgres'],
    shared: true,
    counting: 'none',
    description: 'Koa + pg.Pool, one SELECT + one UPDATE per read-modify-write, unsigned cookie, no lock, no transaction.',
  },
  {
    id: 'ours-postgres',
    label: 'ours · PostgresStore + PostgresLocker',
    group: 'ours',
    needs: ['postgres'],
    shared: true,
    counting: 'none',
    description: 'PostgresStore + PostgresLocker on one pg.Pool: the lock is the session row (SELECT … FOR UPDATE), the save commits its transaction.',
  },
  {
    id: 'connect-pg-simple',
    label: 'express-session + connect-pg-simple',
    group: 'peer',
    needs: ['postgres'],
    shared: true,
    counting: 'none',
    description: 'Express 5 + express-session + connect-pg-simple on a pg.Pool (no lock).',
  },
];
