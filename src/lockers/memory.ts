import { Mutex, type MutexInterface } from 'async-mutex';
import { LockTimeoutError } from '../errors.js';
import type { AcquireOptions, Lease, Locker } from './locker.js';

interface Entry {
  readonly mutex: Mutex;
  /** Holders plus waiters (timed-out ones included until their turn passes): the entry is dropped at 0. */
  users: number;
}

/**
 * One process: a FIFO `async-mutex` per key. Entries exist only while someone
 * holds or waits, so the map does not grow with the number of sessions seen.
 */
export class MemoryLocker implements Locker {
  readonly name = 'memory';
  readonly #entries = new Map<string, Entry>();

  /** Keys currently held or waited on (0 when idle: nothing leaks). */
  get size(): number {
    return this.#entries.size;
  }

  async acquire(key: string, options: AcquireOptions): Promise<Lease> {
    const { timeoutMs, signal } = options;
    signal?.throwIfAborted();
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { mutex: new Mutex(), users: 0 };
      this.#entries.set(key, entry);
    }
    entry.users++;
    const held = entry;
    const ticket = held.mutex.acquire();
    if (held.users === 1) {
      // Uncontended (nobody held or waited): the ticket resolves at once; no timer needed.
      return this.#lease(key, held, await ticket);
    }
    return new Promise<Lease>((resolve, reject) => {
      let settled = false;
      const giveUp = (error: unknown) => {
        if (settled) return;
        settled = true;
        cleanup();
        reject(error);
      };
      const timer = setTimeout(() => giveUp(new LockTimeoutError(timeoutMs)), timeoutMs);
      const onAbort = () => giveUp(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      ticket.then((release) => {
        if (settled) {
          // We gave up earlier: async-mutex cannot remove one waiter from its
          // queue, so our turn comes anyway. Pass it on at once; no code of the
          // timed-out caller ever runs under the lock.
          this.#done(key, held, release);
          return;
        }
        settled = true;
        cleanup();
        resolve(this.#lease(key, held, release));
      }, giveUp);
    });
  }

  #lease(key: string, entry: Entry, release: MutexInterface.Releaser): Lease {
    let released = false;
    const free = async () => {
      if (released) return;
      released = true;
      this.#done(key, entry, release);
    };
    return { lost: false, release: free, [Symbol.asyncDispose]: free };
  }

  #done(key: string, entry: Entry, release: MutexInterface.Releaser): void {
    release();
    if (--entry.users === 0 && this.#entries.get(key) === entry) this.#entries.delete(key);
  }
}
