import { performance } from 'node:perf_hooks';
import { LockTimeoutError } from '../errors.js';
import type { Batch, PendingRecord } from './group-commit.js';
import type { Lease, Locker } from '../contracts/locker.js';
import type { Store, VersionedRecord } from '../contracts/store.js';

/** Bounds of the lease handoff (option `handoff` of session()); `false` turns it off. */
export interface HandoffOptions {
  /** Most scopes in a row that get the lease from a local predecessor before it goes back to the locker's queue. */
  maxHandoffs: number;
  /** Most ms the lease is kept in this process by handoffs (counted from its acquire) before it goes back to the locker's queue. */
  maxMs: number;
}

/**
 * A record a holder wrote under the lease, vouched fresh for its successor
 * until `until` (its TTL, monotonic clock); or, with `batch`, a group
 * commit's {@link PendingRecord} (src/core/group-commit.ts): not written yet.
 */
export interface FreshRecord extends VersionedRecord {
  readonly until: number;
  /** Group commit: the scopes waiting for this record to be written. */
  readonly batch?: Batch;
  /** With `batch`: the TTL of that write (the last scope's). */
  readonly ttl?: number;
}

/** What a waiter of the local queue is given: the lease (a handoff), or `undefined`: acquire from the locker yourself. */
export interface Grant {
  readonly lease: Lease | undefined;
  /** The record the predecessor wrote (a handoff only, when it vouched one). */
  readonly fresh: FreshRecord | undefined;
}

interface Waiter {
  readonly resolve: (grant: Grant) => void;
  readonly timer: NodeJS.Timeout | undefined;
}

/**
 * The scopes of one key in this process: at most one of them holds (or is
 * acquiring) the locker's lease; the others wait here, in arrival order, so a
 * hot session costs the locker one waiter per process instead of one per
 * request, and the lease can pass from one scope to the next without a round
 * trip (see {@link LocalQueues.release}).
 */
class KeyQueue {
  readonly waiters: Waiter[] = [];
  /** Handoffs since the lease was acquired from the locker. */
  handoffs = 0;
  /** When the lease was acquired from the locker (performance.now()). */
  since = 0;
}

/**
 * The in-process queues of one locker in front of one master (a request-bound
 * master, CookieStore, gets its own: its lease store and records are per request).
 */
export class LocalQueues {
  readonly #queues = new Map<string, KeyQueue>();

  /**
   * Wait until this caller heads the queue of `key`. Resolves at once (lease
   * undefined) when nobody of this process holds or awaits the key; otherwise
   * when the holder hands its lease over or releases it. Rejects with
   * {@link LockTimeoutError} after `timeoutMs` of local waiting.
   */
  enter(key: string, timeoutMs: number): Grant | Promise<Grant> {
    const queue = this.#queues.get(key);
    if (queue === undefined) {
      this.#queues.set(key, new KeyQueue());
      return NO_LEASE;
    }
    return new Promise<Grant>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (grant) => {
          clearTimeout(waiter.timer);
          resolve(grant);
        },
        timer: setTimeout(() => {
          const at = queue.waiters.indexOf(waiter);
          if (at >= 0) queue.waiters.splice(at, 1);
          reject(new LockTimeoutError(timeoutMs));
        }, timeoutMs),
      };
      queue.waiters.push(waiter);
    });
  }

  /** The head got the lease from the locker: the handoff bounds count from now. */
  acquired(key: string): void {
    const queue = this.#queues.get(key);
    if (queue) {
      queue.handoffs = 0;
      queue.since = performance.now();
    }
  }

  /**
   * Whether ending the head's scope now would hand `lease` to a local waiter
   * (decided before the scope's last write: a lease released together with
   * that write cannot be handed over).
   */
  wouldHandOff(key: string, lease: Lease, bounds: HandoffOptions | false): boolean {
    const queue = this.#queues.get(key);
    if (!bounds || !queue || queue.waiters.length === 0 || lease.lost || lease.holdsLock === false) return false;
    return queue.handoffs < bounds.maxHandoffs && performance.now() - queue.since < bounds.maxMs;
  }

  /**
   * Pass `lease` (with `fresh`) to the next waiter of `key` now, if the bounds
   * allow; synchronous, so a caller can decide on it and act in one step.
   * @returns whether the lease was handed over.
   */
  handOver(key: string, lease: Lease, bounds: HandoffOptions | false, fresh: FreshRecord | undefined): boolean {
    if (!this.wouldHandOff(key, lease, bounds)) return false;
    const queue = this.#queues.get(key)!;
    queue.handoffs++;
    queue.waiters.shift()!.resolve({ lease, fresh });
    return true;
  }

  /**
   * The head ends: pass `lease` to the next waiter when the bounds allow and
   * the lease still holds (`lease` undefined: the head's acquire failed or the
   * lease is already gone), else release it to the locker and let the next
   * waiter acquire from the locker's queue, behind other processes.
   */
  async release(
    key: string,
    lease: Lease | undefined,
    bounds: HandoffOptions | false,
    fresh: FreshRecord | undefined,
    releaseLease: () => Promise<void>,
  ): Promise<void> {
    if (lease !== undefined && this.handOver(key, lease, bounds, fresh)) return;
    if (lease !== undefined) await releaseLease();
    const queue = this.#queues.get(key);
    const next = queue?.waiters.shift();
    if (next) next.resolve(NO_LEASE);
    else this.#queues.delete(key);
  }
}

const NO_LEASE: Grant = Object.freeze({ lease: undefined, fresh: undefined });

const byLocker = new WeakMap<Locker, WeakMap<Store, LocalQueues>>();

/** The local queues of `locker` in front of `master` (made on first use). */
export function localQueues(locker: Locker, master: Store): LocalQueues {
  let byMaster = byLocker.get(locker);
  if (!byMaster) byLocker.set(locker, (byMaster = new WeakMap()));
  let queues = byMaster.get(master);
  if (!queues) byMaster.set(master, (queues = new LocalQueues()));
  return queues;
}
