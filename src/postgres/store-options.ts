/**
 * The options of PostgresStore and PostgresStore.connect: their types (what a
 * user reads), their defaults and their validation. Their own file, apart from
 * the store's statements, as RedisStore's are in src/redis/store-options.ts;
 * PostgresLocker's are in ./locker-options.ts.
 */
import { Validator } from '../util/validate.js';
import { quoteTable, type PgPoolLike } from './sql.js';

/** Options every {@link PostgresStore} takes. */
export interface PostgresStoreCommonOptions {
  /**
   * The sessions table, optionally schema-qualified (`app.sessions`).
   * @default 'sessions'
   */
  table?: string;
  /**
   * Create the table and its `expires_at` index on first use (idempotent,
   * safe when many processes start together). `false`: you create them with
   * your migrations (docs/postgresql.md gives the SQL).
   * @default true
   */
  createTable?: boolean;
  /**
   * Longest wait for one operation (ms), taking a pooled connection included:
   * a server that is down or unreachable fails it with a `StoreError` by then.
   * @default 2000
   */
  timeoutMs?: number;
  /**
   * How often expired rows are deleted (reads ignore them anyway). The timer
   * is `unref`'d; `0` turns the sweep off (you delete them yourself).
   * @default 60_000
   */
  sweepIntervalMs?: number;
  /**
   * Rows deleted per statement of a sweep, and at most 10 statements per
   * sweep: a large backlog is worked off over several sweeps, never in one
   * long statement that holds many locks.
   * @default 1000
   */
  sweepBatch?: number;
}

/** Options of {@link PostgresStore}. */
export interface PostgresStoreOptions extends PostgresStoreCommonOptions {
  /**
   * A node-postgres `Pool` (pg ≥ 8). The store never ends it. Give it an
   * `'error'` listener (`pool.on('error', …)`): node-postgres emits errors of
   * idle connections (a server restart) there, and an unheard `'error'` ends
   * the process.
   */
  pool: PgPoolLike;
}

/** Options of {@link PostgresStore.connect}: a store that creates (and ends) its own pool. */
export interface PostgresStoreConnectOptions extends PostgresStoreCommonOptions {
  /** e.g. `postgres://user:password@127.0.0.1:5432/app` */
  connectionString: string;
  /** Extra `pg.Pool` options (e.g. `max`, `ssl`). `connectionTimeoutMillis` defaults to `timeoutMs`. */
  poolOptions?: Record<string, unknown>;
}

/** The defaults of {@link PostgresStoreCommonOptions} (their TSDoc @default). */
const POSTGRES_STORE_DEFAULTS = Object.freeze({
  table: 'sessions',
  createTable: true,
  timeoutMs: 2000,
  sweepIntervalMs: 60_000,
  sweepBatch: 1000,
});

/** {@link PostgresStoreOptions} validated, with every default filled in. */
export interface ResolvedPostgresStoreOptions {
  readonly pool: PgPoolLike;
  /** The quoted table name, e.g. `"sessions"` (never user input unchecked: it is interpolated into SQL). */
  readonly table: string;
  readonly createTable: boolean;
  readonly timeoutMs: number;
  readonly sweepIntervalMs: number;
  readonly sweepBatch: number;
}

/** Validate `options` (a TypeError naming the option and the fix) and apply the defaults. */
export function resolvePostgresStoreOptions(options: PostgresStoreOptions): ResolvedPostgresStoreOptions {
  const check = new Validator('PostgresStore');
  const {
    pool,
    table = POSTGRES_STORE_DEFAULTS.table,
    createTable = POSTGRES_STORE_DEFAULTS.createTable,
    timeoutMs = POSTGRES_STORE_DEFAULTS.timeoutMs,
    sweepIntervalMs = POSTGRES_STORE_DEFAULTS.sweepIntervalMs,
    sweepBatch = POSTGRES_STORE_DEFAULTS.sweepBatch,
  } = options ?? ({} as PostgresStoreOptions);
  if (typeof pool !== 'object' || pool === null || typeof (pool as PgPoolLike).connect !== 'function') {
    check.fail('pool', 'a node-postgres Pool (new pg.Pool({ connectionString }))', pool);
  }
  const quoted = quoteTable(table, 'PostgresStore');
  check.bool('createTable', createTable, true);
  check.positiveMs('timeoutMs', timeoutMs);
  if (typeof sweepIntervalMs !== 'number' || !Number.isFinite(sweepIntervalMs) || sweepIntervalMs < 0) {
    check.fail('sweepIntervalMs', 'a number of ms (0: no sweep)', sweepIntervalMs);
  }
  if (!Number.isSafeInteger(sweepBatch) || sweepBatch <= 0) check.fail('sweepBatch', 'a positive integer', sweepBatch);
  return { pool, table: quoted, createTable, timeoutMs, sweepIntervalMs, sweepBatch };
}

/** {@link PostgresStoreConnectOptions} checked before `pg` is loaded; `rest` goes on to the store. */
export interface ResolvedPostgresConnectOptions {
  readonly connectionString: string;
  /** The `pg.Pool` options: `connectionTimeoutMillis` defaults to `timeoutMs`, then `poolOptions` over it. */
  readonly poolOptions: Record<string, unknown>;
  readonly rest: PostgresStoreCommonOptions;
}

/** Validate the options of `PostgresStore.connect` (the store's own options are validated by the store). */
export function resolvePostgresConnectOptions(options: PostgresStoreConnectOptions): ResolvedPostgresConnectOptions {
  const check = new Validator('PostgresStore.connect');
  const { connectionString, poolOptions = {}, ...rest } = options ?? ({} as PostgresStoreConnectOptions);
  if (typeof connectionString !== 'string' || connectionString === '') {
    check.fail('connectionString', 'a postgres:// URL', connectionString);
  }
  return {
    connectionString,
    poolOptions: { connectionString, connectionTimeoutMillis: rest.timeoutMs ?? POSTGRES_STORE_DEFAULTS.timeoutMs, ...poolOptions },
    rest,
  };
}
