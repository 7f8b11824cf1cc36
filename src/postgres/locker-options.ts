/**
 * PostgresLocker's options: their type (what a user reads, with the defaults)
 * and their validation. Their own file, apart from the lock's mechanics, as
 * RedisLocker's are in src/redis/options.ts.
 */
import { describe } from '../util/format.js';
import { Validator } from '../util/validate.js';
import { postgresFastPathOf } from './fast-path.js';
import type { PgPoolLike } from './sql.js';
import type { PostgresStore } from './store.js';

const check: Validator = new Validator('PostgresLocker');

/** Options of {@link PostgresLocker}: a pool, or the PostgresStore whose pool (and rows) it locks. */
export type PostgresLockerOptions = {
  /**
   * Longest a holder may stay silent inside its transaction (ms): PostgreSQL's
   * `idle_in_transaction_session_timeout`, set per transaction. A holder that
   * hangs or is paused that long has its connection closed by the server,
   * which frees the lock; its later write is refused (`LockLostError`).
   * @default 10_000
   */
  leaseMs?: number;
  /**
   * Longest a lock is held (ms). While a scope runs, its process proves it is
   * alive with a `SELECT 1` in the transaction every `leaseMs / 3`, so a slow
   * but live scope keeps its lock (a hung or paused process cannot, and loses
   * it after `leaseMs`); past `maxHoldMs` that stops, and a scope that is
   * never ended loses its lock `leaseMs` later rather than holding it for good.
   * @default 60_000, or 2 × leaseMs when longer
   */
  maxHoldMs?: number;
  /**
   * Prefix of the advisory lock's name (`hashtextextended(namespace || key)`).
   * Apps sharing one database with the same session keys but not the same
   * sessions give each locker its own.
   * @default 'koa-locked-session:'
   */
  namespace?: string;
} & (
  | {
      /** A node-postgres `Pool` (with an `'error'` listener). The locker never ends it. */
      pool: PgPoolLike;
      /** Not with `pool`: pass one or the other. */
      store?: never;
    }
  | {
      /** The master store: the locker uses its pool, and reads and writes its rows in the lock's transaction. */
      store: PostgresStore;
      /** Not with `store`: the store's pool is used. */
      pool?: never;
    }
);

/** The defaults of {@link PostgresLockerOptions} (their TSDoc @default; `maxHoldMs` is at least 2 × `leaseMs`). */
const POSTGRES_LOCKER_DEFAULTS = Object.freeze({
  leaseMs: 10_000,
  maxHoldMs: 60_000,
  namespace: 'koa-locked-session:',
});

/** The options with every default applied. */
export interface ResolvedPostgresLockerOptions {
  readonly pool: PgPoolLike;
  readonly leaseMs: number;
  readonly maxHoldMs: number;
  readonly namespace: string;
}

const OPTIONS = ['pool', 'store', 'leaseMs', 'maxHoldMs', 'namespace'] as const;
/** Options of other lockers and of PostgreSQL session stores (connect-pg-simple), with what to use here. */
const HINTS: Readonly<Record<string, string>> = {
  table: 'Pass `store` (the PostgresStore whose rows it locks): the locker uses its table',
  tableName: 'Pass `store` (the PostgresStore whose rows it locks): the locker uses its table',
  connectionString: 'Pass `store` (a PostgresStore, e.g. `await PostgresStore.connect({ connectionString })`) or a `pool`',
  conString: 'Pass `store` (a PostgresStore, e.g. `await PostgresStore.connect({ connectionString })`) or a `pool`',
  prefix: 'Use `namespace`',
  lockTimeout: 'The lock wait is an option of session(): `session({ lockTimeout })`',
  timeoutMs: "The lock wait is `session({ lockTimeout })`; the store's calls are bounded by the PostgresStore's `timeoutMs`",
  ttl: 'Use `leaseMs` for how long a silent holder keeps the lock; the session TTL is `session({ ttl })`',
  maxLeaseMs: 'Use `maxHoldMs`',
};

/** Validate `options` (a TypeError naming the option and the fix) and apply the defaults. */
export function resolvePostgresLockerOptions(options: PostgresLockerOptions): ResolvedPostgresLockerOptions {
  const input = check.object('options', options as Record<string, unknown> | undefined);
  check.known(input, OPTIONS, HINTS);
  const {
    pool,
    store,
    leaseMs = POSTGRES_LOCKER_DEFAULTS.leaseMs,
    maxHoldMs,
    namespace = POSTGRES_LOCKER_DEFAULTS.namespace,
  } = input as { pool?: unknown; store?: unknown; leaseMs?: unknown; maxHoldMs?: unknown; namespace?: unknown };
  if (store !== undefined && postgresFastPathOf(store) === undefined) {
    check.fail('store', 'a PostgresStore', store);
  }
  const chosen = (pool ?? (store as PostgresStore | undefined)?.pool) as PgPoolLike | undefined;
  if (
    (pool === undefined) === (store === undefined) ||
    typeof chosen !== 'object' ||
    chosen === null ||
    typeof chosen.connect !== 'function'
  ) {
    throw new TypeError(
      `koa-locked-session: PostgresLocker needs exactly one of \`pool\` (a node-postgres Pool) or \`store\` (a PostgresStore), got \`${describe(options)}\``,
    );
  }
  if (typeof leaseMs !== 'number' || !Number.isSafeInteger(leaseMs) || leaseMs < 1)
    check.fail('leaseMs', 'a positive integer of ms', leaseMs);
  const maxHold = maxHoldMs ?? Math.max(POSTGRES_LOCKER_DEFAULTS.maxHoldMs, 2 * leaseMs);
  if (typeof maxHold !== 'number' || !Number.isFinite(maxHold) || maxHold < leaseMs) {
    check.fail('maxHoldMs', 'a number of ms no smaller than `leaseMs`', maxHoldMs);
  }
  return { pool: chosen, leaseMs, maxHoldMs: maxHold, namespace: check.string('namespace', namespace, POSTGRES_LOCKER_DEFAULTS.namespace) };
}
