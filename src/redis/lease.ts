/**
 * A held Redis lock: renewal, loss detection by the local monotonic clock, and
 * release (compare-and-delete).
 */
import { debuglog } from 'node:util';
import { LockLostError } from '../errors.js';
import { errorMessage } from '../util/format.js';
import type { VersionedStore } from '../contracts/store.js';
import type { Lease } from '../contracts/locker.js';
import type { RenewalClock } from './renewal.js';
import type { ScriptRunner } from './scripts.js';

const debug = debuglog('koa-locked-session');

/**
 * A lease of {@link RedisLocker}: the {@link Lease} contract plus `signal`
 * (aborted when the lease is known lost, so long work under the lock can stop
 * early) and the random `token` stored in the lock key.
 */
export interface RedisLease extends Lease {
  /** The locked key (the session key given to `acquire`). */
  readonly key: string;
  /** The Redis key holding the lock: `<prefix>{key}`. */
  readonly lockKey: string;
  /** The unique value of this lease in the lock key. */
  readonly token: string;
  /** Aborted (with a `LockLostError`) once the lease is known lost. */
  readonly signal: AbortSignal;
  /** Fenced, versioned view of the master (fast path: a RedisStore on the locker's client). */
  readonly store?: VersionedStore;
  /** @see Lease.releaseWithNextWrite */
  releaseWithNextWrite(): void;
}

/** The Redis keys of one locked session key. */
export interface LockKeys {
  /** The session key given to `acquire`. */
  readonly key: string;
  /** `<prefix>{key}`: holds the token of the lease. */
  readonly lock: string;
  /** `<lock>:waiters`: the ids of the lockers waiting for a wake-up, first come first (see scripts.ts). */
  readonly waiters: string;
  /** `<lock>:waiting`: set while any waiter of another process wants a wake-up (what 0.1.0's waiters set alone; see scripts.ts). */
  readonly waiting: string;
  /** `<lock>:released`: the wake-up channel. */
  readonly channel: string;
  /** `<lock>:applied`: the id of the last fenced write, for a replay of that write to find (see scripts.ts, FENCED). */
  readonly receipt: string;
}

/** What a lease needs of its locker. */
export interface LeaseHost {
  readonly leaseMs: number;
  readonly renewEveryMs: number;
  readonly maxLeaseMs: number;
  readonly scripts: ScriptRunner;
  /** Drives renewal; `undefined` when renewal is off. */
  readonly clock: RenewalClock | undefined;
  /** The lease no longer holds the lock (released, released by a write, or lost): wake the next local waiter. Called once. */
  ended(key: string): void;
  /** A lease was held past `maxLeaseMs` (the locker warns once). */
  outlived(): void;
}

/** The implementation of {@link RedisLease}, created by RedisLocker only (not exported from the package). */
export class HeldLease implements RedisLease {
  /** Set by the locker right after acquire on the fast path. */
  store?: VersionedStore;
  readonly token: string;
  readonly keys: LockKeys;
  readonly #host: LeaseHost;
  /** Created on first use of {@link signal} (most leases never need one). */
  #abort: AbortController | undefined;
  #lost: LockLostError | undefined;
  /** Until when (performance.now()) the lease is surely still ours: last confirmed PX start + lease − drift. */
  #validUntil: number;
  /** When the next renewal is due (performance.now()). */
  #renewAt: number;
  /** Renewal off and someone holds the signal: a timer at `#validUntil` aborts it on time. */
  #watchdog: NodeJS.Timeout | undefined;
  #renewing = false;
  #released: Promise<void> | undefined;
  /** The end of the lease's maximum life (performance.now()): `maxLeaseMs` after the acquire was sent. */
  readonly #endsAt: number;
  /** The last renewal was cut short to end at `#endsAt`: the lease runs out by its maximum life. */
  #final = false;
  /** The host was told this lease ended. */
  #ended = false;
  /** Set by {@link releaseWithNextWrite}; taken by the fenced store's next write. */
  #releaseOnWrite = false;

  constructor(host: LeaseHost, keys: LockKeys, token: string, sentAt: number) {
    this.#host = host;
    this.keys = keys;
    this.token = token;
    this.#endsAt = sentAt + host.maxLeaseMs;
    this.#validUntil = this.#until(sentAt, host.leaseMs);
    this.#renewAt = sentAt + host.renewEveryMs;
    host.clock?.add(this);
  }

  get key(): string {
    return this.keys.key;
  }

  get lockKey(): string {
    return this.keys.lock;
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

  get signal(): AbortSignal {
    if (!this.#abort) {
      this.#abort = new AbortController();
      if (!this.#host.clock) this.#watch();
    }
    if (this.lost && !this.#abort.signal.aborted) this.#abort.abort(this.#lost);
    return this.#abort.signal;
  }

  /** The lease is gone (a renewal or fenced write found another token, or it ran out): refuse saves, abort the signal. */
  markLost(why: string): void {
    if (this.#lost) return;
    this.#lost = new LockLostError(`koa-locked-session: the session lock lease was lost (${why}); nothing will be saved`);
    debug('redis locker: a lease was lost (%s)', why);
    this.#stop();
    this.#end();
    this.#abort?.abort(this.#lost);
  }

  /** A tick of the locker's renewal clock. */
  tick(now: number): void {
    if (this.lost) return; // `lost` also checks the clock
    if (now >= this.#renewAt) void this.#renew(now);
  }

  releaseWithNextWrite(): void {
    if (this.store) this.#releaseOnWrite = true;
  }

  /** Whether the next fenced write also releases the lock (asked once per write). */
  takeReleaseOnWrite(): boolean {
    const releasing = this.#releaseOnWrite;
    this.#releaseOnWrite = false;
    return releasing;
  }

  /** The fenced store's last write released the lock in the same script. */
  releasedByWrite(): void {
    if (this.#released) return;
    this.#stop();
    this.#released = Promise.resolve();
    this.#end();
  }

  /**
   * Compare-and-delete the lock and wake the waiters. Idempotent; never rejects
   * (if Redis cannot be reached the lock simply expires after `leaseMs`). While
   * the client is reconnecting, the release is queued and not awaited.
   */
  release(): Promise<void> {
    this.#released ??= (async () => {
      this.#stop();
      const { scripts } = this.#host;
      const { lock, waiters, waiting, channel } = this.keys;
      // The next local waiter tries once this has run (it would find the lock still held before).
      const command = scripts.run('release', [lock, waiters, waiting], [this.token, scripts.publishCommand, channel]).then(
        () => this.#end(),
        (error: unknown) => {
          debug('redis locker: a release failed (the lock expires by itself): %s', errorMessage(error));
          this.#end();
        },
      );
      if (scripts.connected) await command;
    })();
    return this.#released;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }

  /** Held for `maxLeaseMs`: stop renewing, report the lease lost, warn once. The lock expires in Redis by `#endsAt`. */
  #outlived(): void {
    if (this.#lost) return;
    this.markLost(`held longer than maxLeaseMs, ${this.#host.maxLeaseMs} ms`);
    this.#host.outlived();
  }

  async #renew(sentAt: number): Promise<void> {
    if (this.#renewing || this.#lost || this.#released) return; // one renewal in flight at a time
    const { leaseMs, renewEveryMs, scripts } = this.#host;
    // Never renew past the maximum life: the last renewal is cut short so that
    // the lock expires in Redis when the lease ends here.
    const px = Math.min(leaseMs, Math.floor(this.#endsAt - sentAt));
    if (px <= 0) {
      this.#outlived();
      return;
    }
    this.#renewing = true;
    this.#renewAt = sentAt + renewEveryMs;
    try {
      const ok = await scripts.run('renew', [this.keys.lock], [this.token, String(px)]);
      if (this.#released || this.#lost) return;
      if (Number(ok) === 1) {
        this.#validUntil = this.#until(sentAt, px);
        if (px < leaseMs) this.#final = true;
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

  /** Renewal off: abort the signal when the lease runs out. */
  #watch(): void {
    this.#watchdog = setTimeout(
      () => {
        // Timers may fire a hair early: look again later if so.
        if (!this.lost && !this.#released) this.#watch();
        else if (this.#lost) this.#abort?.abort(this.#lost);
      },
      Math.max(1, Math.ceil(this.#validUntil - performance.now())),
    );
    this.#watchdog.unref();
  }

  /** Stop renewing and watching. */
  #stop(): void {
    this.#host.clock?.delete(this);
    clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#host.ended(this.keys.key);
  }
}
