/**
 * RedisLocker's release notifications: one subscriber connection per locker
 * (`client.duplicate()`, opened on the first contended acquire), and the
 * subscription of each release channel with local waiters.
 *
 * The subscriber never keeps the process alive: its socket is unref'd, and it
 * is closed when the client it was duplicated from closes (the application
 * quit its client) as well as by the locker's `close()`.
 */
import { debuglog } from 'node:util';
import { withDeadline } from '../util/deadline.js';
import { errorMessage } from '../util/format.js';
import type { RedisLockerClient } from './options.js';

const debug = debuglog('koa-locked-session');

type PubSubListener = (message: string, channel: string) => void;
interface Subscriber {
  readonly isReady?: boolean;
  connect(): Promise<unknown>;
  on(event: 'error', listener: (error: unknown) => void): unknown;
  /** A cluster client's node clients (re)connecting (see `destroyForGood`). */
  once?(event: 'node-connect' | 'node-reconnecting', listener: () => void): unknown;
  subscribe(channels: string, listener: PubSubListener): Promise<void>;
  unsubscribe(channels: string, listener?: PubSubListener): Promise<void>;
  sSubscribe(channels: string, listener: PubSubListener): Promise<void>;
  sUnsubscribe(channels: string, listener?: PubSubListener): Promise<void>;
  close?(): Promise<void>;
  destroy(): void;
  unref?(): void;
}

/** The subscription of one release channel; outlives its local waiters by `SUBSCRIPTION_LINGER_MS`. */
interface ChannelSub {
  want: boolean;
  is: boolean;
  busy: Promise<void> | undefined;
  linger: NodeJS.Timeout | undefined;
}

/** Keep a release channel subscribed this long after its last local waiter left (saves SUBSCRIBE churn on hot keys). */
const SUBSCRIPTION_LINGER_MS = 1000;

export class ReleaseChannels {
  readonly #client: RedisLockerClient;
  readonly #sharded: boolean;
  readonly #closeTimeoutMs: number;
  readonly #onRelease: (channel: string, message: string) => void;
  readonly #subs = new Map<string, ChannelSub>();
  /** The subscriber connection (created on first need)… */
  #subscriber: Subscriber | undefined;
  /** …and whether it connected. */
  #subscriberReady: Promise<boolean> | undefined;
  /** Stops watching the client for its close. */
  #unwatch: (() => void) | undefined;
  #closed = false;

  constructor(
    client: RedisLockerClient,
    mode: 'sharded' | 'plain',
    closeTimeoutMs: number,
    onRelease: (channel: string, message: string) => void,
  ) {
    this.#client = client;
    this.#sharded = mode === 'sharded';
    this.#closeTimeoutMs = closeTimeoutMs;
    this.#onRelease = onRelease;
  }

  /** Subscribed and meant to stay so (not being unsubscribed after its linger). */
  isSubscribed(channel: string): boolean {
    const sub = this.#subs.get(channel);
    return sub?.is === true && sub.want;
  }

  /** Want the subscription of `channel`; resolves when Redis agrees or it failed (never throws: polling remains). */
  async subscribe(channel: string): Promise<void> {
    await this.#want(channel, true);
  }

  /** The last local waiter of `channel` left: unsubscribe after the linger, unless `stillWanted()` by then. */
  release(channel: string, stillWanted: () => boolean): void {
    const sub = this.#subs.get(channel);
    if (!sub?.want || sub.linger) return;
    sub.linger = setTimeout(() => {
      sub.linger = undefined;
      if (!stillWanted()) void this.#want(channel, false);
    }, SUBSCRIPTION_LINGER_MS);
    sub.linger.unref();
  }

  /** Close the subscriber connection for good (the locker's `close()`). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#dropSubscriber();
  }

  readonly #onMessage: PubSubListener = (message, channel) => this.#onRelease(channel, message);

  async #want(channel: string, want: boolean): Promise<void> {
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
    while (sub.want !== sub.is && !this.#closed && this.#subs.get(channel) === sub) {
      const target = sub.want;
      const current = sub;
      const step = (async () => {
        const subscriber = await this.#getSubscriber();
        if (!subscriber) {
          current.want = current.is; // no subscriber: stop trying, polling remains
          return;
        }
        try {
          if (target)
            await (this.#sharded ? subscriber.sSubscribe(channel, this.#onMessage) : subscriber.subscribe(channel, this.#onMessage));
          else await (this.#sharded ? subscriber.sUnsubscribe(channel, this.#onMessage) : subscriber.unsubscribe(channel, this.#onMessage));
          current.is = target;
        } catch (error) {
          debug(
            'redis locker: %s of a release channel failed (waiters fall back to polling): %s',
            target ? 'subscribe' : 'unsubscribe',
            errorMessage(error),
          );
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
    if (this.#closed || !this.#client.isOpen) return undefined;
    if (!this.#subscriber) {
      if (typeof this.#client.duplicate !== 'function') return undefined; // no way to subscribe: waiters poll
      const subscriber = this.#client.duplicate() as Subscriber;
      // node-redis emits 'error' on every socket error; without a listener the
      // process would crash. It reconnects (and resubscribes) on its own.
      subscriber.on('error', (error) => debug('redis locker: subscriber error: %s', errorMessage(error)));
      // Waiting requests are kept alive by their own sockets: this one must
      // not keep a process alive whose application is done.
      subscriber.unref?.();
      this.#subscriber = subscriber;
      this.#unwatch ??= onClientClose(this.#client, () => void this.#dropSubscriber());
      this.#subscriberReady = subscriber.connect().then(
        () => true,
        (error: unknown) => {
          debug(
            'redis locker: cannot open the subscriber connection (waiters poll; retried on the next contended acquire): %s',
            errorMessage(error),
          );
          subscriber.destroy();
          if (this.#subscriber === subscriber) this.#subscriber = undefined;
          return false;
        },
      );
    }
    const subscriber = this.#subscriber;
    return (await this.#subscriberReady) && !this.#closed && this.#subscriber === subscriber ? subscriber : undefined;
  }

  /**
   * Close the subscriber connection and forget every subscription (a later
   * contended acquire opens a new one, unless the locker is closed). Every step
   * is bounded: a connection still (re)connecting (new connections
   * black-holed) is destroyed at once, never awaited; a connected one gets
   * `closeTimeoutMs` to close gracefully (its pending UNSUBSCRIBEs may never
   * be answered), then is destroyed.
   */
  async #dropSubscriber(): Promise<void> {
    this.#unwatch?.();
    this.#unwatch = undefined;
    for (const sub of this.#subs.values()) if (sub.linger) clearTimeout(sub.linger);
    this.#subs.clear();
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (!subscriber) return;
    const ready = this.#subscriberReady;
    this.#subscriberReady = undefined;
    if (subscriber.isReady === true && subscriber.close) {
      const closed = await withDeadline(
        () => subscriber.close!(),
        this.#closeTimeoutMs,
        () => new Error('close timed out'),
      ).then(
        () => true,
        (error: unknown) => {
          debug('redis locker: the subscriber connection did not close gracefully (destroyed): %s', errorMessage(error));
          return false;
        },
      );
      if (closed) return;
    }
    destroyForGood(subscriber, ready);
  }
}

/** `destroy()` that never throws (the locker is closing either way). */
function destroyQuietly(subscriber: Subscriber): void {
  try {
    subscriber.destroy();
  } catch (error) {
    debug('redis locker: destroying the subscriber connection failed: %s', errorMessage(error));
  }
}

/**
 * Destroy `subscriber` now, and again if it turns out to be still connecting.
 * A node-redis cluster client destroyed while its `connect()` is still
 * discovering the slots (`CLUSTER SLOTS` on a root node in flight) destroys
 * the node clients it has so far (none), then the discovery resumes and
 * creates one per master: those were never destroyed and reconnected forever
 * to a server long gone, keeping the process alive. They announce
 * themselves (`node-connect`, or `node-reconnecting` when the node is down),
 * and the connect settles once they connected: each of those destroys the
 * cluster client again, which now finds them. Nothing here is awaited: the
 * locker's `close()` stays bounded.
 */
function destroyForGood(subscriber: Subscriber, connected: Promise<boolean> | undefined): void {
  destroyQuietly(subscriber);
  if (subscriber.once) {
    subscriber.once('node-connect', () => destroyQuietly(subscriber));
    subscriber.once('node-reconnecting', () => destroyQuietly(subscriber));
  }
  void connected?.then(() => destroyQuietly(subscriber));
}

// ---------------------------------------------------------------------------
// One close listener per client, however many lockers share it (no
// MaxListenersExceededWarning with many lockers on one client).

interface Emitter {
  on(event: string, listener: () => void): unknown;
  off(event: string, listener: () => void): unknown;
}
const closeCallbacks = new WeakMap<object, Set<() => void>>();

/**
 * Call `callback` when the application closes `client`: node-redis emits `end`
 * (single node) or `disconnect` (cluster) on `close()`, `quit()` and
 * `destroy()` only, never while reconnecting. Returns the unsubscribe.
 */
function onClientClose(client: object, callback: () => void): () => void {
  const emitter = client as Partial<Emitter>;
  if (typeof emitter.on !== 'function' || typeof emitter.off !== 'function') return () => {};
  let callbacks = closeCallbacks.get(client);
  if (!callbacks) {
    const set = new Set<() => void>();
    callbacks = set;
    closeCallbacks.set(client, set);
    const fire = (): void => {
      for (const fn of [...set]) fn();
    };
    emitter.on('end', fire);
    emitter.on('disconnect', fire);
  }
  callbacks.add(callback);
  const set = callbacks;
  return () => void set.delete(callback);
}
