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

/** The names each accepts (a JavaScript caller may pass anything: the rest are refused, never ignored). */
const COMMON_OPTIONS = ['table', 'createTable', 'timeoutMs', 'sweepIntervalMs', 'sweepBatch'] as const;
const OPTIONS = ['pool', ...COMMON_OPTIONS] as const;
const CONNECT_OPTIONS = ['connectionString', 'poolOptions', ...COMMON_OPTIONS] as const;

/** connect-pg-simple's options (and other PostgreSQL session stores'), with what to use here. */
const PEER_HINTS: Readonly<Record<string, string>> = {
  tableName: 'Use `table`',
  schemaName: "Use `table: 'schema.table'`",
  createTableIfMissing: 'Use `createTable`',
  pgPromise: 'Pass a node-postgres Pool: `new PostgresStore({ pool: new pg.Pool({ connectionString }) })`',
  ttl: 'The session TTL is an option of session(): `session({ ttl })`',
  pruneSessionInterval: 'Use `sweepIntervalMs` (in ms; `0`: no sweep)',
  pruneSessionRandomizedInterval:
    'No counterpart: `sweepIntervalMs` sets the period, and processes sweeping together skip rows another one is deleting',
  disableTouch: 'No counterpart: a session is renewed on every request only with `session({ rolling: true })` (off by default)',
  errorLog: 'No counterpart: a failing operation fails its request with a `StoreError` (503), which your error handling sees',
};

/** Hints of `new PostgresStore()`: the connection is a pool, or `PostgresStore.connect()`. */
const HINTS: Readonly<Record<string, string>> = {
  ...PEER_HINTS,
  conString: 'Pass a `pool`, or let the store create one: `await PostgresStore.connect({ connectionString })`',
  conObject: 'Pass a `pool`, or let the store create one: `await PostgresStore.connect({ connectionString, poolOptions })`',
  connectionString: 'Pass a `pool`, or let the store create one: `await PostgresStore.connect({ connectionString })`',
  url: 'Pass a `pool`, or let the store create one: `await PostgresStore.connect({ connectionString })`',
  poolOptions: 'Only `PostgresStore.connect({ connectionString, poolOptions })` creates a pool; give `new pg.Pool()` its options yourself',
};

/** `pg.Pool` / `pg.Client` options, which `PostgresStore.connect()` takes in `poolOptions`. */
const POOL_OPTIONS = [
  'host',
  'port',
  'user',
  'password',
  'database',
  'ssl',
  'max',
  'min',
  'idleTimeoutMillis',
  'connectionTimeoutMillis',
  'statement_timeout',
  'query_timeout',
  'application_name',
  'keepAlive',
] as const;

/** Hints of `PostgresStore.connect()`: the connection is `connectionString` (+ `poolOptions`). */
const CONNECT_HINTS: Readonly<Record<string, string>> = {
  ...PEER_HINTS,
  conString: 'Use `connectionString`',
  url: 'Use `connectionString`',
  conObject: 'Use `connectionString`, and `poolOptions` for the other `pg.Pool` options',
  pool: 'Pass your pool to `new PostgresStore({ pool })`: `PostgresStore.connect()` creates (and ends) its own',
  ...Object.fromEntries(POOL_OPTIONS.map((name) => [name, `A \`pg.Pool\` option: pass it as \`poolOptions: { ${name} }\``])),
};

/** {@link PostgresStoreCommonOptions} validated, with every default filled in (`table` quoted). */
type ResolvedCommonOptions = Omit<ResolvedPostgresStoreOptions, 'pool'>;

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
  const input = check.object('options', options as (PostgresStoreCommonOptions & { pool?: unknown }) | undefined);
  check.known(input, OPTIONS, HINTS);
  const { pool } = input;
  if (typeof pool !== 'object' || pool === null || typeof (pool as PgPoolLike).connect !== 'function') {
    check.fail('pool', 'a node-postgres Pool (new pg.Pool({ connectionString }))', pool);
  }
  return { pool: pool as PgPoolLike, ...resolveCommon(check, input) };
}

/** The options both take, checked by `check` (which names the caller: `PostgresStore` or `PostgresStore.connect`). */
function resolveCommon(check: Validator, input: PostgresStoreCommonOptions): ResolvedCommonOptions {
  const { table = POSTGRES_STORE_DEFAULTS.table } = input;
  return {
    table: quoteTable(table, check.owner),
    createTable: check.bool('createTable', input.createTable, POSTGRES_STORE_DEFAULTS.createTable),
    timeoutMs: check.positiveMs('timeoutMs', input.timeoutMs, POSTGRES_STORE_DEFAULTS.timeoutMs),
    sweepIntervalMs: check.nonNegativeMs('sweepIntervalMs', input.sweepIntervalMs, POSTGRES_STORE_DEFAULTS.sweepIntervalMs),
    sweepBatch: safe(check, 'sweepBatch', check.positiveInt('sweepBatch', input.sweepBatch, POSTGRES_STORE_DEFAULTS.sweepBatch)),
  };
}

/** `value` when it is a safe integer (it becomes a `LIMIT` parameter), else the option's TypeError. */
function safe(check: Validator, option: string, value: number): number {
  if (!Number.isSafeInteger(value)) check.fail(option, 'a positive integer', value);
  return value;
}

/** {@link PostgresStoreConnectOptions} checked before `pg` is loaded; `rest` goes on to the store. */
export interface ResolvedPostgresConnectOptions {
  readonly connectionString: string;
  /** The `pg.Pool` options: `connectionTimeoutMillis` defaults to `timeoutMs`, then `poolOptions` over it. */
  readonly poolOptions: Record<string, unknown>;
  readonly rest: PostgresStoreCommonOptions;
}

/**
 * Validate every option of `PostgresStore.connect`, the store's own included,
 * before `pg` is loaded: a refused option never leaves a pool behind.
 */
export function resolvePostgresConnectOptions(options: PostgresStoreConnectOptions): ResolvedPostgresConnectOptions {
  const check = new Validator('PostgresStore.connect');
  const input = check.object('options', options);
  check.known(input, CONNECT_OPTIONS, CONNECT_HINTS);
  const { connectionString, poolOptions, ...rest } = input;
  if (typeof connectionString !== 'string' || connectionString === '')
    check.fail('connectionString', 'a postgres:// URL', connectionString);
  const given = check.object('poolOptions', poolOptions);
  const { timeoutMs } = resolveCommon(check, rest);
  return {
    connectionString,
    poolOptions: { connectionString, connectionTimeoutMillis: timeoutMs, ...given },
    rest,
  };
}
