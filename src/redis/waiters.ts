/**
 * RedisLocker's in-process wait queue: per key, a FIFO of this process's
 * waiters, of which only the head talks to Redis, and how the head sleeps
 * until a release wakes it. Its own file because it is the part of the locker
 * that never sends a command (docs/architecture.md, "Who orders what", says
 * why the locker keeps a queue behind the middleware's).
 */
import type { LockKeys } from './lease.js';

/** Per-key in-process state: a FIFO of local waiters; only the head talks to Redis. */
export interface KeyState {
  readonly keys: LockKeys;
  readonly queue: Waiter[];
  /** The lock was released (a notification, or a local lease ended): the head retries at once instead of sleeping. */
  woken: boolean;
  /** A release woke this locker by its id: if the next attempt fails, it goes back to the front of the waiters list. */
  called: boolean;
  /** This locker's id may be in the waiters list (an attempt registered it and no release popped it since). */
  registered: boolean;
}

/** The state of a key with no local waiter yet; `lock` is its lock key (`<prefix>{key}`), the other keys hang off it. */
export function newKeyState(key: string, lock: string): KeyState {
  return {
    keys: { key, lock, waiters: `${lock}:waiters`, waiting: `${lock}:waiting`, channel: `${lock}:released`, receipt: `${lock}:applied` },
    queue: [],
    woken: false,
    called: false,
    registered: false,
  };
}

export interface Waiter {
  /** Gave up (timeout, abort, close) or got the lease: the run loop stops at its next step. */
  done: boolean;
  /** Becomes the head of its key's queue. */
  readonly turn: Promise<void>;
  readonly startTurn: () => void;
  /** Ends the head's current sleep (set while it sleeps). */
  wake: (() => void) | undefined;
  /** Starts the lock-wait timer: called when this waiter has to wait. */
  readonly waiting: () => void;
}

/** setTimeout's limit; longer (or infinite) lock timeouts simply never fire. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The head sleeps: resolves true when woken by a release, false on the poll timer (at once when there is nothing to wait for). */
export function sleepUntilWoken(state: KeyState, waiter: Waiter, ms: number, closed: boolean): Promise<boolean> {
  if (state.woken || waiter.done || closed) return Promise.resolve(state.woken);
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      waiter.wake = undefined;
      resolve(false);
    }, ms);
    waiter.wake = () => {
      clearTimeout(timer);
      waiter.wake = undefined;
      resolve(true);
    };
  });
}

/** The lock of `state` was released: the head retries now. */
export function wakeHead(state: KeyState): void {
  state.woken = true;
  state.queue[0]?.wake?.();
}
