import type { Store } from './store.js';

/** Options for {@link Locker.acquire}. */
export interface AcquireOptions {
  /** Give up waiting after this many ms with a `LockTimeoutError`. */
  timeoutMs: number;
  /** Abort the wait (rejects with the signal's reason); a waiter that gives up never acquires later. */
  signal?: AbortSignal;
  /**
   * The master store the scope will read and write under this lease. A locker
   * that can combine its own round trips with this store's (RedisLocker with a
   * RedisStore on the same Redis) returns a guarded view in {@link Lease.store}.
   */
  store?: Store;
  /**
   * The middleware's `storeTimeout` (ms). A locker whose acquire also reads
   * {@link store} (RedisLocker's fused acquire-and-read) bounds that step by it
   * too, as every other store call is bounded.
   */
  storeTimeoutMs?: number;
}

/**
 * A held lock. Release is idempotent; `await using lease = await locker.acquire(…)` releases it.
 */
export interface Lease extends AsyncDisposable {
  /** True once the lease is known to have expired or been taken over: a save must be refused. */
  readonly lost: boolean;
  /** Release the lock (idempotent). */
  release(): Promise<void>;
  /**
   * Optional fast path and fencing: a view of `AcquireOptions.store` whose
   * operations on this lease's key run atomically with a check that the lease
   * still holds (a write after the lease was lost rejects with `LockLostError`).
   * Absent when the locker cannot guard that store; the scope then uses the store directly.
   */
  readonly store?: Store;
  /**
   * Optional fast path: the next write of this lease's key through {@link store}
   * also releases the lock, in the same atomic step (one round trip instead of
   * two). The scope calls it only when that write is its last store operation
   * under the lock; `release()` is then a no-op.
   */
  releaseWithNextWrite?(): void;
  /**
   * Optional: `false` once this lease no longer holds the lock on behalf of a
   * next scope, although not lost (PostgresLocker: the row lock ends with the
   * transaction that the scope's save commits). Such a lease is never handed
   * over to the next scope of the process (lease handoff); absent = it holds.
   */
  readonly holdsLock?: boolean;
}

/** Serializes scopes per key. `MemoryLocker` for one process, `RedisLocker` across processes. */
export interface Locker {
  /** Short name for logs and diagnostics, e.g. `memory`, `redis`. */
  readonly name: string;
  /** Wait (FIFO where the backend allows) until the lock on `key` is ours, or time out with `LockTimeoutError`. */
  acquire(key: string, options: AcquireOptions): Promise<Lease>;
  /** Release resources the locker created itself. */
  close?(): Promise<void>;
}

/** True when `value` has the shape of a {@link Locker}. */
export function isLocker(value: unknown): value is Locker {
  const l = value as Partial<Locker> | null;
  return typeof l === 'object' && l !== null && typeof l.acquire === 'function';
}
