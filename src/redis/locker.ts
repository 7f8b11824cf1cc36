/**
 * RedisLocker: a lease on a Redis key per session, and the in-process wait
 * queue in front of it. Its parts, one file each:
 * - options.ts: the options, their defaults and validation;
 * - scripts.ts: the Lua scripts and the runner that sends them;
 * - lease.ts: a held lease (renewal, loss, release), renewal.ts its shared timer;
 * - pubsub.ts: release notifications (the subscriber connection);
 * - waiters.ts: the in-process wait queue per key (only its head talks to Redis);
 * - attempt.ts: one acquire attempt (the acquire script and what its answer means);
 * - identity.ts: lock tokens, the locker's id, hash tags;
 * - master.ts and fast-path.ts: which master the lock fuses with (what a RedisStore registers);
 * - fenced.ts: the master RedisStore seen through a lease (fenced writes).
 */
import { debuglog } from 'node:util';
import { LockTimeoutError, SessionError } from '../errors.js';
import { errorMessage } from '../util/format.js';
import { fastPathFor, warnIfUnfenced, type FastPath } from './master.js';
import { nextLockerId, pollingTurnMs } from './identity.js';
import { MAX_TIMER_MS, newKeyState, sleepUntilWoken, wakeHead, type KeyState, type Waiter } from './waiters.js';
import type { AcquireOptions, Locker } from '../contracts/locker.js';
import { attemptLock, attemptTimeout, type AttemptHost } from './attempt.js';
import type { HeldLease, RedisLease } from './lease.js';
import { checkAcquireOptions, resolveRedisLockerOptions, type RedisLockerClient, type RedisLockerOptions } from './options.js';
import { ReleaseChannels } from './pubsub.js';
import { RenewalClock } from './renewal.js';
import { ScriptRunner } from './scripts.js';

export { REDIS_LOCKER_DEFAULTS, type RedisLockerClient, type RedisLockerOptions } from './options.js';
export type { RedisLease } from './lease.js';
export { hashTag, pollingTurnMs } from './identity.js';

const debug = debuglog('koa-locked-session');

function closedError(): SessionError {
  return new SessionError('koa-locked-session: the RedisLocker was closed', { code: 'ERR_SESSION_CLOSED', status: 503 });
}

/**
 * Many processes: a lease on a Redis key per session.
 *
 * - acquire: `SET <prefix>{sid} <random token> NX PX <leaseMs>` (in a script that
 *   also reads the session record when the master is a `RedisStore` on the same
 *   client: one round trip for lock + fresh read);
 * - release: compare-and-delete in one script, which also publishes a wake-up
 *   when a waiter of another process registered for one;
 * - renewal every `renewEveryMs` while held; a renewal that finds the token gone
 *   (or no successful renewal before the lease would have expired, by this
 *   process' monotonic clock) marks the lease `lost`, and the save is refused;
 * - waiting: in-process waiters queue FIFO and only the head of each key talks
 *   to Redis; it sleeps until a release (a local lease ending, or a pub/sub
 *   notification from another process) or a bounded backoff poll, never
 *   spinning. Across processes the lock goes in turn, first come first: a
 *   failed attempt registers its locker at the end of the lock's waiters
 *   list, and a release hands the lock to the first one's turn and wakes only
 *   that process (see scripts.ts);
 * - fencing: a versioned master (every built-in server-side store) refuses a
 *   write whose version condition no longer holds, so a save that lands late
 *   cannot overwrite newer data, whichever client it uses. With a `RedisStore`
 *   master on the same client, `lease.store` also checks this lease's token in
 *   the same atomic script. A master without versions gets a one-time warning;
 * - a lease lives at most `maxLeaseMs`, then is reported lost and expires.
 *
 * @example
 * const redis = await createClient({ url: process.env.REDIS_URL }).connect();
 * app.use(session({ master: new RedisStore({ client: redis }), locker: new RedisLocker({ client: redis }) }));
 */
export class RedisLocker implements Locker {
  readonly name = 'redis';
  /** The client given in the options (never closed by the locker). */
  readonly client: RedisLockerClient;
  /** @see RedisLockerOptions.prefix */
  readonly prefix: string;
  /** @see RedisLockerOptions.leaseMs */
  readonly leaseMs: number;
  /** @see RedisLockerOptions.renewEveryMs */
  readonly renewEveryMs: number;
  /** @see RedisLockerOptions.pollMinMs */
  readonly pollMinMs: number;
  /** @see RedisLockerOptions.pollMaxMs */
  readonly pollMaxMs: number;
  /** @see RedisLockerOptions.pubsub */
  readonly pubsub: 'sharded' | 'plain' | false;
  /** @see RedisLockerOptions.commandTimeoutMs */
  readonly commandTimeoutMs: number;
  /** @see RedisLockerOptions.maxLeaseMs */
  readonly maxLeaseMs: number;
  /** @see RedisLockerOptions.closeTimeoutMs */
  readonly closeTimeoutMs: number;

  readonly #cluster: boolean;
  readonly #scripts: ScriptRunner;
  readonly #channels: ReleaseChannels | undefined;
  /** What an acquire attempt (attempt.ts), and each lease it takes, needs of this locker. */
  readonly #attempts: AttemptHost;
  /**
   * This locker's id in the waiters lists. Polling (`pubsub: false`), it ends
   * in `/<ms>`: how long a release leaves the lock holding its turn (see
   * {@link pollingTurnMs}), which the release script reads from the id.
   */
  readonly #id: string;
  readonly #keys = new Map<string, KeyState>();
  /** Leases this process holds, per key (a new local head need not ask Redis while we hold it). */
  readonly #held = new Map<string, number>();
  #closed = false;
  /** The unfenced-master warning was given (once per locker). */
  #warnedUnfenced = false;
  /** The max-lease warning was given (once per locker). */
  #warnedMaxLease = false;

  constructor(options: RedisLockerOptions) {
    const resolved = resolveRedisLockerOptions(options);
    this.client = resolved.client;
    this.prefix = resolved.prefix;
    this.leaseMs = resolved.leaseMs;
    this.renewEveryMs = resolved.renewEveryMs;
    this.pollMinMs = resolved.pollMinMs;
    this.pollMaxMs = resolved.pollMaxMs;
    this.pubsub = resolved.pubsub;
    this.commandTimeoutMs = resolved.commandTimeoutMs;
    this.maxLeaseMs = resolved.maxLeaseMs;
    this.closeTimeoutMs = resolved.closeTimeoutMs;
    this.#cluster = resolved.cluster;
    this.#scripts = new ScriptRunner(this.client, this.commandTimeoutMs, this.pubsub);
    this.#channels = this.pubsub ? new ReleaseChannels(this.client, this.pubsub, this.closeTimeoutMs, this.#onReleaseMessage) : undefined;
    this.#id = this.pubsub ? nextLockerId() : `${nextLockerId()}/${pollingTurnMs(this.pollMaxMs)}`;
    this.#attempts = {
      lease: {
        leaseMs: this.leaseMs,
        renewEveryMs: this.renewEveryMs,
        maxLeaseMs: this.maxLeaseMs,
        scripts: this.#scripts,
        clock: this.renewEveryMs > 0 ? new RenewalClock(this.renewEveryMs, this.leaseMs) : undefined,
        ended: (key) => this.#leaseEnded(key),
        outlived: () => this.#leaseOutlived(),
      },
      scripts: this.#scripts,
      channels: this.#channels,
      id: this.#id,
      // How long a waiters list (`<lock>:waiters`) lives after a registration: past a waiter's longest sleep between two attempts.
      waitingMarkMs: String(2 * this.pollMaxMs + 1000),
      held: (key) => this.#held.set(key, (this.#held.get(key) ?? 0) + 1),
    };
  }

  /** The Redis key of the lock of `key`: `<prefix>{key}`. */
  lockKey(key: string): string {
    return `${this.prefix}{${key}}`;
  }

  /** Keys with local waiters (0 when idle: nothing leaks). */
  get size(): number {
    return this.#keys.size;
  }

  /** Keys on which this process holds a lease (0 when idle: nothing leaks). */
  get heldKeys(): number {
    return this.#held.size;
  }

  async acquire(key: string, options: AcquireOptions): Promise<RedisLease> {
    const { timeoutMs, signal } = options;
    signal?.throwIfAborted();
    if (this.#closed) throw closedError();
    checkAcquireOptions(options);
    if (!this.#warnedUnfenced) this.#warnedUnfenced = warnIfUnfenced(options.store);
    const fast = fastPathFor(options.store, this.client, key, this.#cluster ? this.lockKey(key) : undefined);
    const attemptTimeoutMs = attemptTimeout(this.#scripts, fast, options.storeTimeoutMs);

    let state = this.#keys.get(key);
    if (!state) {
      state = newKeyState(key, this.lockKey(key));
      this.#keys.set(key, state);
    }
    const keyState = state;
    const startedAt = performance.now();

    return new Promise<RedisLease>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (error: unknown, lease?: HeldLease): void => {
        if (waiter.done) return;
        waiter.done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        waiter.wake?.();
        this.#leave(keyState, waiter);
        // A waiter still queued behind the head: let its run loop see `done`
        // and return now, rather than leaving it parked on a turn that never comes.
        waiter.startTurn();
        if (lease) resolve(lease);
        else reject(error);
      };
      // The lock-wait timer starts only when this acquire has to wait (an
      // uncontended acquire, the common case, never arms one), or at once when
      // a single attempt may outlast the lock timeout.
      const waiting = (): void => {
        if (timer || waiter.done || !(timeoutMs <= MAX_TIMER_MS)) return;
        timer = setTimeout(() => finish(new LockTimeoutError(timeoutMs)), Math.max(0, startedAt + timeoutMs - performance.now()));
      };
      let startTurn!: () => void;
      const turn = new Promise<void>((ok) => (startTurn = ok));
      const waiter: Waiter = { done: false, turn, startTurn, wake: undefined, waiting };
      keyState.queue.push(waiter);
      if (keyState.queue.length === 1) startTurn();
      else waiting();
      if (!(attemptTimeoutMs < timeoutMs)) waiting();
      const onAbort = (): void => finish(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#run(keyState, waiter, fast, attemptTimeoutMs).then(
        (lease) => {
          if (!lease) return; // gave up before the lock was ours
          if (waiter.done) {
            // The timeout/abort fired while our SET NX was in flight and it
            // succeeded after all: the caller is gone for good, so hand the lock
            // straight back (which also wakes the next waiter).
            void lease.release();
            return;
          }
          finish(undefined, lease);
        },
        (error: unknown) => finish(error),
      );
    });
  }

  /**
   * Release what the locker created itself: the subscriber connection. Pending
   * waiters fail with `ERR_SESSION_CLOSED`; held leases stay valid until released.
   * The client given in the options is never closed.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const state of this.#keys.values()) for (const waiter of state.queue) waiter.wake?.();
    await this.#channels?.close();
  }

  // -- waiting ----------------------------------------------------------------

  /** The head-of-queue loop: try, subscribe, try again, then sleep until woken or the poll. */
  async #run(state: KeyState, waiter: Waiter, fast: FastPath | undefined, attemptTimeoutMs: number): Promise<HeldLease | undefined> {
    await waiter.turn;
    const { channel } = state.keys;
    const channels = this.#channels;
    let delay = this.pollMinMs;
    let triedSubscribe = false;
    // While this process holds the lock, a new local head has nothing to ask
    // Redis: the end of the local lease wakes it.
    let skipAttempt = (this.#held.get(state.keys.key) ?? 0) > 0;
    for (;;) {
      if (waiter.done) return undefined;
      if (this.#closed) throw closedError();
      let pttl = -1;
      if (!skipAttempt) {
        state.woken = false;
        const result = await attemptLock(this.#attempts, state, fast, attemptTimeoutMs);
        if (result.lease) return result.lease;
        if (waiter.done) return undefined;
        pttl = result.pttl;
        // Polling: the turn comes at the next poll, so poll by the place in
        // line: the next in line every pollMinMs, the one after every 2 ×
        // pollMinMs, … (at most pollMaxMs, which the turn outlasts).
        if (!channels && result.place !== undefined) delay = Math.min(delay, this.pollMinMs * (result.place + 1));
        if (channels && !triedSubscribe && !channels.isSubscribed(channel)) {
          // Subscribe in the background (never block the wait on it: the poll
          // covers a subscriber that cannot connect). Once subscribed, try once
          // more at once: a release between the failed SET and the subscription
          // would otherwise wait for the poll. Afterwards every release wakes us
          // (each failed attempt registered this waiter: scripts.ts).
          triedSubscribe = true;
          void channels.subscribe(channel).then(() => {
            if (!channels.isSubscribed(channel) || this.#keys.get(state.keys.key) !== state) return;
            wakeHead(state);
          });
        }
      }
      waiter.waiting();
      skipAttempt = false;
      // Sleep until a release, the poll, or the lock's own expiry (a dead
      // holder's lease ends at its PTTL: no reason to sleep past it).
      const woken = await sleepUntilWoken(state, waiter, pttl > 0 ? Math.min(delay, pttl + 1) : delay, this.#closed);
      delay = woken ? this.pollMinMs : Math.min(delay * 2, this.pollMaxMs);
    }
  }

  /** A lease of this locker ended (released or lost): it no longer counts as held, and the next local waiter may try. */
  #leaseEnded(key: string): void {
    const n = (this.#held.get(key) ?? 0) - 1;
    if (n > 0) this.#held.set(key, n);
    else this.#held.delete(key);
    const state = this.#keys.get(key);
    if (state) wakeHead(state);
  }

  /** Remove a waiter that got the lock or gave up; the next local waiter becomes the head. */
  #leave(state: KeyState, waiter: Waiter): void {
    const index = state.queue.indexOf(waiter);
    if (index === -1) return;
    state.queue.splice(index, 1);
    if (index === 0) state.queue[0]?.startTurn();
    if (state.queue.length === 0 && this.#keys.get(state.keys.key) === state) {
      this.#keys.delete(state.keys.key);
      this.#channels?.release(state.keys.channel, () => this.#keys.has(state.keys.key));
      // Polling, nobody will look for a turn this locker registered for: take
      // it off the list now, and pass on a turn it may hold already (with
      // pub/sub, the release's message makes #onReleaseMessage do that).
      if (!this.#channels && state.registered) this.#passTurn(state.keys.lock);
    }
  }

  /**
   * A release notification on channel `<lockKey>:released`, carrying the id
   * of the locker it wakes ('1': every waiter, from a 0.1.0 release): wake
   * that key's head if it is this locker; with nobody waiting here any more,
   * pass the wake-up on to the next waiting process.
   */
  readonly #onReleaseMessage = (channel: string, message: string): void => {
    if (message !== this.#id && message !== '1') return;
    const lockKey = channel.slice(0, -':released'.length);
    const state = this.#keys.get(lockKey.slice(this.prefix.length + 1, -1));
    if (state) {
      if (message === this.#id) {
        state.called = true;
        state.registered = false;
      }
      wakeHead(state);
    } else if (message === this.#id) {
      this.#passTurn(lockKey);
    }
  };

  /** Take this locker off the waiters list of `lockKey`, passing on a turn it holds there. */
  #passTurn(lockKey: string): void {
    void this.#scripts
      .run('pass', [lockKey, `${lockKey}:waiters`, `${lockKey}:waiting`], [this.#scripts.publishCommand, `${lockKey}:released`, this.#id])
      .catch((error: unknown) => {
        debug('redis locker: passing a turn on failed (it expires; the next waiter polls): %s', errorMessage(error));
      });
  }

  // -- lease upkeep ------------------------------------------------------------

  /** A lease was held past `maxLeaseMs`: say so loudly, once per locker. */
  #leaseOutlived(): void {
    if (this.#warnedMaxLease) return;
    this.#warnedMaxLease = true;
    process.emitWarning(
      `koa-locked-session: a RedisLocker lease was held longer than maxLeaseMs (${this.maxLeaseMs} ms) and is reported lost (its save is refused): a scope was never ended (\`lock()\` without \`await using\`?) or runs too long; end every scope, or raise \`maxLeaseMs\``,
      { code: 'KOA_LOCKED_SESSION_MAX_LEASE' },
    );
  }
}
