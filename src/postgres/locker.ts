import { debuglog } from 'node:util';
import { withDeadline } from '../util/deadline.js';
import { LockLostError, LockTimeoutError, StoreError } from '../errors.js';
import { errorMessage } from '../util/format.js';
import { isConnectionError, recordOf, type PostgresStore } from './store.js';
import { postgresFastPathOf, type PostgresFastPath } from './fast-path.js';
import { POSTGRES_STORE_NAME, inline, literal, readSql, sqlState, type PgClientLike, type PgPoolLike, type PgResult } from './sql.js';
import type { Store } from '../contracts/store.js';
import type { AcquireOptions, Lease, Locker } from '../contracts/locker.js';
import { MemoryLocker } from '../memory/locker.js';
import { DEFAULTS } from '../options/defaults.js';
import { PostgresFencedStore } from './fenced.js';
import { resolvePostgresLockerOptions, type PostgresLockerOptions } from './locker-options.js';

export type { PostgresLockerOptions } from './locker-options.js';

const debug = debuglog('koa-locked-session');

/** A PostgresStore master on this locker's pool, with what it registered (src/postgres/fast-path.ts). */
interface FastPath {
  readonly info: PostgresFastPath;
  readonly store: PostgresStore;
}

/** SQLSTATEs of a lock wait that gave up: lock_not_available (lock_timeout), deadlock_detected. */
const LOCK_WAIT_FAILED = new Set(['55P03', '40P01']);
/** SQLSTATEs of a transaction the server ended: idle_in_transaction_session_timeout, admin_shutdown, crash_shutdown, idle_session_timeout. */
const ENDED_BY_SERVER = new Set(['25P03', '57P01', '57P02', '57P05']);

/**
 * The lock of a session is its row, in PostgreSQL itself: acquire = `BEGIN` on
 * a pooled connection, `SET LOCAL lock_timeout` (the wait left of
 * `lockTimeout`) and `idle_in_transaction_session_timeout` (`leaseMs`),
 * `pg_advisory_xact_lock` of the key, and `SELECT … FOR UPDATE` of the row,
 * which also reads it: one round trip. The scope's write is in that
 * transaction and commits it (`UPDATE …; COMMIT`, one round trip). A
 * transaction still open at release has written nothing (every write commits
 * it): a scope that wrote nothing, or threw, ends it with `ROLLBACK`.
 *
 * - Why an advisory lock as well as the row lock: a key may have no row yet
 *   (the user index before its first entry, a session past its expiry), and
 *   `FOR UPDATE` of no row locks nothing. Both locks live exactly as long as
 *   the transaction; `FOR UPDATE` also makes writes made outside a lease wait
 *   for the holder.
 * - A holder that dies frees the lock at once (its connection closes); one
 *   that hangs frees it after `leaseMs` idle (the server ends its connection).
 *   Either way its write has no transaction left to land in.
 * - Requests of one session in one process queue in process first (FIFO), so
 *   a hot session holds at most one pooled connection per process. Waiting
 *   for a pooled connection counts against `lockTimeout` too: an exhausted
 *   pool gives `LockTimeoutError`, never a hang.
 * - The fused read and the in-transaction writes apply when the master is a
 *   PostgresStore on this locker's pool. Any other master (another store, a
 *   PostgresStore on another pool or database): the lock only serializes, and
 *   the master's own versioned write fences a late save (docs/postgresql.md, "What is fenced").
 */
export class PostgresLocker implements Locker {
  readonly name = 'postgres';
  /** The pool its transactions run on (given, or the store's). */
  readonly pool: PgPoolLike;
  /** How long a transaction may sit idle before the server ends it and frees the lock (`options.leaseMs`). */
  readonly leaseMs: number;
  /** How long a scope's lock is kept alive at most (`options.maxHoldMs`). */
  readonly maxHoldMs: number;
  /** Prefix of the advisory lock's name (`options.namespace`). */
  readonly namespace: string;
  /** The in-process queue per key (holding it is the right to take a connection for the key). */
  readonly #local: MemoryLocker;

  constructor(options: PostgresLockerOptions) {
    const resolved = resolvePostgresLockerOptions(options);
    this.pool = resolved.pool;
    this.leaseMs = resolved.leaseMs;
    this.maxHoldMs = resolved.maxHoldMs;
    this.namespace = resolved.namespace;
    // A local holder past maxHoldMs + leaseMs has lost its transaction to the server: let the next one try.
    this.#local = new MemoryLocker({ maxHoldMs: this.maxHoldMs + this.leaseMs });
  }

  async acquire(key: string, options: AcquireOptions): Promise<Lease> {
    const { timeoutMs, signal, store, storeTimeoutMs } = options;
    const deadline = Date.now() + timeoutMs;
    const local = await this.#local.acquire(key, { timeoutMs, ...(signal ? { signal } : {}) });
    try {
      const fast = this.#fastPathOf(store);
      if (fast) await fast.info.ready();
      const client = await this.#connect(deadline, timeoutMs);
      return await this.#begin(
        key,
        client,
        local,
        fast,
        deadline,
        timeoutMs,
        storeTimeoutMs ?? fast?.info.timeoutMs ?? DEFAULTS.storeTimeout,
      );
    } catch (error) {
      await local.release();
      throw error;
    }
  }

  /** The master when its rows can be read and written in this locker's transactions (same pool, so same database). */
  #fastPathOf(store: Store | undefined): FastPath | undefined {
    const info = postgresFastPathOf(store);
    return info && info.pool === this.pool ? { info, store: store as PostgresStore } : undefined;
  }

  /** A pooled connection, waiting no longer than what is left of `lockTimeout`. */
  async #connect(deadline: number, timeoutMs: number): Promise<PgClientLike> {
    let gaveUp = false;
    const left = deadline - Date.now();
    if (left <= 0) throw new LockTimeoutError(timeoutMs);
    try {
      return await withDeadline(
        async () => {
          const client = await this.pool.connect();
          if (gaveUp) {
            client.release();
            throw new LockTimeoutError(timeoutMs);
          }
          return client;
        },
        left,
        () => {
          gaveUp = true;
          return new LockTimeoutError(timeoutMs, {
            cause: new Error(
              'no pooled PostgreSQL connection became free in time (raise the pool\'s `max`, see docs/postgresql.md, "Pool sizing")',
            ),
          });
        },
      );
    } catch (error) {
      if (error instanceof LockTimeoutError) throw error;
      throw new StoreError(POSTGRES_STORE_NAME, `LOCK failed: cannot connect: ${errorMessage(error)}`, { cause: error, outcome: 'none' });
    }
  }

  /** `BEGIN`, the timeouts, the locks and the read: one round trip. */
  async #begin(
    key: string,
    client: PgClientLike,
    local: Lease,
    fast: FastPath | undefined,
    deadline: number,
    timeoutMs: number,
    storeTimeoutMs: number,
  ): Promise<PostgresLease> {
    const waitMs = Math.max(1, Math.ceil(deadline - Date.now()));
    const statements = [
      'BEGIN',
      // SET LOCAL of both timeouts, then the advisory lock: one statement (a target list is evaluated left to right).
      `SELECT set_config('lock_timeout', '${waitMs}', true), set_config('idle_in_transaction_session_timeout', '${this.leaseMs}', true), pg_advisory_xact_lock(hashtextextended(${literal(this.namespace + key)}, 0))`,
    ];
    if (fast) statements.push(inline(readSql(fast.info.table, key, true)));
    const lease = new PostgresLease(this, key, client, local);
    let results: PgResult[];
    try {
      results = await lease.query(statements.join(';\n'), waitMs + storeTimeoutMs, false);
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause ?? error;
      if (LOCK_WAIT_FAILED.has(sqlState(cause) ?? '')) {
        await lease.release();
        throw new LockTimeoutError(timeoutMs, { cause });
      }
      await lease.release();
      if (error instanceof StoreError) throw error;
      throw new StoreError(POSTGRES_STORE_NAME, `LOCK failed: ${errorMessage(error)}`, { cause: error, outcome: 'none' });
    }
    if (fast) lease.store = new PostgresFencedStore(fast.store, lease, recordOf(results[results.length - 1]!));
    return lease;
  }
}

/**
 * A held PostgresLocker lock: an open transaction on a pooled connection (until
 * the scope's write commits it), plus this process's queue slot for the key.
 */
export class PostgresLease implements Lease {
  /** @internal Set when the master's rows are read and written in this transaction. */
  declare store?: PostgresFencedStore;
  #client: PgClientLike | undefined;
  #lost = false;
  #busy = false;
  #released = false;
  readonly #onError = (error: Error): void => {
    // The server ended the connection (idle past leaseMs, shutdown) or it broke: the lock is gone.
    debug('postgres lock connection error: %s', errorMessage(error));
    this.#lost = true;
    this.#drop(true);
  };

  /** Proves this process alive to the server while the scope runs (see PostgresLockerOptions.maxHoldMs). */
  #heartbeat: NodeJS.Timeout | undefined;

  /**
   * @param locker The locker that granted it.
   * @param key The locked key.
   * @param client The pooled connection whose transaction holds the lock.
   * @param local This process's queue slot for the key.
   */
  constructor(
    readonly locker: PostgresLocker,
    readonly key: string,
    client: PgClientLike,
    readonly local: Lease,
  ) {
    this.#client = client;
    client.on('error', this.#onError);
    const until = Date.now() + locker.maxHoldMs;
    this.#heartbeat = setInterval(
      () => {
        const held = this.#client;
        if (!held || Date.now() > until) return this.#stopHeartbeat();
        // Queued behind any statement of the scope by the client; an error shows up as the client's 'error' or the next statement's.
        if (!this.#busy) held.query('SELECT 1').catch((error: unknown) => debug('postgres lock heartbeat failed: %s', errorMessage(error)));
      },
      Math.max(1, Math.floor(locker.leaseMs / 3)),
    );
    this.#heartbeat.unref();
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  /** True once the lock's transaction ended before the scope's write (its connection closed): a save is refused. */
  get lost(): boolean {
    return this.#lost || this.local.lost;
  }

  /** True while the lock's transaction is open (before the scope's write committed it). */
  get inTransaction(): boolean {
    return this.#client !== undefined && !this.#lost;
  }

  /** The row lock ends with the transaction: once the save committed it, this lease is not handed to the next scope of the process. */
  get holdsLock(): boolean {
    return this.inTransaction;
  }

  /**
   * Run `sql` (one or more statements) in the lock's transaction, bounded by
   * `timeoutMs`. `commits`: it ends with `COMMIT`, after which the connection
   * goes back to the pool. A statement error rolls the transaction back.
   * @internal
   */
  async query(sql: string, timeoutMs: number, commits: boolean): Promise<PgResult[]> {
    const client = this.#client;
    if (!client || this.lost)
      throw new LockLostError(
        'koa-locked-session: the PostgreSQL transaction holding the session lock ended before the save; nothing was saved',
      );
    this.#busy = true;
    try {
      const result: PgResult | PgResult[] = await withDeadline(
        () => client.query(sql),
        timeoutMs,
        () => new StoreError(POSTGRES_STORE_NAME, `no reply within ${timeoutMs} ms`),
      );
      if (commits) this.#drop(false);
      return Array.isArray(result) ? result : [result];
    } catch (error) {
      const state = sqlState(error);
      // Ended by the server for idling past leaseMs: that happened before this statement ran.
      if (state === '25P03' || (!commits && (this.#lost || ENDED_BY_SERVER.has(state ?? '')))) {
        this.#lost = true;
        this.#drop(true);
        throw new LockLostError(
          "koa-locked-session: the PostgreSQL transaction holding the session lock ended (connection closed, or idle past the locker's `leaseMs`) before the save; nothing was saved",
          { cause: error },
        );
      }
      if (error instanceof StoreError || isConnectionError(error)) {
        // No answer: the connection is of no further use, and whether a COMMIT in flight landed is unknown.
        this.#lost = true;
        this.#drop(true);
        throw error instanceof StoreError
          ? error
          : new StoreError(POSTGRES_STORE_NAME, `query in the lock's transaction failed: ${errorMessage(error)}`, { cause: error });
      }
      // The statement failed: the transaction is aborted, nothing of it is written.
      await this.#end('ROLLBACK');
      throw new StoreError(POSTGRES_STORE_NAME, `query in the lock's transaction failed: ${errorMessage(error)}`, {
        cause: error,
        outcome: 'none',
      });
    } finally {
      this.#busy = false;
    }
  }

  /**
   * End the lock's transaction if still open (then nothing was written in it:
   * a scope that read only, or threw) with `ROLLBACK`, and free the key in this
   * process. Idempotent.
   */
  async release(): Promise<void> {
    await this.#finish();
  }

  /** `await using lease = await locker.acquire(key, …)`: {@link release} at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  async #finish(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    try {
      if (this.#busy)
        this.#drop(true); // a statement still running: closing the connection ends (and rolls back) it
      else await this.#end('ROLLBACK');
    } finally {
      await this.local.release();
    }
  }

  /** End the transaction and give the connection back (destroyed if that fails). */
  async #end(end: 'ROLLBACK'): Promise<void> {
    const client = this.#client;
    if (!client) return;
    try {
      await withDeadline(
        () => client.query(end),
        this.locker.leaseMs,
        () => new Error(`${end} got no reply`),
      );
      this.#drop(false);
    } catch (error) {
      debug('postgres lock %s failed: %s', end, errorMessage(error));
      this.#drop(true);
    }
  }

  /** Give the connection back to the pool (`destroy`: close it; the server rolls back whatever was open). */
  #drop(destroy: boolean): void {
    const client = this.#client;
    this.#stopHeartbeat();
    if (!client) return;
    this.#client = undefined;
    client.removeListener('error', this.#onError);
    if (destroy) client.on('error', ignore); // a late error of a closed connection must not end the process
    client.release(destroy ? true : undefined);
  }
}

function ignore(): void {}
