import { debuglog } from 'node:util';
import { performance } from 'node:perf_hooks';
import { ConflictError, LockLostError, LockTimeoutError } from './errors.js';
import { lockChannel } from './diagnostics.js';
import { redactSids } from './format.js';
import type { Lease } from './lockers/locker.js';
import type { ResolvedOptions } from './options.js';
import type { Replica } from './replica.js';
import type { RequestWriteOptions, VersionedRecord } from './stores/store.js';

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

  private constructor(
    readonly key: string,
    readonly lease: Lease,
    replica: Replica,
  ) {
    this.store = lease.store ? replica.withMaster(lease.store) : replica;
  }

  /** Wait for the lock on `key` (`timeoutMs`: default `lockTimeout`). */
  static async acquire(options: ResolvedOptions, replica: Replica, key: string, timeoutMs = options.lockTimeout): Promise<SessionLock> {
    const { locker, storeTimeout, name } = options;
    const acquireOptions = { timeoutMs, storeTimeoutMs: storeTimeout, store: replica.master };
    if (!lockChannel.hasSubscribers) return new SessionLock(key, await locker.acquire(key, acquireOptions), replica);
    const start = performance.now();
    let outcome: 'acquired' | 'timeout' | 'error' = 'error';
    try {
      const lease = await locker.acquire(key, acquireOptions);
      outcome = 'acquired';
      return new SessionLock(key, lease, replica);
    } catch (error) {
      if (error instanceof LockTimeoutError) outcome = 'timeout';
      throw error;
    } finally {
      lockChannel.publish({ session: name, locker: locker.name, waitMs: performance.now() - start, outcome });
    }
  }

  /** The record as it is now, read under the lock (`value` undefined: a tombstone). */
  read(): Promise<VersionedRecord | undefined> {
    return this.store.read(this.key);
  }

  /** Refuse to write once the lease is known lost: another holder may have written since our read. */
  checkHeld(): void {
    if (this.lease.lost) throw new LockLostError();
  }

  /** Release the lock; a failure only logs (the lease expires on its own, the outcome is already decided). */
  async release(): Promise<void> {
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
export async function writeIfVersion(store: Replica, key: string, value: string | undefined, version: number, ttl: number, tombstoneMs = 0, options?: RequestWriteOptions): Promise<void> {
  const applied = value === undefined
    ? await store.write(key, undefined, version + 1, ttl, version, tombstoneMs)
    : await store.write(key, value, version + 1, ttl, version, ttl, options);
  if (!applied) throw new ConflictError();
}
