import { debuglog } from 'node:util';
import { performance } from 'node:perf_hooks';
import { ConflictError, LockLostError, LockTimeoutError } from '../errors.js';
import { lockChannel } from '../diagnostics.js';
import { redactSids } from '../util/format.js';
import { Batch } from './group-commit.js';
import { localQueues, type FreshRecord, type LocalQueues } from './local-queue.js';
import type { Lease } from '../contracts/locker.js';
import type { ResolvedOptions } from '../options.js';
import type { Replica } from './replica.js';
import type { RequestWriteOptions, VersionedRecord } from '../contracts/store.js';

const debug = debuglog('koa-locked-session');

/**
 * The lock on one session's record, the one way every write under a lock
 * starts (a request's scope, revokeAll, the maxSessionsPerUser cap): acquire
 * (published on the diagnostics channel), the lease-guarded view of the
 * master where the locker offers one, a fresh read under the lock, writes
 * conditional on the version read, release.
 */
export class SessionLock {
  /** Where the holder reads and writes: the replica, its master guarded by the lease where the locker can. */
  readonly store: Replica;
  /** The lease went back with the last write (RedisLocker's fast path): nothing left to hand over. */
  #releasedByWrite = false;
  #released = false;
  /** Group commit: the record of a batch handed over with the lease, not yet in the master (the next write of the key carries it). */
  #pending: (FreshRecord & { readonly batch: Batch; readonly ttl: number }) | undefined;
  /**
   * Group commit: the batch this holder stands on, written under it by {@link #flushLater}
   * (its members must not wait out a long scope): rejects if that write failed.
   */
  #flushed: Promise<void> | undefined;
  #flushState: 'running' | 'written' | 'failed' | undefined;
  /** Armed by {@link #flushLater}; cleared once the batch is written, handed on or released otherwise (a long `maxMs` must not keep it). */
  #flushTimer: NodeJS.Timeout | undefined;
  /** 1 once {@link #flushed} wrote the record the holder stands on: its versions of the key are one behind the master's. */
  #shift = 0;

  private constructor(
    readonly key: string,
    readonly lease: Lease,
    replica: Replica,
    private readonly options: ResolvedOptions,
    /** This process' queues of the key (`undefined`: handoff off, every scope goes to the locker). */
    private readonly queues: LocalQueues | undefined,
    /** The record the previous holder of this process wrote under the same lease (a handoff). */
    private fresh: FreshRecord | undefined,
  ) {
    this.store = lease.store ? replica.withMaster(lease.store) : replica;
    if (fresh?.batch !== undefined) {
      this.#pending = fresh as FreshRecord & { batch: Batch; ttl: number };
      this.#flushLater();
    }
  }

  /** Whether the holder stands on a batch's record that is not (known to be) in the master: its next write of the key must be made, even with no change of its own. */
  get pending(): boolean {
    return this.#pending !== undefined || this.#flushState === 'running' || this.#flushState === 'failed';
  }

  /**
   * The batch's members wait for the write that carries it; a holder that runs
   * long (a slow call under the lock, a scope that never ends) would keep them
   * waiting all that time. Once the batch is `groupCommit.maxMs` old and still
   * unwritten, write it under the holder: the record written is the one the
   * holder stands on, so its later writes of the key go one version on (its
   * write fails if this one did: it built on changes that were not saved).
   * Not with a lease whose lock ends with its first write (PostgresLocker).
   * A timer: it cannot fire while the holder's function blocks the event loop,
   * so such a holder's batch shares its fate (docs/group-commit.md, "A scope
   * that blocks the event loop"; test/group-commit-cpu-bound.test.ts).
   */
  #flushLater(): void {
    const bounds = this.options.groupCommit;
    const pending = this.#pending;
    if (!bounds || !pending || this.lease.holdsLock !== undefined) return;
    this.#flushTimer = setTimeout(
      () => {
        if (this.#pending !== pending || this.#released || this.#releasedByWrite) return; // written, handed on or released meanwhile
        this.#pending = undefined;
        this.#flushState = 'running';
        this.#flushed = this.#flush(pending).then(async (written) => {
          this.#flushState = written ? 'written' : 'failed';
          if (!written)
            throw await pending.batch.done.then(
              () => new ConflictError(),
              (error: unknown) => error,
            ); // the error its members got
          this.#shift = 1;
        });
        this.#flushed.catch(() => {}); // awaited by the holder's next write or release
      },
      Math.max(0, bounds.maxMs - (performance.now() - pending.batch.started)),
    );
    this.#flushTimer.unref();
  }

  /**
   * Wait for the lock on `key` (`timeoutMs`: default `lockTimeout`): first in
   * this process' queue of the key, then, unless the lease is handed over by
   * the scope before (see {@link release}), from the locker.
   */
  static async acquire(options: ResolvedOptions, replica: Replica, key: string, timeoutMs = options.lockTimeout): Promise<SessionLock> {
    const { locker, name } = options;
    if (!lockChannel.hasSubscribers) return SessionLock.#acquire(options, replica, key, timeoutMs);
    const start = performance.now();
    let outcome: 'acquired' | 'timeout' | 'error' = 'error';
    try {
      const lock = await SessionLock.#acquire(options, replica, key, timeoutMs);
      outcome = 'acquired';
      return lock;
    } catch (error) {
      if (error instanceof LockTimeoutError) outcome = 'timeout';
      throw error;
    } finally {
      lockChannel.publish({ session: name, locker: locker.name, waitMs: performance.now() - start, outcome });
    }
  }

  static async #acquire(options: ResolvedOptions, replica: Replica, key: string, timeoutMs: number): Promise<SessionLock> {
    const { locker, storeTimeout } = options;
    if (options.handoff === false) {
      return new SessionLock(
        key,
        await locker.acquire(key, { timeoutMs, storeTimeoutMs: storeTimeout, store: replica.master }),
        replica,
        options,
        undefined,
        undefined,
      );
    }
    const queues = localQueues(locker, replica.master);
    const start = performance.now();
    const entered = queues.enter(key, timeoutMs);
    const grant = entered instanceof Promise ? await entered : entered;
    if (grant.lease !== undefined) return new SessionLock(key, grant.lease, replica, options, queues, grant.fresh);
    let lease: Lease;
    try {
      const left = entered instanceof Promise ? Math.max(1, timeoutMs - (performance.now() - start)) : timeoutMs;
      lease = await locker.acquire(key, { timeoutMs: left, storeTimeoutMs: storeTimeout, store: replica.master });
    } catch (error) {
      void queues.release(key, undefined, false, undefined, async () => {});
      throw error;
    }
    queues.acquired(key);
    return new SessionLock(key, lease, replica, options, queues, undefined);
  }

  /**
   * The record as it is now, read under the lock (`value` undefined: a
   * tombstone); after a handoff, the record the previous holder wrote under
   * the same lease (nobody else could write it since).
   */
  read(): Promise<VersionedRecord | undefined> {
    const fresh = this.fresh;
    this.fresh = undefined;
    // A batch's record is read whatever its age: the master does not hold it yet.
    if (fresh !== undefined && (fresh.batch !== undefined || performance.now() < fresh.until))
      return Promise.resolve({ value: fresh.value, version: fresh.version });
    return this.store.read(this.key);
  }

  /** Refuse to write once the lease is known lost: another holder may have written since our read. */
  checkHeld(): void {
    if (this.lease.lost) throw new LockLostError();
  }

  /**
   * The next write is the holder's last store operation: let the locker
   * release in the same round trip, unless a scope of this process waits for
   * the key and will get the lease handed over instead.
   */
  releaseWithNextWrite(): void {
    const { lease } = this;
    if (!lease.releaseWithNextWrite || this.#flushState === 'running' || this.queues?.wouldHandOff(this.key, lease, this.options.handoff))
      return;
    this.#releasedByWrite = true;
    lease.releaseWithNextWrite();
  }

  /**
   * Write the locked key, conditional on `version` (see {@link writeIfVersion}).
   * A batch the holder stands on rides on this write: it is acknowledged with
   * it, or fails with it.
   */
  async write(value: string | undefined, version: number, ttl: number, tombstoneMs = 0, options?: RequestWriteOptions): Promise<void> {
    const pending = this.#pending;
    this.#pending = undefined;
    clearTimeout(this.#flushTimer);
    if (this.#flushed !== undefined) await this.#flushed; // (rejects if the batch under this holder could not be written)
    try {
      await writeIfVersion(this.store, this.key, value, version + this.#shift, ttl, tombstoneMs, options);
    } catch (error) {
      pending?.batch.settle(error);
      throw error;
    }
    pending?.batch.settle(undefined, value === undefined); // a delete or tombstone: the batch's members send no cookie
  }

  /**
   * Group commit: instead of writing `value` (at `version` + 1), hand the
   * lease and the unsaved record to the next scope of this process waiting for
   * the key, when one waits and the bounds allow. The write of a later holder
   * carries it; the returned promise settles with that write (`true`: it
   * removed the record, see {@link Batch.done}). `undefined`: nobody to hand
   * it to, write it yourself.
   */
  defer(value: string, version: number, ttl: number): Promise<boolean> | undefined {
    const bounds = this.options.groupCommit;
    const queues = this.queues;
    if (!bounds || !queues || this.#released || !queues.wouldHandOff(this.key, this.lease, this.options.handoff)) return undefined; // (the common case: nobody waits, no batch made)
    if (this.#flushState === 'running' || this.#flushState === 'failed') return undefined; // write it yourself, once that flush is known
    const batch = this.#pending?.batch ?? new Batch();
    if (
      batch.full(bounds) ||
      !queues.handOver(this.key, this.lease, this.options.handoff, { value, version: version + this.#shift, until: Infinity, batch, ttl })
    )
      return undefined;
    batch.size++;
    this.#pending = undefined;
    clearTimeout(this.#flushTimer);
    this.#released = true;
    return batch.done;
  }

  /**
   * Release the lock: hand it to the next scope of this process waiting for
   * the key (with `fresh`, the record this holder wrote, when it vouches one),
   * or back to the locker. A batch the holder still stands on (it wrote
   * nothing: it threw, or failed before its write) goes on with the lease, or
   * is written here before the lease leaves the process. A failure to release
   * only logs (the lease expires on its own, the outcome is already decided).
   */
  async release(fresh?: FreshRecord): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearTimeout(this.#flushTimer);
    if (this.#flushed !== undefined) {
      // A batch written under this holder: the lease goes on only once that write is known; a record the holder vouches is one version on.
      fresh = await this.#flushed.then(
        () => fresh && { ...fresh, version: fresh.version + this.#shift },
        () => undefined,
      );
    }
    const pending = this.#pending;
    if (pending !== undefined) {
      this.#pending = undefined;
      const bounds = this.options.groupCommit;
      if (bounds && !pending.batch.expired(bounds) && this.queues?.handOver(this.key, this.lease, this.options.handoff, pending)) return;
      fresh = await this.#flush(pending);
    }
    const lease = this.#releasedByWrite ? undefined : this.lease;
    if (this.#releasedByWrite || !this.queues) await this.#releaseLease(); // after a write that released it: a no-op (a refused write did not)
    await this.queues?.release(this.key, lease, this.options.handoff, fresh, () => this.#releaseLease());
  }

  /** Write a batch nobody after this holder will carry; settles it. @returns the record written, for the next holder. */
  async #flush(pending: FreshRecord & { readonly batch: Batch; readonly ttl: number }): Promise<FreshRecord | undefined> {
    try {
      this.checkHeld();
      await writeIfVersion(this.store, this.key, pending.value, pending.version, pending.ttl);
    } catch (error) {
      pending.batch.settle(error);
      return undefined;
    }
    pending.batch.settle();
    return { value: pending.value, version: pending.version + 1, until: performance.now() + pending.ttl };
  }

  async #releaseLease(): Promise<void> {
    try {
      await this.lease.release();
    } catch (error) {
      debug('lease release failed: %s', redactSids(String((error as Error)?.message ?? error)));
    }
  }
}

/**
 * A write conditional on the version the writer read: a refusal means the
 * record changed under the lock (lost lease, a late write landed first), so
 * nothing is saved and the request fails with {@link ConflictError}.
 * `value` undefined deletes: `ttl` is then the mirrors' tombstone and
 * `tombstoneMs` how long the master keeps one; `options` go to a
 * request-bound master (the cookie kind).
 */
export async function writeIfVersion(
  store: Replica,
  key: string,
  value: string | undefined,
  version: number,
  ttl: number,
  tombstoneMs = 0,
  options?: RequestWriteOptions,
): Promise<void> {
  const applied =
    value === undefined
      ? await store.write(key, undefined, version + 1, ttl, version, tombstoneMs)
      : await store.write(key, value, version + 1, ttl, version, ttl, options);
  if (!applied) throw new ConflictError();
}
