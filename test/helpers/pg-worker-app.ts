/**
 * One worker of the PostgreSQL multi-process tests (forked with `--import tsx`
 * and an IPC channel): the counter app of test/helpers/counter-worker.ts (routes
 * and messages are described there), sessions in PostgreSQL with PostgresLocker
 * (the lock is the session's row).
 *
 * Environment: `PG_URL` (required), `PG_TABLE` (required), `LOCK_TIMEOUT`
 * (default 60 000), `LEASE_MS` (PostgresLocker leaseMs, default 60 000).
 */
import pg from 'pg';
import { PostgresLocker, PostgresStore } from '../../src/index.js';
import { serveCounter } from './counter-worker.js';

const { PG_URL: url, PG_TABLE: table } = process.env;
if (!url || !table) throw new Error('pg-worker-app: run me with child_process.fork(), PG_URL and PG_TABLE');

const pool = new pg.Pool({ connectionString: url, max: 10 });
pool.on('error', () => {}); // connections closed by the server (a restart): replaced on the next checkout
const store = new PostgresStore({ pool, table });
await store.ensureTable(); // every worker at once: the creation must be safe
const locker = new PostgresLocker({ store, leaseMs: Number(process.env.LEASE_MS ?? 60_000) });

serveCounter({ master: store, locker, lockTimeout: Number(process.env.LOCK_TIMEOUT ?? 60_000) }, () => pool.end());
