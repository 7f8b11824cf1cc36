/**
 * The PostgreSQL rows of the report (metadata only, so the harness lists them
 * without loading `pg` or our `src/`): the raw SELECT+UPDATE floor, ours and
 * connect-pg-simple. Each names `raw-pg` as its floor, so "× floor" in the
 * report is ours ÷ the PostgreSQL floor, not the Redis one.
 */
import type { VariantInfo } from '../lib/types.js';

export const POSTGRES_VARIANTS: readonly VariantInfo[] = [
  {
    id: 'raw-pg',
    label: 'raw PostgreSQL SELECT+UPDATE (floor)',
    group: 'baseline',
    needs: ['postgres'],
    shared: true,
    counting: 'none',
    floor: 'raw-pg',
    description: 'Koa + pg.Pool, one SELECT + one UPDATE per read-modify-write, unsigned cookie, no lock, no transaction.',
  },
  {
    id: 'ours-postgres',
    label: 'ours · PostgresStore + PostgresLocker',
    group: 'ours',
    needs: ['postgres'],
    shared: true,
    counting: 'none',
    floor: 'raw-pg',
    description:
      'PostgresStore + PostgresLocker on one pg.Pool: the lock is the session row (SELECT … FOR UPDATE), the save commits its transaction.',
  },
  {
    id: 'connect-pg-simple',
    label: 'express-session + connect-pg-simple',
    group: 'peer',
    needs: ['postgres'],
    shared: true,
    counting: 'none',
    floor: 'raw-pg',
    description: 'Express 5 + express-session (resave: false, saveUninitialized: false) + connect-pg-simple on a pg.Pool (no lock).',
  },
];
