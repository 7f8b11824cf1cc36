/**
 * The master PostgresStore seen through a PostgresLocker lease: the session's
 * row is read and written inside the lock's own transaction.
 */
import { LockLostError, StoreError } from '../errors.js';
import { errorMessage } from '../util/format.js';
import { recordOf, type PostgresStore } from './store.js';
import { destroySql, inline, readSql, setSql, touchSql, writeSql, type PgResult, type Statement } from './sql.js';
import type { VersionedRecord, VersionedStore, WriteCondition } from '../contracts/store.js';

/**
 * What the fenced view needs of a PostgresLease (src/postgres/locker.ts), by shape:
 * the locker builds this view, so importing the lease class here would be an
 * import circle.
 */
export interface PostgresFence {
  /** The locked key: the only key whose writes go through the lease's transaction. */
  readonly key: string;
  /** The lease's transaction ended (connection closed, idle past `leaseMs`): its writes are refused. */
  readonly lost: boolean;
  /** The row lock is held inside an open transaction. */
  readonly inTransaction: boolean;
  /** Run `sql` inside the lease's transaction (`commits`: it ends the transaction). */
  query(sql: string, timeoutMs: number, commits: boolean): Promise<PgResult[]>;
}

/**
 * A PostgresStore seen through a lease. For the lease's key:
 * - the first `get`/`read` returns the row read by the acquire (`SELECT … FOR
 *   UPDATE`, same round trip as the lock);
 * - a write (`write`, `set`, `destroy`, `touch`) runs in the lock's
 *   transaction and commits it, in one round trip: `UPDATE …; COMMIT`. It
 *   cannot land after the lock is gone: a holder whose connection was closed
 *   (it died, or sat idle past the locker's `leaseMs`) has no transaction left
 *   to write in (`LockLostError`, nothing written). The write is durable when
 *   the call returns, so its outcome is never decided later by `release()`;
 * - after that commit the row lock is free and later operations of the key go
 *   to the store, still version-conditional; the lock of the key in this
 *   process is held until `release()`.
 * Other keys pass through to the store.
 */
export class PostgresFencedStore implements VersionedStore {
  readonly name: string;
  #prefetched: boolean;
  #record: VersionedRecord | undefined;

  constructor(
    readonly store: PostgresStore,
    readonly lease: PostgresFence,
    record: VersionedRecord | undefined,
  ) {
    this.name = store.name;
    this.#prefetched = true;
    this.#record = record;
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.read(key))?.value;
  }

  async read(key: string): Promise<VersionedRecord | undefined> {
    if (key !== this.lease.key) return this.store.read(key);
    if (this.#prefetched) {
      this.#prefetched = false;
      const record = this.#record;
      this.#record = undefined;
      return record;
    }
    if (!this.lease.inTransaction) return this.store.read(key);
    return recordOf(await this.#inTransaction('READ', inline(readSql(this.store.table, key))));
  }

  async write(key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition): Promise<boolean> {
    const statement = writeSql(this.store.table, key, value, version, ttlMs, condition);
    if (key !== this.lease.key || !this.#fenced()) return this.store.write(key, value, version, ttlMs, condition);
    return this.#commitWith('WRITE', statement);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    const statement = setSql(this.store.table, key, value, ttlMs);
    if (key !== this.lease.key || !this.#fenced()) return this.store.set(key, value, ttlMs);
    await this.#commitWith('SET', statement);
  }

  async destroy(key: string): Promise<void> {
    if (key !== this.lease.key || !this.#fenced()) return this.store.destroy(key);
    await this.#commitWith('DELETE', destroySql(this.store.table, key));
  }

  async touch(key: string, ttlMs: number): Promise<void> {
    const statement = touchSql(this.store.table, key, ttlMs);
    if (key !== this.lease.key || !this.#fenced()) return this.store.touch(key, ttlMs);
    await this.#commitWith('TOUCH', statement);
  }

  /** True while the write must go through the lock's transaction; throws once the lock is known lost. */
  #fenced(): boolean {
    this.#prefetched = false;
    if (this.lease.lost)
      throw new LockLostError(
        "koa-locked-session: the PostgreSQL transaction holding the session lock ended (connection closed, or idle past the locker's `leaseMs`) before the save; nothing was saved",
      );
    return this.lease.inTransaction;
  }

  /** `statement; COMMIT` in the lock's transaction, one round trip: resolves whether the statement applied. */
  async #commitWith(command: string, statement: Statement): Promise<boolean> {
    const results = await this.#inTransaction(command, `${inline(statement)};\nCOMMIT`, true);
    return statement.applied(results);
  }

  async #inTransaction(command: string, sql: string, commits = false): Promise<PgResult> {
    try {
      const results = await this.lease.query(sql, this.store.timeoutMs, commits);
      return Array.isArray(results) ? results[0]! : results;
    } catch (error) {
      if (error instanceof LockLostError || error instanceof StoreError) throw error;
      throw new StoreError(this.name, `${command} in the lock's transaction failed: ${errorMessage(error)}`, { cause: error });
    }
  }
}
