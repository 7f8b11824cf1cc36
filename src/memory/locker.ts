import { LockTimeoutError } from '../errors.js';
import type { AcquireOptions, Lease, Locker } from '../contracts/locker.js';
import { Validator } from '../util/validate.js';

/** Options of {@link MemoryLocker}. */
export interface MemoryLockerOptions {
  /**
   * Longest a lease may be held (ms). A scope that hangs (a callback that never
   * settles) loses its lease after this long while someone waits: the lock
   * passes to the next waiter and the hung scope's save is refused
   * (`LockLostError`; its write would be refused by the record's version anyway).
   * @default 60_000
   */
  maxHoldMs?: number;
}

/** setTimeout's limit (ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Waiter {
  grant(): void;
}

interface Holder {
  readonly since: number;
  lost: boolean;
}

interface Entry {
  holder: Holder | undefined;
  /** FIFO; a waiter that times out or aborts leaves it at once (a Set keeps insertion order). */
  readonly waiters: Set<Waiter>;
  /** Armed only while someone waits: takes the lock from a holder past `maxHoldMs`. */
  expiry: NodeJS.Timeout | undefined;
}

/**
 * One process: a FIFO lock per key. Entries exist only while someone holds or
 * waits, so the map does not grow with the number of sessions seen, and a
 * waiter that gives up (timeout, abort) leaves the queue at once, so waiters
 * never pile up behind a slow holder. (async-mutex, used before, cannot
 * remove one waiter from its queue: timed-out waiters stayed queued until
 * the holder released.)
 */
export class MemoryLocker implements Locker {
  readonly name = 'memory';
  /** Longest a lease may be held while someone waits for the lock (`options.maxHoldMs`). */
  readonly maxHoldMs: number;
  readonly #entries = new Map<string, Entry>();

  constructor(options: MemoryLockerOptions = {}) {
    const check = new Validator('MemoryLocker');
    check.known(check.object('options', options), ['maxHoldMs'], {
      lockTimeout: 'The lock wait is an option of session(): `session({ lockTimeout })`',
    });
    this.maxHoldMs = check.positiveMs('maxHoldMs', options.maxHoldMs, 60_000)!;
  }

  /** Keys currently held or waited on (0 when idle: nothing leaks). */
  get size(): number {
    return this.#entries.size;
  }

  /** Waiters queued on every key (timed-out ones are never counted: they left). */
  get waiting(): number {
    let n = 0;
    for (const entry of this.#entries.values()) n += entry.waiters.size;
    return n;
  }

  async acquire(key: string, options: AcquireOptions): Promise<Lease> {
    const { timeoutMs, signal } = options;
    signal?.throwIfAborted();
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { holder: undefined, waiters: new Set(), expiry: undefined };
      this.#entries.set(key, entry);
    }
    if (!entry.holder) return this.#lease(key, entry);
    const held = entry;
    return new Promise<Lease>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          cleanup();
          resolve(this.#lease(key, held));
        },
      };
      const giveUp = (error: unknown) => {
        if (!held.waiters.delete(waiter)) return; // already granted
        cleanup();
        this.#dropIfIdle(key, held);
        reject(error);
      };
      // Past setTimeout's limit Node would fire after 1 ms: such a timeout simply never fires.
      const timer = timeoutMs <= MAX_TIMER_MS ? setTimeout(() => giveUp(new LockTimeoutError(timeoutMs)), timeoutMs) : undefined;
      const onAbort = () => giveUp(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      held.waiters.add(waiter);
      this.#armExpiry(key, held);
    });
  }

  #lease(key: string, entry: Entry): Lease {
    const holder: Holder = { since: Date.now(), lost: false };
    entry.holder = holder;
    let released = false;
    const free = async () => {
      if (released) return;
      released = true;
      if (entry.holder === holder) this.#handOver(key, entry);
    };
    return {
      get lost() {
        return holder.lost;
      },
      release: free,
      [Symbol.asyncDispose]: free,
    };
  }

  /** The next waiter gets the lock, or the entry goes away. */
  #handOver(key: string, entry: Entry): void {
    if (entry.expiry) clearTimeout(entry.expiry);
    entry.expiry = undefined;
    entry.holder = undefined;
    const next = entry.waiters.values().next();
    if (!next.done) {
      entry.waiters.delete(next.value);
      next.value.grant();
      if (entry.waiters.size > 0) this.#armExpiry(key, entry);
      return;
    }
    this.#dropIfIdle(key, entry);
  }

  #dropIfIdle(key: string, entry: Entry): void {
    if (entry.holder || entry.waiters.size > 0) return;
    if (entry.expiry) clearTimeout(entry.expiry);
    if (this.#entries.get(key) === entry) this.#entries.delete(key);
  }

  /** With waiters queued, a holder past `maxHoldMs` loses the lock (a hung scope must not block its session for good). */
  #armExpiry(key: string, entry: Entry): void {
    const holder = entry.holder;
    if (entry.expiry || !holder) return;
    entry.expiry = setTimeout(
      () => {
        entry.expiry = undefined;
        if (entry.holder !== holder) return;
        holder.lost = true;
        this.#handOver(key, entry);
      },
      Math.max(0, holder.since + this.maxHoldMs - Date.now()),
    );
    entry.expiry.unref();
  }
}
