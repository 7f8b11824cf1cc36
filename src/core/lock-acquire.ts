import { performance } from 'node:perf_hooks';
import { LockTimeoutError } from '../errors.js';
import { lockChannel } from '../diagnostics.js';
import { localQueues, type FreshRecord, type LocalQueues } from './local-queue.js';
import type { Lease } from '../contracts/locker.js';
import type { Store } from '../contracts/store.js';
import type { ResolvedOptions } from '../options.js';

/** A lease on the key, and how it came (what a `SessionLock` is made of). */
export interface Acquired {
  readonly lease: Lease;
  /** This process' queues of the key (`undefined`: handoff off, every scope goes to the locker). */
  readonly queues: LocalQueues | undefined;
  /** The record the previous holder of this process wrote under the same lease (a handoff). */
  readonly fresh: FreshRecord | undefined;
}

/**
 * The acquire of `SessionLock`: wait for the lock on `key`, first in
 * this process' queue of the key, then, unless the scope before hands the
 * lease over, from the locker. Published on the diagnostics channel (wait and
 * outcome) only when someone listens: the common case pays nothing for it.
 */
export function acquireLease(options: ResolvedOptions, master: Store, key: string, timeoutMs: number): Promise<Acquired> {
  return lockChannel.hasSubscribers
    ? published(options, () => attempt(options, master, key, timeoutMs))
    : attempt(options, master, key, timeoutMs);
}

async function attempt(options: ResolvedOptions, master: Store, key: string, timeoutMs: number): Promise<Acquired> {
  const { locker, storeTimeout } = options;
  if (options.handoff === false) {
    const lease = await locker.acquire(key, { timeoutMs, storeTimeoutMs: storeTimeout, store: master });
    return { lease, queues: undefined, fresh: undefined };
  }
  const queues = localQueues(locker, master);
  const start = performance.now();
  const entered = queues.enter(key, timeoutMs);
  const grant = entered instanceof Promise ? await entered : entered;
  if (grant.lease !== undefined) return { lease: grant.lease, queues, fresh: grant.fresh };
  let lease: Lease;
  try {
    const left = entered instanceof Promise ? Math.max(1, timeoutMs - (performance.now() - start)) : timeoutMs;
    lease = await locker.acquire(key, { timeoutMs: left, storeTimeoutMs: storeTimeout, store: master });
  } catch (error) {
    void queues.release(key, undefined, false, undefined, async () => {}); // the next local waiter tries the locker itself
    throw error;
  }
  queues.acquired(key);
  return { lease, queues, fresh: undefined };
}

/** Run `acquire` and publish how long it waited and how it ended on `lockChannel`. */
async function published(options: ResolvedOptions, acquire: () => Promise<Acquired>): Promise<Acquired> {
  const start = performance.now();
  let outcome: 'acquired' | 'timeout' | 'error' = 'error';
  try {
    const acquired = await acquire();
    outcome = 'acquired';
    return acquired;
  } catch (error) {
    if (error instanceof LockTimeoutError) outcome = 'timeout';
    throw error;
  } finally {
    lockChannel.publish({ session: options.name, locker: options.locker.name, waitMs: performance.now() - start, outcome });
  }
}
