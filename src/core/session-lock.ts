import { debuglog } from 'node:util';
import { performance } from 'node:perf_hooks';
import { LockLostError, LockTimeoutError } from '../errors.js';
import { lockChannel } from '../diagnostics.js';
import { redactSids } from '../util/format.js';
import { GroupCommit, type PendingRecord, type Successor } from './group-commit.js';
import { localQueues, type FreshRecord, type LocalQueues } from './local-queue.js';
import type { Lease } from '../contracts/locker.js';
import type { ResolvedOptions } from '../options.js';
import type { Replica } from './replica.js';
import { overVersion, writeIfVersion, type WriteDescriptor } from './write.js';
import type { VersionedRecord } from '../contracts/store.js';

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
  /** Group commit as seen by this holder: the batch it may stand on, and the question a scope asks at its end. */
  readonly groupCommit: GroupCommit;
  /** The lease went back with the last write (RedisLocker's fast path): nothing left to hand over. */
  #releasedByWrite = false;
  /**
   * The record {@link read} answered from the handoff, while the holder has not written the key:
   * still the record, so a holder that ends without a write hands it on (its successor reads nothing).
   */
  #vouched: FreshRecord | undefined;
  #released = false;

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
    const { handoff } = options;
    const successor: Successor | undefined = queues && { handOver: (record) => queues.handOver(key, lease, handoff, record) };
    this.groupCommit = new GroupCommit(
      options.groupCommit,
      successor,
      (value, version, ttl) => {
        this.checkHeld();
        return writeIfVersion(this.store, overVersion(key, value, version, ttl));
      },
      lease.holdsLock === undefined,
      fresh?.batch !== undefined ? (fresh as PendingRecord) : undefined,
    );
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
    if (fresh !== undefined && (fresh.batch !== undefined || performance.now() < fresh.until)) {
      if (fresh.batch === undefined) this.#vouched = fresh; // (a batch's record goes on through group commit)
      return Promise.resolve({ value: fresh.value, version: fresh.version });
    }
    return this.store.read(this.key);
  }

  /** Refuse to write once the lease is known lost: another holder may have written since our read. */
  checkHeld(): void {
    if (this.lease.lost) throw new LockLostError();
  }

  /**
   * Whether ending the holder's scope now would hand the lease to a scope of
   * this process waiting for the key (within the handoff bounds). A scope asks
   * it once at its end, for both {@link GroupCommit.end} and {@link releaseWithNextWrite}.
   */
  successorWaits(): boolean {
    return this.queues?.wouldHandOff(this.key, this.lease, this.options.handoff) ?? false;
  }

  /**
   * The next write is the holder's last store operation: let the locker
   * release in the same round trip, unless a scope of this process waits for
   * the key and will get the lease handed over instead (`successorWaits`, as
   * the scope found it at its end).
   */
  releaseWithNextWrite(successorWaits = this.successorWaits()): void {
    const { lease } = this;
    if (!lease.releaseWithNextWrite || this.groupCommit.flushing || successorWaits) return;
    this.#releasedByWrite = true;
    this.groupCommit.leaseGoesWithNextWrite();
    lease.releaseWithNextWrite();
  }

  /**
   * Write the locked key (`write.key` is {@link key}), conditional on the
   * version read (see {@link writeIfVersion}). A batch the holder stands on
   * rides on this write (see {@link GroupCommit.carry}); once a batch was
   * written under the holder, its versions are one behind (`shift`).
   */
  write(write: WriteDescriptor): Promise<void> {
    this.#vouched = undefined; // written, or maybe written (a failed write): no longer the record
    return this.groupCommit.carry(
      (shift) => writeIfVersion(this.store, shift === 0 || typeof write.condition !== 'number' ? write : shifted(write, shift)),
      write.value === undefined, // a delete or tombstone: the batch's members send no cookie
    );
  }

  /**
   * Release the lock: hand it to the next scope of this process waiting for
   * the key (with `fresh`, the record this holder wrote, when it vouches one),
   * or back to the locker; a batch the holder still stands on goes on with the
   * lease or is written first ({@link GroupCommit.leave}). A failure to release
   * only logs (the lease expires on its own, the outcome is already decided).
   */
  async release(fresh?: FreshRecord): Promise<void> {
    if (this.#released || this.groupCommit.handedOn) return; // (handed on already by the scope's end: group commit)
    this.#released = true;
    // The holder wrote nothing (a read-only scope, a merge that found nothing to change): the record it was handed still stands.
    const left = await this.groupCommit.leave(fresh ?? this.#vouched);
    if (left.handedOn) return;
    const lease = this.#releasedByWrite ? undefined : this.lease;
    if (this.#releasedByWrite || !this.queues) await this.#releaseLease(); // after a write that released it: a no-op (a refused write did not)
    await this.queues?.release(this.key, lease, this.options.handoff, left.fresh, () => this.#releaseLease());
  }

  async #releaseLease(): Promise<void> {
    try {
      await this.lease.release();
    } catch (error) {
      debug('lease release failed: %s', redactSids(String((error as Error)?.message ?? error)));
    }
  }
}

/** `write` over a record `shift` versions on (a batch was written under the holder since its read). */
function shifted(write: WriteDescriptor, shift: number): WriteDescriptor {
  return { ...write, version: write.version + shift, condition: (write.condition as number) + shift };
}
