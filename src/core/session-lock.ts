import { debuglog } from 'node:util';
import { performance } from 'node:perf_hooks';
import { LockLostError } from '../errors.js';
import { redactSids } from '../util/format.js';
import { GroupCommit, type PendingRecord, type ScopeEnd } from './group-commit.js';
import { acquireLease } from './lock-acquire.js';
import type { FreshRecord, LocalQueues } from './local-queue.js';
import type { Lease } from '../contracts/locker.js';
import type { ResolvedOptions } from '../options.js';
import type { Replica } from './replica.js';
import { overVersion, shifted, writeIfVersion, type WriteDescriptor } from './write.js';
import type { VersionedRecord } from '../contracts/store.js';
import { knownExpiryOf } from '../contracts/record-expiry.js';

const debug = debuglog('koa-locked-session');

/**
 * The lock on one session's record, the one way every write under a lock starts (a request's scope, revokeAll,
 * the maxSessionsPerUser cap): acquire (lock-acquire.ts), a fresh read under the lock, writes conditional on the
 * version read through the lease-guarded view of the master where the locker offers one, release. Group commit
 * (group-commit.ts) is made here per holder, and reached only through these.
 */
export class SessionLock {
  /** Where the holder reads and writes: the replica, its master guarded by the lease where the locker can. */
  readonly store: Replica;
  readonly #groupCommit: GroupCommit;
  /** The lease went back with the last write (RedisLocker's fast path): nothing left to hand over. */
  #releasedByWrite = false;
  /**
   * The record {@link read} answered, from the handoff or from a store read that knew its expiry
   * (RedisLocker's acquire-and-read), while the holder has not written the key: still the record,
   * so a holder that ends without a write hands it on (its successor reads nothing).
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
    this.#groupCommit = groupCommitOf(this, options, queues, fresh);
  }

  /** Wait for the lock on `key` (`timeoutMs`: default `lockTimeout`; see {@link acquireLease}). */
  static async acquire(options: ResolvedOptions, replica: Replica, key: string, timeoutMs = options.lockTimeout): Promise<SessionLock> {
    const { lease, queues, fresh } = await acquireLease(options, replica.master, key, timeoutMs);
    return new SessionLock(key, lease, replica, options, queues, fresh);
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
    return this.store.read(this.key).then((record) => {
      // Read with its expiry known: it can go on until then, like a record handed over.
      const until = record === undefined ? undefined : knownExpiryOf(record);
      if (until !== undefined) this.#vouched = { value: record!.value, version: record!.version, until };
      return record;
    });
  }

  /** Refuse to write once the lease is known lost: another holder may have written since our read. */
  checkHeld(): void {
    if (this.lease.lost) throw new LockLostError();
  }

  /**
   * Write the locked key (`write.key` is {@link key}), conditional on the
   * version read (see {@link writeIfVersion}). A batch the holder stands on
   * rides on this write (see {@link GroupCommit.carry}); once a batch was
   * written under the holder, its versions are one behind (`shift`).
   */
  write(write: WriteDescriptor): Promise<void> {
    this.#vouched = undefined; // written, or maybe written (a failed write): no longer the record
    return this.#groupCommit.carry(
      (shift) => writeIfVersion(this.store, shift === 0 || typeof write.condition !== 'number' ? write : shifted(write, shift)),
      write.value === undefined, // a delete or tombstone: the batch's members send no cookie
    );
  }

  /**
   * The one question a scope asks at its end, about its save of the locked
   * record ({@link GroupCommit.end}: nothing to write, write it, or handed over
   * unsaved to the next scope of this process waiting for the key). A `last`
   * save that writes releases the lease with its write where it can
   * ({@link releaseWithNextWrite}); whether a successor waits is asked once, for both.
   */
  end(save: ScopeEnd): 'unchanged' | 'write' | Promise<boolean> {
    const successorWaits = save.last && this.#successorWaits();
    const answer = this.#groupCommit.end(save, successorWaits);
    if (answer === 'write' && save.last) this.releaseWithNextWrite(successorWaits);
    return answer;
  }

  /**
   * The next write is the holder's last store operation: let the locker
   * release in the same round trip, unless mirror writes must follow it in
   * order, or a scope of this process waits for the key and will get the lease
   * handed over instead (`successorWaits`, as {@link end} found it).
   */
  releaseWithNextWrite(successorWaits = this.#successorWaits()): void {
    const { lease, options } = this;
    if (!lease.releaseWithNextWrite || this.#groupCommit.flushing || successorWaits) return;
    if (options.mirrors.length > 0 && options.mirrorWrites !== 'background') return;
    this.#releasedByWrite = true;
    this.#groupCommit.leaseGoesWithNextWrite();
    lease.releaseWithNextWrite();
  }

  /**
   * Release the lock: hand it to the next scope of this process waiting for
   * the key (with `fresh`, the record this holder wrote, when it vouches one),
   * or back to the locker; a batch the holder still stands on goes on with the
   * lease or is written first ({@link GroupCommit.leave}). A failure to release
   * only logs (the lease expires on its own, the outcome is already decided).
   */
  async release(fresh?: FreshRecord): Promise<void> {
    if (this.#released || this.#groupCommit.handedOn) return; // (handed on already by the scope's end: group commit)
    this.#released = true;
    // The holder wrote nothing (a read-only scope, a merge that found nothing to change): the record it was handed still stands.
    const left = await this.#groupCommit.leave(fresh ?? this.#vouched);
    if (left.handedOn) return;
    const lease = this.#releasedByWrite ? undefined : this.lease;
    if (this.#releasedByWrite || !this.queues) await this.#releaseLease(); // after a write that released it: a no-op (a refused write did not)
    await this.queues?.release(this.key, lease, this.options.handoff, left.fresh, () => this.#releaseLease());
  }

  /** Whether ending the holder's scope now would hand the lease to a scope of this process waiting for the key (within the handoff bounds). */
  #successorWaits(): boolean {
    return this.queues?.wouldHandOff(this.key, this.lease, this.options.handoff) ?? false;
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
 * The holder's group commit: a batch goes on through this process' queue of the key, or is written under the lease
 * (refused once it is known lost; never under a running holder whose lock ends with its first write: PostgresLocker).
 */
function groupCommitOf(lock: SessionLock, options: ResolvedOptions, queues?: LocalQueues, fresh?: FreshRecord): GroupCommit {
  const { key, lease } = lock;
  const successor = queues && { handOver: (record: PendingRecord) => queues.handOver(key, lease, options.handoff, record) };
  const writeBatch = (value: string, version: number, ttl: number): Promise<void> => {
    lock.checkHeld();
    return writeIfVersion(lock.store, overVersion(key, value, version, ttl));
  };
  const pending = fresh?.batch !== undefined ? (fresh as PendingRecord) : undefined;
  return new GroupCommit(options.groupCommit, successor, writeBatch, lease.holdsLock === undefined, pending);
}
