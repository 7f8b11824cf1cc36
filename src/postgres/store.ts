import { debuglog } from 'node:util';
import { withDeadline } from '../util/deadline.js';
import { StoreError } from '../errors.js';
import { errorMessage, redactUrl } from '../util/format.js';
import {
  POSTGRES_STORE_NAME,
  createTableSql,
  decodeValue,
  destroySql,
  readSql,
  setSql,
  sqlState,
  sweepSql,
  touchSql,
  versionOf,
  writeSql,
  type PgClientLike,
  type PgPoolLike,
  type PgResult,
  type Statement,
} from './sql.js';
import type { VersionedRecord, VersionedStore, WriteCondition } from '../contracts/store.js';
import { registerPostgresFastPath } from './fast-path.js';
import {
  resolvePostgresConnectOptions,
  resolvePostgresStoreOptions,
  type PostgresStoreConnectOptions,
  type PostgresStoreOptions,
} from './store-options.js';

export { POSTGRES_STORE_NAME, type PgClientLike, type PgPoolLike } from './sql.js';
export type { PostgresStoreCommonOptions, PostgresStoreConnectOptions, PostgresStoreOptions } from './store-options.js';

const debug = debuglog('koa-locked-session');

/** Advisory lock key prefix serializing CREATE TABLE across processes. */
const CREATE_LOCK = 'koa-locked-session:create-table:';
/** SQLSTATEs of "created meanwhile by another process" (CREATE … IF NOT EXISTS is not atomic against itself). */
const CREATED_MEANWHILE = new Set([
  '23505' /* unique_violation on pg_type */,
  '42P07' /* duplicate_table */,
  '42710' /* duplicate_object */,
]);
/** Statements of one sweep at most (each deletes up to `sweepBatch` rows). */
const SWEEP_ROUNDS = 10;

const ownedPools = new WeakMap<PostgresStore, PgPoolLike>();

/**
 * Sessions in PostgreSQL (node-postgres), one row per session:
 * `(sid text PRIMARY KEY, value text, v bigint, expires_at timestamptz)`.
 *
 * - Versioned writes are single statements whose `WHERE` checks the condition
 *   (`UPDATE … WHERE v = $n`, `INSERT … ON CONFLICT DO UPDATE … WHERE`), so a
 *   write that lands late is refused once the record has moved on.
 * - Reads filter `expires_at > clock_timestamp()`: expiry is exact; expired
 *   rows are deleted by a bounded, unref'd sweep.
 * - With {@link PostgresLocker} the lock is the session's row: see there.
 * - Failures reject with a `StoreError` (`[postgres] …`, status 503) within `timeoutMs`.
 *
 * @example
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * pool.on('error', (error) => console.error('idle postgres connection', error));
 * const store = new PostgresStore({ pool });
 * app.use(session({ master: store, locker: new PostgresLocker({ pool }) }));
 */
export class PostgresStore implements VersionedStore {
  readonly name = POSTGRES_STORE_NAME;
  /** The pool it queries (given, or created by `PostgresStore.connect()` and ended by `close()`). */
  readonly pool: PgPoolLike;
  /** The quoted table name, e.g. `"sessions"`. */
  readonly table: string;
  /** @see PostgresStoreCommonOptions.timeoutMs */
  readonly timeoutMs: number;
  readonly #createTable: boolean;
  readonly #sweepIntervalMs: number;
  readonly #sweepBatch: number;
  #created: Promise<void> | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #sweeping = false;
  #closed = false;

  constructor(options: PostgresStoreOptions) {
    const { pool, table, createTable, timeoutMs, sweepIntervalMs, sweepBatch } = resolvePostgresStoreOptions(options);
    this.pool = pool;
    this.table = table;
    this.timeoutMs = timeoutMs;
    this.#createTable = createTable;
    this.#sweepIntervalMs = sweepIntervalMs;
    this.#sweepBatch = sweepBatch;
    registerPostgresFastPath(this, { pool, table: this.table, timeoutMs, ready: () => this.ensureTable() });
  }

  /** A store with its own `pg.Pool` (the driver is loaded only here); `close()` ends it. */
  static async connect(options: PostgresStoreConnectOptions): Promise<PostgresStore> {
    const { connectionString, poolOptions, rest } = resolvePostgresConnectOptions(options);
    const pg = await import('pg');
    const Pool = pg.default?.Pool ?? (pg as unknown as { Pool: typeof pg.default.Pool }).Pool;
    const pool = new Pool(poolOptions) as unknown as PgPoolLike;
    // Idle connections that die (server restart) are replaced on the next checkout; without a listener their error would end the process.
    pool.on('error', (error) => debug('postgres idle connection error (%s): %s', redactUrl(connectionString), errorMessage(error)));
    const store = new PostgresStore({ ...rest, pool });
    ownedPools.set(store, pool);
    return store;
  }

  /**
   * Create the table and its index if missing (once; later calls share the
   * result; a failure is retried on the next call). Called by the first
   * operation; call it at startup to fail early. Concurrent creation by many
   * processes is serialized by an advisory lock, and a "created meanwhile"
   * error from a server without it is taken as success.
   */
  ensureTable(): Promise<void> {
    if (!this.#createTable) return Promise.resolve();
    this.#created ??= this.#create().then(
      () => this.#startSweeper(),
      (error: unknown) => {
        this.#created = undefined;
        throw error;
      },
    );
    return this.#created;
  }

  async #create(): Promise<void> {
    await this.#run('CREATE TABLE', async (client) => {
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [CREATE_LOCK + this.table]);
        await client.query(createTableSql(this.table));
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        if (!CREATED_MEANWHILE.has(sqlState(error) ?? '')) throw error;
      }
    });
  }

  #startSweeper(): void {
    if (this.#closed || this.#sweeper || this.#sweepIntervalMs === 0) return;
    this.#sweeper = setInterval(() => {
      this.sweep().catch((error: unknown) => debug('postgres sweep failed: %s', errorMessage(error)));
    }, this.#sweepIntervalMs).unref();
  }

  /**
   * Delete expired rows now, in batches of `sweepBatch` (at most 10 batches
   * per call); resolves to how many. The sweeper calls this every
   * `sweepIntervalMs`; one sweep at a time per store.
   */
  async sweep(): Promise<number> {
    if (this.#sweeping) return 0;
    this.#sweeping = true;
    try {
      let total = 0;
      for (let round = 0; round < SWEEP_ROUNDS && !this.#closed; round++) {
        const result = (await this.#run('SWEEP', (client) => client.query(sweepSql(this.table, this.#sweepBatch)))) as PgResult;
        total += result.rowCount ?? 0;
        if ((result.rowCount ?? 0) < this.#sweepBatch) break;
      }
      return total;
    } finally {
      this.#sweeping = false;
    }
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.read(key))?.value;
  }

  async read(key: string): Promise<VersionedRecord | undefined> {
    const result = await this.#statement('READ', readSql(this.table, key));
    return recordOf(result);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.#statement('SET', setSql(this.table, key, value, ttlMs));
  }

  async write(key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition): Promise<boolean> {
    const statement = writeSql(this.table, key, value, version, ttlMs, condition);
    return statement.applied(await this.#statement('WRITE', statement));
  }

  async destroy(key: string): Promise<void> {
    await this.#statement('DELETE', destroySql(this.table, key));
  }

  async touch(key: string, ttlMs: number): Promise<void> {
    await this.#statement('TOUCH', touchSql(this.table, key, ttlMs));
  }

  /** Stop the sweeper, and end the pool if this store created it ({@link PostgresStore.connect}). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    const pool = ownedPools.get(this);
    ownedPools.delete(this);
    await pool?.end();
  }

  async #statement(command: string, statement: Statement): Promise<PgResult> {
    await this.ensureTable();
    return this.#run(command, (client) => client.query(statement.text, statement.values as unknown[]));
  }

  /**
   * Run `work` on a pooled client, bounded by `timeoutMs` (the checkout
   * included), failures as `StoreError`. A client whose work timed out is
   * destroyed, not reused: its statement may still be running.
   */
  async #run<T>(command: string, work: (client: PgClientLike) => Promise<T>): Promise<T> {
    let client: PgClientLike | undefined;
    let timedOut = false;
    let connected = false;
    const onError = (error: Error): void => debug('postgres connection error during %s: %s', command, errorMessage(error));
    const run = async (): Promise<T> => {
      const checkedOut = await this.pool.connect();
      if (timedOut) {
        checkedOut.release(); // the caller has given up: hand it straight back
        throw new StoreError(this.name, `${command} failed: timed out`);
      }
      client = checkedOut;
      client.on('error', onError);
      connected = true;
      return work(client);
    };
    let failure: unknown;
    try {
      return await withDeadline(run, this.timeoutMs, () => {
        timedOut = true;
        return new StoreError(this.name, `${command} failed: no reply within ${this.timeoutMs} ms`, connected ? {} : { outcome: 'none' });
      });
    } catch (error) {
      failure = error;
      if (error instanceof StoreError) throw error;
      // Never connected: the statement never left.
      throw new StoreError(this.name, `${command} failed: ${errorMessage(error)}`, {
        cause: error,
        ...(connected ? {} : { outcome: 'none' as const }),
      });
    } finally {
      if (client) {
        client.removeListener('error', onError);
        // A timed-out client may still run the statement; a broken one is useless: destroy both.
        client.release(timedOut || (failure !== undefined && isConnectionError(failure)) ? true : undefined);
      }
    }
  }
}

/** The record of a read (`readSql`), or undefined when absent or expired. */
export function recordOf(result: PgResult): VersionedRecord | undefined {
  const row = result.rows[0] as { value: unknown; v: unknown; live: unknown } | undefined;
  if (!row || row.live !== true) return undefined;
  const version = versionOf(row.v);
  if (row.value === null || row.value === undefined) return { value: undefined, version };
  return { value: decodeValue(typeof row.value === 'string' ? row.value : String(row.value)), version };
}

/** An error of the connection rather than of the statement (no SQLSTATE, or class 08/57: connection, operator intervention). */
export function isConnectionError(error: unknown): boolean {
  const state = sqlState(error) ?? sqlState((error as { cause?: unknown } | null)?.cause);
  return state === undefined || state.startsWith('08') || state.startsWith('57');
}
