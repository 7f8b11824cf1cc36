/**
 * koa-locked-session on PostgreSQL: PostgresStore + PostgresLocker on one
 * pool (the lock is the session's row; the save commits its transaction).
 * Its report metadata is in postgres-info.ts.
 */
import pg from 'pg';
import { CHANNELS, PostgresLocker, PostgresStore, session } from '../../src/index.js';
import type { VariantFactory } from '../lib/types.js';
import { koaApp, countOf, type SessionOps } from '../lib/routes.js';
import { postgresUrlOf } from '../peers/postgres-url.js';
import { LockWaitRecorder } from '../lib/lock-waits.js';

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
  const locker = new PostgresLocker({ store });
  const lockWaits = env.recordLockWaits ? new LockWaitRecorder(CHANNELS.lock) : undefined;
  lockWaits?.countTurnsOf(locker);
  const sessions = session({ master: store, locker, ttl: env.ttlMs });
  const app = koaApp({ middleware: [sessions], ops });
  return {
    listener: app.callback(),
    ...(lockWaits ? { lockWaits } : {}),
    close: async () => {
      lockWaits?.close();
      await sessions.close();
      await pool.end();
    },
  };
};
