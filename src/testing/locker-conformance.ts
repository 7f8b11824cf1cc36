/**
 * The Locker contract, run against every locker (async-mutex's `mutexSuite` idea):
 * `lockerConformance('memory', () => new MemoryLocker())`.
 *
 * No test asserts on elapsed time: "overlap" is made with promises the test
 * controls, and short `timeoutMs` values only bound waits that must time out.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import type { LockTimeoutError } from '../errors.js';
import type { Lease, Locker } from '../contracts/locker.js';

/** Options of {@link lockerConformance}. */
export interface LockerConformanceOptions {
  /** The locker promises FIFO order for waiters of one key (within one instance). @default true */
  fifo?: boolean;
  /**
   * Two instances made by the factory exclude each other (they share a backend,
   * like two processes on one Redis): mutual exclusion is also checked across them.
   * @default false
   */
  shared?: boolean;
  /** Skip the whole suite (e.g. the server is missing). */
  skip?: string | false;
  /** Runs once after the suite (stop servers, close clients). */
  teardown?: () => Promise<void>;
}

/** A generous bound for waits that must succeed (only hit when something is broken). */
const LONG = 20_000;
/**
 * For an acquire that must succeed at once because nobody holds the lock, yet
 * would only succeed after a lease expiry (RedisLocker default: 10 s) if a
 * phantom holder had been left behind.
 */
const BEFORE_ANY_LEASE_EXPIRY = 5000;

/**
 * A lock timeout, recognised by its `code` rather than `instanceof`: the
 * published ESM and CommonJS builds (and this testing entry) each have their
 * own copy of the error classes, and a locker may come from any of them.
 */
function isLockTimeout(error: unknown): error is LockTimeoutError {
  return error instanceof Error && (error as { code?: unknown }).code === 'ERR_SESSION_LOCK_TIMEOUT';
}

let keySeq = 0;
/** A fresh key per test, so suites can share a backend. */
function freshKey(): string {
  return `conf-${process.pid}-${Date.now().toString(36)}-${++keySeq}`;
}

/** Resolves on the next macrotask: lets every other ready piece of work run. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** True when `p` has settled after every pending macrotask so far ran (no timers involved). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await tick();
  return done;
}

/**
 * Declare the `node:test` suite of the `Locker` contract for `name`: mutual
 * exclusion per key (across two instances too with `shared`), keys independent,
 * FIFO waiters (unless `fifo: false`), `LockTimeoutError` (status 503, code
 * `ERR_SESSION_LOCK_TIMEOUT`) while the lock stays held, aborts through an
 * `AbortSignal`, idempotent release (an old lease never frees a newer holder),
 * `await using`, and no phantom holder after a waiter gives up. `factory` makes a
 * locker per test; `teardown` runs after the suite.
 */
export function lockerConformance(name: string, factory: () => Locker | Promise<Locker>, options: LockerConformanceOptions = {}): void {
  const { fifo = true, shared = false, skip = false, teardown } = options;
  describe(`Locker conformance: ${name}`, { skip }, () => {
    const made: Locker[] = [];
    const make = async (): Promise<Locker> => {
      const locker = await factory();
      made.push(locker);
      return locker;
    };
    afterEach(async () => {
      await Promise.all(made.splice(0).map((l) => l.close?.()));
    });
    if (teardown) after(teardown);

    test('has a name and an acquire method', async () => {
      const locker = await make();
      assert.equal(typeof locker.name, 'string');
      assert.ok(locker.name.length > 0);
      assert.equal(typeof locker.acquire, 'function');
    });

    test('an uncontended acquire gives a lease that is not lost', async () => {
      const locker = await make();
      const lease = await locker.acquire(freshKey(), { timeoutMs: LONG });
      assert.equal(lease.lost, false);
      assert.equal(typeof lease.release, 'function');
      assert.equal(typeof lease[Symbol.asyncDispose], 'function');
      await lease.release();
    });

    test('mutual exclusion: N overlapping read-modify-writes count exactly N', async () => {
      const lockers = shared ? [await make(), await make()] : [await make()];
      const key = freshKey();
      const N = 40;
      let counter = 0;
      let inside = 0;
      let maxInside = 0;
      await Promise.all(
        Array.from({ length: N }, async (_, i) => {
          const lease = await lockers[i % lockers.length]!.acquire(key, { timeoutMs: LONG });
          try {
            inside++;
            maxInside = Math.max(maxInside, inside);
            const read = counter;
            await tick(); // give every other acquirer a chance to barge in
            counter = read + 1;
            inside--;
          } finally {
            await lease.release();
          }
        }),
      );
      assert.equal(maxInside, 1);
      assert.equal(counter, N);
    });

    test('different keys do not block each other', async () => {
      const locker = await make();
      const [keyA, keyB] = [freshKey(), freshKey()];
      const a = await locker.acquire(keyA, { timeoutMs: LONG });
      // Would time out (LockTimeoutError) if one key's holder blocked another key.
      const b = await locker.acquire(keyB, { timeoutMs: BEFORE_ANY_LEASE_EXPIRY });
      assert.equal(a.lost, false);
      assert.equal(b.lost, false);
      // Both are really held, each by its own lease: a waiter on either key waits.
      const waitA = locker.acquire(keyA, { timeoutMs: LONG });
      const waitB = locker.acquire(keyB, { timeoutMs: LONG });
      assert.equal(await settled(waitA), false, 'key A is held');
      assert.equal(await settled(waitB), false, 'key B is held');
      // Releasing B hands B on and leaves A held.
      await b.release();
      const nextB = await waitB;
      assert.equal(await settled(waitA), false, 'releasing key B did not free key A');
      await a.release();
      const nextA = await waitA;
      await Promise.all([nextA.release(), nextB.release()]);
    });

    test('a waiter gets the lock only after the holder releases', async () => {
      const locker = await make();
      const key = freshKey();
      const holder = await locker.acquire(key, { timeoutMs: LONG });
      const waiting = locker.acquire(key, { timeoutMs: LONG });
      assert.equal(await settled(waiting), false);
      await holder.release();
      const next = await waiting;
      assert.equal(next.lost, false);
      await next.release();
    });

    if (fifo) {
      test('waiters of one key get it in FIFO order', async () => {
        const locker = await make();
        const key = freshKey();
        const holder = await locker.acquire(key, { timeoutMs: LONG });
        const order: number[] = [];
        const waiters = Array.from({ length: 5 }, (_, i) =>
          locker.acquire(key, { timeoutMs: LONG }).then(async (lease) => {
            order.push(i);
            await tick();
            await lease.release();
          }),
        );
        await tick();
        await holder.release();
        await Promise.all(waiters);
        assert.deepEqual(order, [0, 1, 2, 3, 4]);
      });
    }

    test('timeout: LockTimeoutError with status 503 while the lock stays held', async () => {
      const locker = await make();
      const key = freshKey();
      const holder = await locker.acquire(key, { timeoutMs: LONG });
      await assert.rejects(locker.acquire(key, { timeoutMs: 30 }), (error: unknown) => {
        assert.ok(isLockTimeout(error), `expected LockTimeoutError, got ${String(error)}`);
        assert.equal(error.status, 503);
        assert.equal(error.code, 'ERR_SESSION_LOCK_TIMEOUT');
        return true;
      });
      assert.equal(holder.lost, false);
      await holder.release();
    });

    test('a timed-out waiter never acquires later and leaves no phantom holder', async () => {
      const locker = await make();
      const key = freshKey();
      const holder = await locker.acquire(key, { timeoutMs: LONG });
      let lateHolders = 0;
      const gaveUp = Array.from({ length: 5 }, () =>
        locker.acquire(key, { timeoutMs: 20 }).then(
          async (lease) => {
            lateHolders++;
            await lease.release();
          },
          (error: unknown) => assert.ok(isLockTimeout(error)),
        ),
      );
      await Promise.all(gaveUp);
      assert.equal(lateHolders, 0);
      await holder.release();
      // If a timed-out waiter had taken the lock behind our back, this would time out.
      const next = await locker.acquire(key, { timeoutMs: BEFORE_ANY_LEASE_EXPIRY });
      await next.release();
      assert.equal(lateHolders, 0);
    });

    test('giving up while the lock is free (timeout 0) leaves no phantom holder', async () => {
      // With a remote backend the timer can fire while the acquire is in flight
      // and the acquire then succeeds: that lock must be handed back at once.
      const locker = await make();
      const key = freshKey();
      const results = await Promise.allSettled(Array.from({ length: 5 }, () => locker.acquire(key, { timeoutMs: 0 })));
      for (const result of results) {
        if (result.status === 'fulfilled') await result.value.release();
        else assert.ok(isLockTimeout(result.reason), String(result.reason));
      }
      const next = await locker.acquire(key, { timeoutMs: BEFORE_ANY_LEASE_EXPIRY });
      await next.release();
    });

    test('abort: the signal rejects the wait with its reason; the waiter never acquires', async () => {
      const locker = await make();
      const key = freshKey();
      const holder = await locker.acquire(key, { timeoutMs: LONG });
      const controller = new AbortController();
      const reason = new Error('client went away');
      let acquired = false;
      const waiting = locker.acquire(key, { timeoutMs: LONG, signal: controller.signal }).then((lease) => {
        acquired = true;
        return lease.release();
      });
      await tick();
      controller.abort(reason);
      await assert.rejects(waiting, (error) => error === reason);
      await holder.release();
      const next = await locker.acquire(key, { timeoutMs: BEFORE_ANY_LEASE_EXPIRY });
      await next.release();
      assert.equal(acquired, false);
    });

    test('an already aborted signal rejects at once', async () => {
      const locker = await make();
      const reason = new Error('already gone');
      await assert.rejects(locker.acquire(freshKey(), { timeoutMs: LONG, signal: AbortSignal.abort(reason) }), (e) => e === reason);
    });

    test('release is idempotent and an old lease cannot release a newer holder', async () => {
      const locker = await make();
      const key = freshKey();
      const first = await locker.acquire(key, { timeoutMs: LONG });
      await first.release();
      await first.release();
      const second = await locker.acquire(key, { timeoutMs: LONG });
      await first.release(); // must not free `second`'s lock
      await first[Symbol.asyncDispose]();
      await assert.rejects(locker.acquire(key, { timeoutMs: 30 }), isLockTimeout);
      await second.release();
      const third = await locker.acquire(key, { timeoutMs: LONG });
      await third.release();
    });

    test('`await using` releases at the end of the block, also when it throws', async () => {
      const locker = await make();
      const key = freshKey();
      {
        await using lease = await locker.acquire(key, { timeoutMs: LONG });
        assert.equal(lease.lost, false);
      }
      await assert.rejects(async () => {
        await using lease = await locker.acquire(key, { timeoutMs: LONG });
        assert.equal(lease.lost, false);
        throw new Error('boom');
      }, /boom/);
      const again: Lease = await locker.acquire(key, { timeoutMs: LONG });
      await again.release();
    });

    if (shared) {
      test('two instances on one backend exclude each other', async () => {
        const [a, b] = [await make(), await make()];
        const key = freshKey();
        const held = await a.acquire(key, { timeoutMs: LONG });
        await assert.rejects(b.acquire(key, { timeoutMs: 30 }), isLockTimeout);
        const waiting = b.acquire(key, { timeoutMs: LONG });
        await held.release();
        const got = await waiting;
        await got.release();
      });
    }
  });
}
