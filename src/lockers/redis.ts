import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { debuglog } from 'node:util';
import { withDeadline } from '../deadline.js';
import { LockLostError, LockTimeoutError, SessionError, StoreError } from '../errors.js';
import { REDIS_FAST_PATH, type RedisFastPath } from '../stores/redis.js';
import { isVersioned, type Store, type VersionedStore } from '../stores/store.js';
import type { AcquireOptions, Lease, Locker } from './locker.js';
import { errorMessage } from '../format.js';
import { FencedStore } from './redis-fenced.js';
import { SCRIPTS, type Script, type ScriptName } from './redis-scripts.js';

const debug = debuglog('koa-locked-session');

/**
 * What RedisLocker needs of a node-redis (v5+) client: a `createClient()` or a
 * `createCluster()` client, whatever its modules, scripts, RESP version or type
 * mapping. Typed by shape rather than as `RedisClientType<any…> |
 * RedisClusterType<any…>`: a real cluster client is not assignable to
 * `RedisClusterType<any, any, any, any, any>` (its `_handleAsk` parameter is
 * invariant in the modules), so that union would reject `createCluster()`.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
export interface RedisLockerClient {
  readonly isReady: boolean;
  readonly isOpen: boolean;
  evalSha(...args: any[]): Promise<unknown>;
  eval(...args: any[]): Promise<unknown>;
  withCommandOptions(...args: any[]): unknown;
  duplicate(...args: any[]): unknown;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** Options of {@link RedisLocker}. */
export interface RedisLockerOptions {
  /**
   * A **connected** node-redis client (`createClient`) or cluster client
   * (`createCluster`). The locker never closes it. Pass the same client to
   * `RedisStore` to get the fast path (lock + read and write + release in one
   * script each, the write also checked against this lease's token).
   */
  client: RedisLockerClient;
  /**
   * Prefix of the lock keys: the lock of session `sid` is `<prefix>{sid}`. The
   * `{sid}` hash tag puts it in the same Redis Cluster slot as RedisStore's
   * `sess:{sid}`, so one script can touch both.
   * @default 'lock:'
   */
  prefix?: string;
  /**
   * How long a lock stays valid without renewal, in ms (`SET … PX leaseMs`). A
   * holder that dies (crash, SIGKILL, lost network) blocks its session for at
   * most this long. While a scope runs the lease is renewed every
   * {@link renewEveryMs}.
   * @default 10_000
   */
  leaseMs?: number;
  /**
   * Renew the lease this often while it is held, in ms; `0` disables renewal
   * (the lease then simply expires after `leaseMs`). Must be below `leaseMs`.
   * @default leaseMs / 3
   */
  renewEveryMs?: number;
  /**
   * The longest a lease lives, in ms, however often it is renewed: past it
   * renewal stops, the lease is reported lost (its save is refused with
   * `LockLostError`) and the lock expires in Redis, so a scope that is never
   * ended (a `lock()` without `await using`) cannot lock its session for good.
   * Must exceed `leaseMs`; pick it above your longest scope.
   * @default 60_000 (or 2 × leaseMs when that is longer)
   */
  maxLeaseMs?: number;
  /**
   * How waiters learn that a lock was released: `'sharded'` (`SPUBLISH`/`SSUBSCRIBE`,
   * Redis 7+, the message stays on the shard that owns the key), `'plain'`
   * (`PUBLISH`/`SUBSCRIBE`, any Redis; broadcast to every node of a cluster), or
   * `false` (no notifications: waiters only poll). The locker opens one extra
   * subscriber connection (`client.duplicate()`) on the first contended acquire
   * and closes it in {@link RedisLocker.close}.
   * @default 'sharded' for a cluster client, 'plain' for a single-node client
   */
  pubsub?: 'sharded' | 'plain' | false;
  /**
   * Fallback poll while waiting, in ms: the first retry after `pollMinMs`, then
   * doubling up to `pollMaxMs` (never later than the moment the current lock
   * expires). It only matters when a release notification is lost (subscriber
   * reconnecting) or a holder died.
   * @default 50
   */
  pollMinMs?: number;
  /** @see pollMinMs @default 1000 */
  pollMaxMs?: number;
  /**
   * Longest wait for one Redis command, in ms (node-redis command timeout): a
   * black-holed server fails the acquire or the save with a `StoreError` (503)
   * instead of hanging the request. `0` sends commands without a timeout
   * (node-redis then skips its per-command `AbortSignal.timeout`, a measurable
   * CPU cost at high request rates).
   * @default 2000
   */
  commandTimeoutMs?: number;
  /**
   * Longest wait for `close()`'s graceful close of the subscriber connection,
   * in ms; past it (or at once if that connection never connected) it is
   * destroyed, so `close()` always settles.
   * @default 1000
   */
  closeTimeoutMs?: number;
}

/** The defaults of {@link RedisLockerOptions}. */
export const REDIS_LOCKER_DEFAULTS = Object.freeze({
  prefix: 'lock:',
  leaseMs: 10_000,
  pollMinMs: 50,
  pollMaxMs: 1000,
  commandTimeoutMs: 2000,
  maxLeaseMs: 60_000,
  closeTimeoutMs: 1000,
});

// ---------------------------------------------------------------------------
// The slice of node-redis this file uses, typed loosely so one code path serves
// a client and a cluster client, RESP2 and RESP3.

interface EvalOptions {
  keys: string[];
  arguments: string[];
}
interface ScriptRunner {
  evalSha(sha: string, options: EvalOptions): Promise<unknown>;
  eval(source: string, options: EvalOptions): Promise<unknown>;
  withCommandOptions(options: { timeout: number }): ScriptRunner;
  readonly isReady: boolean;
  readonly isOpen: boolean;
}
type PubSubListener = (message: string, channel: string) => void;
interface Subscriber {
  connect(): Promise<unknown>;
  on(event: 'error', listener: (error: unknown) => void): unknown;
  subscribe(channels: string, listener: PubSubListener): Promise<void>;
  unsubscribe(channels: string, listener?: PubSubListener): Promise<void>;
  sSubscribe(channels: string, listener: PubSubListener): Promise<void>;
  sUnsubscribe(channels: string, listener?: PubSubListener): Promise<void>;
  close?(): Promise<void>;
  destroy(): void;
}

/** The fast-path view of a RedisStore master (see `REDIS_FAST_PATH` in src/stores/redis.ts), with the store itself. */
interface FastPath extends RedisFastPath {
  readonly store: VersionedStore;
}
function fastPathOf(store: Store | undefined): FastPath | undefined {
  const get = (store as { [REDIS_FAST_PATH]?: unknown } | undefined)?.[REDIS_FAST_PATH];
  if (typeof get !== 'function' || !isVersioned(store!)) return undefined;
  return { ...(get.call(store) as RedisFastPath), store };
}

/** The Redis Cluster hash tag of `key` (what decides its slot), per the cluster spec. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

function isCluster(client: unknown): boolean {
  return typeof (client as { getSlotRandomNode?: unknown }).getSlotRandomNode === 'function';
}

/**
 * Lock tokens only need to be unique (no one can forge one without access to
 * Redis, which could do anything anyway): a random per-process nonce plus a
 * counter, cheaper than `randomBytes` per acquire.
 */
const TOKEN_NONCE = randomBytes(12).toString('base64url');
let tokenCounter = 0;
function nextToken(): string {
  return `${TOKEN_NONCE}.${(++tokenCounter).toString(36)}`;
}

function text(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return String(value);
}

function positive(name: string, value: unknown, allowZero = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new TypeError(
      `koa-locked-session: Expected \`${name}\` to be a ${allowZero ? 'non-negative' : 'positive'} number of ms, got \`${String(value)}\``,
    );
  }
  return Math.ceil(value);
}

// ---------------------------------------------------------------------------

/** Per-key in-process state: a FIFO of local waiters; only the head talks to Redis. */
interface KeyState {
  readonly key: string;
  readonly lockKey: string;
  readonly channel: string;
  readonly queue: Waiter[];
  /** A release notification arrived: the head retries at once instead of sleeping. */
  woken: boolean;
}

interface Waiter {
  /** Gave up (timeout, abort, close) or got the lease: the run loop stops at its next step. */
  done: boolean;
  /** Becomes the head of its key's queue. */
  readonly turn: Promise<void>;
  readonly startTurn: () => void;
  /** Ends the head's current sleep (set while it sleeps). */
  wake: (() => void) | undefined;
}

/** The subscription of one release channel; outlives the KeyState by `SUBSCRIPTION_LINGER_MS`. */
interface ChannelSub {
  want: boolean;
  is: boolean;
  busy: Promise<void> | undefined;
  linger: NodeJS.Timeout | undefined;
}

/** Keep a release channel subscribed this long after its last local waiter left (saves SUBSCRIBE churn on hot keys). */
const SUBSCRIPTION_LINGER_MS = 1000;

/** setTimeout's limit; longer (or infinite) lock timeouts simply never fire. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Many processes: a lease on a Redis key per session.
 *
 * - acquire: `SET <prefix>{sid} <random token> NX PX <leaseMs>` (in a script that
 *   also reads the session record when the master is a `RedisStore` on the same
 *   client: one round trip for lock + fresh read);
 * - release: compare-and-delete in one script, which also publishes a wake-up
 *   to the waiters of that key;
 * - renewal every `renewEveryMs` while held; a renewal that finds the token gone
 *   (or no successful renewal before the lease would have expired, by this
 *   process' monotonic clock) marks the lease `lost`, and the save is refused;
 * - waiting: in-process waiters queue FIFO and only the head of each key talks
 *   to Redis; it sleeps until a release notification (pub/sub) or a bounded
 *   backoff poll, never spinning. Across processes there is no FIFO promise;
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
  readonly prefix: string;
  readonly leaseMs: number;
  readonly renewEveryMs: number;
  readonly pollMinMs: number;
  readonly pollMaxMs: number;
  readonly pubsub: 'sharded' | 'plain' | false;
  readonly commandTimeoutMs: number;
  readonly maxLeaseMs: number;
  readonly closeTimeoutMs: number;

  /** The client given in the options… */
  readonly #client: ScriptRunner;
  /** …and a view of it whose commands time out after `commandTimeoutMs`. */
  readonly #runner: ScriptRunner;
  readonly #cluster: boolean;
  readonly #keys = new Map<string, KeyState>();
  readonly #subs = new Map<string, ChannelSub>();
  /** Leases this process holds, per key (a new local head need not ask Redis while we hold it). */
  readonly #held = new Map<string, number>();
  /** The subscriber connection (created on the first contended acquire)… */
  #subscriber: Subscriber | undefined;
  /** …and whether it connected. */
  #subscriberReady: Promise<boolean> | undefined;
  #closed = false;
  /** The unfenced-master warning was given (once per locker). */
  #warnedUnfenced = false;
  /** The max-lease warning was given (once per locker). */
  #warnedMaxLease = false;

  constructor(options: RedisLockerOptions) {
    if (!options || typeof options !== 'object' || !options.client) {
      throw new TypeError('koa-locked-session: Expected `client` to be a connected node-redis client or cluster client, e.g. `new RedisLocker({ client: await createClient().connect() })`');
    }
    this.client = options.client;
    this.#client = options.client as unknown as ScriptRunner;
    if (typeof this.#client.evalSha !== 'function' || typeof this.#client.withCommandOptions !== 'function') {
      throw new TypeError('koa-locked-session: Expected RedisLocker `client` to be a node-redis (v5+) client from createClient() or createCluster() (it has no `evalSha`/`withCommandOptions`)');
    }
    this.commandTimeoutMs = positive('commandTimeoutMs', options.commandTimeoutMs ?? REDIS_LOCKER_DEFAULTS.commandTimeoutMs, true);
    this.#runner = this.#client;
    this.#cluster = isCluster(options.client);
    this.prefix = options.prefix ?? REDIS_LOCKER_DEFAULTS.prefix;
    if (typeof this.prefix !== 'string') throw new TypeError(`koa-locked-session: Expected \`prefix\` to be a string, got \`${String(this.prefix)}\``);
    this.leaseMs = positive('leaseMs', options.leaseMs ?? REDIS_LOCKER_DEFAULTS.leaseMs);
    this.renewEveryMs = positive('renewEveryMs', options.renewEveryMs ?? Math.max(1, Math.floor(this.leaseMs / 3)), true);
    if (this.renewEveryMs >= this.leaseMs) {
      throw new TypeError(`koa-locked-session: Expected \`renewEveryMs\` (${this.renewEveryMs}) to be below \`leaseMs\` (${this.leaseMs}), e.g. leaseMs / 3; use 0 to disable renewal`);
    }
    this.maxLeaseMs = positive('maxLeaseMs', options.maxLeaseMs ?? Math.max(REDIS_LOCKER_DEFAULTS.maxLeaseMs, 2 * this.leaseMs));
    if (this.maxLeaseMs <= this.leaseMs) {
      throw new TypeError(`koa-locked-session: Expected \`maxLeaseMs\` (${this.maxLeaseMs}) to exceed \`leaseMs\` (${this.leaseMs}), e.g. 60_000: a lease lives at most maxLeaseMs, however often it is renewed`);
    }
    this.closeTimeoutMs = positive('closeTimeoutMs', options.closeTimeoutMs ?? REDIS_LOCKER_DEFAULTS.closeTimeoutMs);
    this.pollMinMs = positive('pollMinMs', options.pollMinMs ?? REDIS_LOCKER_DEFAULTS.pollMinMs);
    this.pollMaxMs = positive('pollMaxMs', options.pollMaxMs ?? Math.max(REDIS_LOCKER_DEFAULTS.pollMaxMs, this.pollMinMs));
    if (this.pollMaxMs < this.pollMinMs) {
      throw new TypeError(`koa-locked-session: Expected \`pollMaxMs\` (${this.pollMaxMs}) to be at least \`pollMinMs\` (${this.pollMinMs})`);
    }
    const pubsub = options.pubsub ?? (this.#cluster ? 'sharded' : 'plain');
    if (pubsub !== 'sharded' && pubsub !== 'plain' && pubsub !== false) {
      throw new TypeError(`koa-locked-session: Expected \`pubsub\` to be 'sharded', 'plain' or false, got \`${String(pubsub)}\``);
    }
    this.pubsub = pubsub;
  }

  /** The Redis key of the lock of `key`: `<prefix>{key}`. */
  lockKey(key: string): string {
    return `${this.prefix}{${key}}`;
  }

  /** Keys with local waiters (0 when idle: nothing leaks). */
  get size(): number {
    return this.#keys.size;
  }

  async acquire(key: string, options: AcquireOptions): Promise<RedisLease> {
    const { timeoutMs, signal } = options;
    signal?.throwIfAborted();
    if (this.#closed) throw closedError();
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
      throw new TypeError(`koa-locked-session: Expected \`timeoutMs\` to be a non-negative number of ms, got \`${String(timeoutMs)}\``);
    }
    if (options.storeTimeoutMs !== undefined && !(typeof options.storeTimeoutMs === 'number' && options.storeTimeoutMs > 0)) {
      throw new TypeError(`koa-locked-session: Expected \`storeTimeoutMs\` to be a positive number of ms, got \`${String(options.storeTimeoutMs)}\``);
    }
    this.#checkMaster(options.store);
    const fast = this.#fastPathStore(options.store, key);
    // The fused acquire-and-read is a store read too: bound it by the
    // middleware's storeTimeout and the store's own timeout as well.
    const attemptTimeoutMs = Math.min(
      this.commandTimeoutMs > 0 ? this.commandTimeoutMs : Infinity,
      fast ? fast.timeoutMs : Infinity,
      fast && options.storeTimeoutMs !== undefined ? options.storeTimeoutMs : Infinity,
    );

    let state = this.#keys.get(key);
    if (!state) {
      const lockKey = this.lockKey(key);
      state = { key, lockKey, channel: `${lockKey}:released`, queue: [], woken: false };
      this.#keys.set(key, state);
    }
    let startTurn!: () => void;
    const turn = new Promise<void>((resolve) => (startTurn = resolve));
    const waiter: Waiter = { done: false, turn, startTurn, wake: undefined };
    state.queue.push(waiter);
    if (state.queue.length === 1) startTurn();
    const keyState = state;

    return new Promise<RedisLease>((resolve, reject) => {
      const finish = (error: unknown, lease?: RedisLease): void => {
        if (waiter.done) return;
        waiter.done = true;
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        waiter.wake?.();
        this.#leave(keyState, waiter);
        // A waiter still queued behind the head: let its run loop see `done`
        // and return now, rather than leaving it parked on a turn that never comes.
        waiter.startTurn();
        if (lease) resolve(lease);
        else reject(error);
      };
      const timer = timeoutMs <= MAX_TIMER_MS ? setTimeout(() => finish(new LockTimeoutError(timeoutMs)), timeoutMs) : undefined;
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
    for (const sub of this.#subs.values()) if (sub.linger) clearTimeout(sub.linger);
    this.#subs.clear();
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (!subscriber) return;
    // Every step is bounded: a connection still (re)connecting (new connections
    // black-holed) is destroyed at once, never awaited; a connected one gets
    // `closeTimeoutMs` to close gracefully (its pending UNSUBSCRIBEs may never
    // be answered), then is destroyed.
    const ready = (subscriber as { isReady?: boolean }).isReady === true;
    if (ready && subscriber.close) {
      const closed = await withDeadline(() => subscriber.close!(), this.closeTimeoutMs, () => new Error('close timed out')).then(
        () => true,
        (error: unknown) => {
          debug('redis locker: the subscriber connection did not close gracefully (destroyed): %s', errorMessage(error));
          return false;
        },
      );
      if (closed) return;
    }
    try {
      subscriber.destroy();
    } catch (error) {
      debug('redis locker: destroying the subscriber connection failed: %s', errorMessage(error));
    }
  }

  // -- waiting ----------------------------------------------------------------

  /** The head-of-queue loop: try, subscribe, try again, then sleep until woken or the poll. */
  async #run(state: KeyState, waiter: Waiter, fast: FastPath | undefined, attemptTimeoutMs: number): Promise<RedisLease | undefined> {
    await waiter.turn;
    let delay = this.pollMinMs;
    let triedSubscribe = false;
    // While this process holds the lock, a new local head has nothing to ask
    // Redis: the holder's release will publish the wake-up.
    let skipAttempt = this.#isSubscribed(state.channel) && (this.#held.get(state.key) ?? 0) > 0;
    for (;;) {
      if (waiter.done) return undefined;
      if (this.#closed) throw closedError();
      let pttl = -1;
      if (!skipAttempt) {
        state.woken = false;
        const result = await this.#attempt(state, fast, attemptTimeoutMs);
        if (result.lease) return result.lease;
        if (waiter.done) return undefined;
        pttl = result.pttl;
        if (this.pubsub && !triedSubscribe && !this.#isSubscribed(state.channel)) {
          // Subscribe in the background (never block the wait on it: the poll
          // covers a subscriber that cannot connect). Once subscribed, try once
          // more at once: a release between the failed SET and the subscription
          // would otherwise wait for the poll. Afterwards every release wakes us.
          triedSubscribe = true;
          void this.#wantSub(state.channel, true).then(() => {
            if (!this.#isSubscribed(state.channel) || this.#keys.get(state.key) !== state) return;
            state.woken = true;
            state.queue[0]?.wake?.();
          });
        }
      }
      skipAttempt = false;
      // Sleep until a release notification, the poll, or the lock's own expiry
      // (a dead holder's lease ends at its PTTL: no reason to sleep past it).
      const woken = await this.#sleep(state, waiter, pttl > 0 ? Math.min(delay, pttl + 1) : delay);
      delay = woken ? this.pollMinMs : Math.min(delay * 2, this.pollMaxMs);
    }
  }

  /** Resolves true when woken by a release notification, false on the poll timer. */
  #sleep(state: KeyState, waiter: Waiter, ms: number): Promise<boolean> {
    if (state.woken || waiter.done || this.#closed) return Promise.resolve(state.woken);
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

  /** One SET NX attempt (with the fast-path read when possible). */
  async #attempt(state: KeyState, fast: FastPath | undefined, timeoutMs: number): Promise<{ lease?: RedisLease; pttl: number }> {
    const token = nextToken();
    const keys = fast ? [state.lockKey, fast.recordKey(state.key)] : [state.lockKey];
    const startedAt = performance.now();
    let reply: unknown;
    try {
      this.assertReady('lock acquire');
      reply = await this.#eval(SCRIPTS.acquire, keys, [token, String(this.leaseMs)], timeoutMs);
    } catch (error) {
      if (error instanceof StoreError) throw error;
      // The SET may have landed with its reply lost (command timeout, dropped
      // connection): give back whatever this token holds, without waiting (on
      // the same connection, so it runs after the SET if that arrives late).
      void this.#eval(SCRIPTS.release, [state.lockKey], [token, this.publishCommand, state.channel]).catch(() => {});
      // Never the lock key in a message: it carries the sid.
      throw new StoreError(this.name, `lock acquire (SET NX PX${fast ? ' + GET' : ''}) failed for a lock key: ${errorMessage(error)}`, { cause: error });
    }
    const [ok, second] = Array.isArray(reply) ? (reply as unknown[]) : [];
    if (Number(ok) !== 1) return { pttl: Number(second ?? -1) };
    this.#held.set(state.key, (this.#held.get(state.key) ?? 0) + 1);
    const lease = new RedisLease(this, state.key, state.lockKey, state.channel, token, startedAt);
    if (fast) lease.store = new FencedStore(fast.store, lease, keys[1]!, Math.min(this.commandTimeoutMs > 0 ? this.commandTimeoutMs : Infinity, fast.timeoutMs), text(second));
    return { lease, pttl: 0 };
  }

  /** @internal A lease of this locker ended (released or lost). */
  dropHeld(key: string): void {
    const n = (this.#held.get(key) ?? 0) - 1;
    if (n > 0) this.#held.set(key, n);
    else this.#held.delete(key);
  }

  /** Remove a waiter that got the lock or gave up; the next local waiter becomes the head. */
  #leave(state: KeyState, waiter: Waiter): void {
    const index = state.queue.indexOf(waiter);
    if (index === -1) return;
    state.queue.splice(index, 1);
    if (index === 0) state.queue[0]?.startTurn();
    if (state.queue.length === 0 && this.#keys.get(state.key) === state) {
      this.#keys.delete(state.key);
      const sub = this.#subs.get(state.channel);
      if (sub?.want && !sub.linger) {
        sub.linger = setTimeout(() => {
          sub.linger = undefined;
          if (!this.#keys.has(state.key)) void this.#wantSub(state.channel, false);
        }, SUBSCRIPTION_LINGER_MS);
        sub.linger.unref();
      }
    }
  }

  // -- pub/sub ----------------------------------------------------------------

  readonly #onMessage = (_message: string, channel: string): void => {
    // Channel `<lockKey>:released`; find the key's state through the lock key.
    const lockKey = channel.slice(0, -':released'.length);
    const key = lockKey.slice(this.prefix.length + 1, -1);
    const state = this.#keys.get(key);
    if (!state) return;
    state.woken = true;
    state.queue[0]?.wake?.();
  };

  /** Subscribed and meant to stay so (not being unsubscribed after its linger). */
  #isSubscribed(channel: string): boolean {
    const sub = this.#subs.get(channel);
    return sub?.is === true && sub.want;
  }

  /** Want (or no longer want) the subscription of `channel`; resolves when Redis agrees or it failed (never throws: polling remains). */
  async #wantSub(channel: string, want: boolean): Promise<void> {
    if (this.#closed) return;
    let sub = this.#subs.get(channel);
    if (!sub) {
      if (!want) return;
      sub = { want, is: false, busy: undefined, linger: undefined };
      this.#subs.set(channel, sub);
    }
    sub.want = want;
    if (want && sub.linger) {
      clearTimeout(sub.linger);
      sub.linger = undefined;
    }
    while (sub.busy) await sub.busy;
    // One SUBSCRIBE/UNSUBSCRIBE at a time per channel, until Redis matches the wish.
    while (sub.want !== sub.is && !this.#closed) {
      const target = sub.want;
      const current = sub;
      const step = (async () => {
        const subscriber = await this.#getSubscriber();
        if (!subscriber) {
          current.want = current.is; // no subscriber: stop trying, polling remains
          return;
        }
        const sharded = this.pubsub === 'sharded';
        try {
          if (target) await (sharded ? subscriber.sSubscribe(channel, this.#onMessage) : subscriber.subscribe(channel, this.#onMessage));
          else await (sharded ? subscriber.sUnsubscribe(channel, this.#onMessage) : subscriber.unsubscribe(channel, this.#onMessage));
          current.is = target;
        } catch (error) {
          debug('redis locker: %s of a release channel failed (waiters fall back to polling): %s', target ? 'subscribe' : 'unsubscribe', errorMessage(error));
          current.want = current.is;
        }
      })();
      sub.busy = step;
      try {
        await step;
      } finally {
        sub.busy = undefined;
      }
    }
    if (!sub.want && !sub.is && !sub.busy && this.#subs.get(channel) === sub) this.#subs.delete(channel);
  }

  /** The subscriber connection, created on first need; `undefined` if it cannot be had (now). */
  async #getSubscriber(): Promise<Subscriber | undefined> {
    if (this.#closed) return undefined;
    if (!this.#subscriber) {
      const subscriber = (this.client as unknown as { duplicate(): Subscriber }).duplicate();
      // node-redis emits 'error' on every socket error; without a listener the
      // process would crash. It reconnects (and resubscribes) on its own.
      subscriber.on('error', (error) => debug('redis locker: subscriber error: %s', errorMessage(error)));
      this.#subscriber = subscriber;
      this.#subscriberReady = subscriber.connect().then(
        () => true,
        (error: unknown) => {
          debug('redis locker: cannot open the subscriber connection (waiters poll; retried on the next contended acquire): %s', errorMessage(error));
          subscriber.destroy();
          if (this.#subscriber === subscriber) this.#subscriber = undefined;
          return false;
        },
      );
    }
    const subscriber = this.#subscriber;
    return (await this.#subscriberReady) && !this.#closed ? subscriber : undefined;
  }

  // -- scripts ----------------------------------------------------------------

  /**
   * EVALSHA, falling back to EVAL (which caches the script) after a NOSCRIPT;
   * bounded by `commandTimeoutMs` through the shared deadline sweeper (no
   * AbortSignal per command).
   */
  #eval(s: Script, keys: string[], args: string[], timeoutMs = this.commandTimeoutMs > 0 ? this.commandTimeoutMs : Infinity): Promise<unknown> {
    const run = async () => {
      const options = { keys, arguments: args };
      try {
        return await this.#runner.evalSha(s.sha, options);
      } catch (error) {
        if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
        return this.#runner.eval(s.source, options);
      }
    };
    if (!Number.isFinite(timeoutMs)) return run();
    const which = timeoutMs === this.commandTimeoutMs ? 'commandTimeoutMs' : 'the store timeout';
    return withDeadline(run, timeoutMs, () => new Error(`no reply within ${timeoutMs} ms (${which})`));
  }

  /** @internal `timeoutMs`: a tighter bound than `commandTimeoutMs` (the fenced store's). */
  runScript(name: ScriptName, keys: string[], args: string[], timeoutMs?: number): Promise<unknown> {
    return this.#eval(SCRIPTS[name], keys, args, timeoutMs);
  }

  /** @internal Whether a command would go out now (false while reconnecting). */
  get connected(): boolean {
    return this.#client.isReady !== false;
  }

  /**
   * @internal Fail at once while the client is not connected, as RedisStore
   * does, instead of letting node-redis queue the command until it reconnects:
   * the request gets its 503 now.
   */
  assertReady(what: string): void {
    if (!this.connected) {
      throw new StoreError(this.name, `${what} failed: the client is not connected to Redis (${this.#client.isOpen ? 'reconnecting' : 'closed'})`);
    }
  }

  /** @internal */
  get publishCommand(): string {
    return this.pubsub === 'sharded' ? 'SPUBLISH' : this.pubsub === 'plain' ? 'PUBLISH' : '';
  }

  /**
   * The master store, when the fast path (one-script acquire+read, fenced
   * writes) applies: a RedisStore on this very client whose record key shares
   * the lock key's hash tag (else a cluster refuses the script: CROSSSLOT).
   */
  #fastPathStore(store: Store | undefined, key: string): FastPath | undefined {
    const fast = fastPathOf(store);
    if (!fast || fast.client !== this.client) return undefined;
    if (this.#cluster && hashTag(fast.recordKey(key)) !== hashTag(this.lockKey(key))) {
      debug('redis locker: the record key and the lock key of a session are in different slots (prefixes with braces?): no fast path');
      return undefined;
    }
    return fast;
  }

  /**
   * Warn once when the master cannot refuse a late write: with a versioned
   * master (every built-in server-side store) a write that lands after its
   * lease was lost is refused by the store itself; a custom store without
   * `read`/`write` gets only the lease check before the save.
   */
  #checkMaster(store: Store | undefined): void {
    if (this.#warnedUnfenced || !store || isVersioned(store)) return;
    // A request-bound store (CookieStore) keeps the record in the response: nothing can land late.
    if ('sid' in store) return;
    this.#warnedUnfenced = true;
    process.emitWarning(
      `koa-locked-session: RedisLocker cannot fence the master store "${store.name}": it has no versioned read()/write() (VersionedStore), so a save that stalls past its lease or past storeTimeout can still land over newer data. Use a built-in store (RedisStore, MemcachedStore, MongoStore, MemoryStore) as master, or implement read() and write() in your store`,
      { code: 'KOA_LOCKED_SESSION_UNFENCED_MASTER' },
    );
  }

  /** @internal A lease was held past `maxLeaseMs`: say so loudly, once per locker. */
  leaseOutlived(): void {
    if (this.#warnedMaxLease) return;
    this.#warnedMaxLease = true;
    process.emitWarning(
      `koa-locked-session: a RedisLocker lease was held longer than maxLeaseMs (${this.maxLeaseMs} ms) and is reported lost (its save is refused): a scope was never ended (\`lock()\` without \`await using\`?) or runs too long; end every scope, or raise \`maxLeaseMs\``,
      { code: 'KOA_LOCKED_SESSION_MAX_LEASE' },
    );
  }

  /** @internal Held leases of this process, per key (0 when idle). */
  get heldKeys(): number {
    return this.#held.size;
  }
}

function closedError(): SessionError {
  return new SessionError('koa-locked-session: the RedisLocker was closed', { code: 'ERR_SESSION_CLOSED', status: 503 });
}

/**
 * A held Redis lock: the {@link Lease} contract plus `signal` (aborted when the
 * lease is known lost, so long work under the lock can stop early) and the
 * random `token` stored in the lock key.
 */
export class RedisLease implements Lease {
  /** Fenced, versioned view of the master (fast path); set right after acquire. */
  store?: VersionedStore;
  /** Created on first use of {@link signal} (most leases never need one). */
  #abort: AbortController | undefined;
  #lost: LockLostError | undefined;
  /** Until when (performance.now()) the lease is surely still ours: last confirmed PX start + lease − drift. */
  #validUntil: number;
  /**
   * One timer per lease (unref'd): the renewal interval, whose ticks also check
   * the clock; or, with renewal off, a watchdog at `#validUntil`.
   */
  #timer: NodeJS.Timeout | undefined;
  #renewing = false;
  #released: Promise<void> | undefined;
  /** The end of the lease's maximum life (performance.now()): `maxLeaseMs` after the acquire was sent. */
  readonly #endsAt: number;
  /** The last renewal was cut short to end at `#endsAt`: the lease runs out by its maximum life. */
  #final = false;
  /** This lease no longer counts in the locker's held leases (released or lost). */
  #dropped = false;

  /** @internal Created by {@link RedisLocker.acquire} only. */
  constructor(
    readonly locker: RedisLocker,
    /** The locked key (the session key given to `acquire`). */
    readonly key: string,
    /** The Redis key holding the lock: `<prefix>{key}`. */
    readonly lockKey: string,
    readonly channel: string,
    /** The unique value of this lease in the lock key. */
    readonly token: string,
    sentAt: number,
  ) {
    this.#endsAt = sentAt + locker.maxLeaseMs;
    this.#validUntil = this.#until(sentAt, locker.leaseMs);
    const { renewEveryMs } = locker;
    if (renewEveryMs > 0) {
      this.#timer = setInterval(() => {
        if (!this.lost) void this.#renew(); // `lost` also checks the clock
      }, renewEveryMs);
      this.#timer.unref();
    } else {
      this.#watch();
    }
  }

  /**
   * True once the lease is known lost: a renewal found another token (or none),
   * a fenced write was refused, or the lease may have run out by this process'
   * monotonic clock (no renewal confirmed in time: Redis unreachable, event loop
   * stalled). Checked by the scope right before it saves.
   */
  get lost(): boolean {
    if (!this.#lost && !this.#released && performance.now() >= this.#validUntil) {
      if (this.#final) this.#outlived();
      else this.markLost('no renewal confirmed within the lease');
    }
    return this.#lost !== undefined;
  }

  /** Aborted (with a `LockLostError`) once the lease is known lost, so long work under the lock can stop early. */
  get signal(): AbortSignal {
    this.#abort ??= new AbortController();
    if (this.lost && !this.#abort.signal.aborted) this.#abort.abort(this.#lost);
    return this.#abort.signal;
  }

  /** @internal */
  markLost(why: string): void {
    if (this.#lost) return;
    this.#lost = new LockLostError(`koa-locked-session: the session lock lease was lost (${why}); nothing will be saved`);
    debug('redis locker: a lease was lost (%s)', why);
    this.#stopTimer();
    this.#drop();
    this.#abort?.abort(this.#lost);
  }

  /** Held for `maxLeaseMs`: stop renewing, report the lease lost, warn once. The lock expires in Redis by `#endsAt`. */
  #outlived(): void {
    if (this.#lost) return;
    this.markLost(`held longer than maxLeaseMs, ${this.locker.maxLeaseMs} ms`);
    this.locker.leaseOutlived();
  }

  /** Stop counting this lease among the locker's held ones (once). */
  #drop(): void {
    if (this.#dropped) return;
    this.#dropped = true;
    this.locker.dropHeld(this.key);
  }

  async #renew(): Promise<void> {
    if (this.#renewing || this.#lost || this.#released) return; // one renewal in flight at a time
    const sentAt = performance.now();
    // Never renew past the maximum life: the last renewal is cut short so that
    // the lock expires in Redis when the lease ends here.
    const px = Math.min(this.locker.leaseMs, Math.floor(this.#endsAt - sentAt));
    if (px <= 0) {
      this.#outlived();
      return;
    }
    this.#renewing = true;
    try {
      const ok = await this.locker.runScript('renew', [this.lockKey], [this.token, String(px)]);
      if (this.#released || this.#lost) return;
      if (Number(ok) === 1) {
        this.#validUntil = this.#until(sentAt, px);
        if (px < this.locker.leaseMs) this.#final = true;
      } else this.markLost('a renewal found the token gone');
    } catch (error) {
      // Keep trying: a later tick marks the lease lost if no renewal lands in time.
      debug('redis locker: a lease renewal failed: %s', errorMessage(error));
    } finally {
      this.#renewing = false;
    }
  }

  #until(sentAt: number, px: number): number {
    // The PX countdown started after we sent the command: counting from the send
    // is on the safe side. Clock drift allowance as in Redlock: 1% + 2 ms.
    return sentAt + px - Math.ceil(px * 0.01) - 2;
  }

  /** Renewal off: mark the lease lost when it runs out. */
  #watch(): void {
    this.#timer = setTimeout(() => {
      // Timers may fire a hair early: look again later if so.
      if (!this.lost && !this.#released) this.#watch();
    }, Math.max(1, Math.ceil(this.#validUntil - performance.now())));
    this.#timer.unref();
  }

  #stopTimer(): void {
    // clearTimeout clears intervals too.
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Compare-and-delete the lock and wake the waiters. Idempotent; never rejects
   * (if Redis cannot be reached the lock simply expires after `leaseMs`). While
   * the client is reconnecting, the release is queued and not awaited.
   */
  /** @see Lease.releaseWithNextWrite */
  releaseWithNextWrite(): void {
    if (this.store) this.releaseOnWrite = true;
  }

  /** Set by {@link releaseWithNextWrite}; read (and cleared) by the fenced store. */
  releaseOnWrite = false;

  /** @internal The fenced store's last write released the lock in the same script. */
  releasedByWrite(): void {
    this.releaseOnWrite = false;
    if (this.#released) return;
    this.#stopTimer();
    this.#drop();
    this.#released = Promise.resolve();
  }

  release(): Promise<void> {
    this.#released ??= (async () => {
      this.#stopTimer();
      const locker = this.locker;
      this.#drop();
      const command = locker.runScript('release', [this.lockKey], [this.token, locker.publishCommand, this.channel]).then(
        () => undefined,
        (error: unknown) => debug('redis locker: a release failed (the lock expires by itself): %s', errorMessage(error)),
      );
      if (locker.connected) await command;
    })();
    return this.#released;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}
