/**
 * Lock waits of one app process, from the library's diagnostics channel
 * (`koa-locked-session:lock`, `CHANNELS.lock`): every acquisition publishes
 * `{ waitMs, outcome }`, where `waitMs` runs from the scope asking for the
 * lock to holding it, so it includes the wait in this process' queue of the
 * session as well as the wait at the locker (src/core/session-lock.ts acquire()).
 *
 * Kept per process and reported per process, so a process that starves
 * behind the others shows as one long maximum among short ones. Recorded only
 * when the harness asks (`BENCH_LOCK_WAITS=1`, hot-session scenarios): a
 * subscriber makes every acquire take two clock reads and a publish.
 *
 * It also counts the turns of the lock (`lib/lock-turns.ts`) when the variant
 * hands it the locker it passes to session().
 *
 * This file never imports the library: the variant passes the channel name.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { countTurns } from './lock-turns.js';
import type { LockWaits } from './types.js';

/** The fields of the library's lock message this recorder reads. */
interface LockMessage {
  waitMs: number;
  outcome: 'acquired' | 'timeout' | 'error';
}

export class LockWaitRecorder {
  /** Waits in µs (a histogram records integers ≥ 1): max and p99 at no cost per request beyond one record(). */
  #histogram: RecordableHistogram = createHistogram();
  #timeouts = 0;
  #errors = 0;
  /** Leases taken from the locker (`undefined`: no locker handed over, e.g. session()'s default MemoryLocker). */
  #turns: number | undefined;
  readonly #listener = (message: unknown): void => {
    const { waitMs, outcome } = message as LockMessage;
    this.#histogram.record(Math.max(1, Math.round(waitMs * 1000)));
    if (outcome === 'timeout') this.#timeouts++;
    else if (outcome === 'error') this.#errors++;
  };

  constructor(private readonly channel: string) {
    diagnostics_channel.subscribe(channel, this.#listener);
  }

  /** Count the turns of `locker` too (the locker this process' session() was given). */
  countTurnsOf(locker: Parameters<typeof countTurns>[0]): void {
    this.#turns = 0;
    countTurns(locker, () => {
      this.#turns!++;
    });
  }

  /** Start a new window (the harness resets right before the measured run). */
  reset(): void {
    this.#histogram.reset();
    this.#timeouts = 0;
    this.#errors = 0;
    if (this.#turns !== undefined) this.#turns = 0;
  }

  /** The waits since the last reset. */
  snapshot(): LockWaits {
    const h = this.#histogram;
    const count = h.count;
    return {
      pid: process.pid,
      count,
      timeouts: this.#timeouts,
      errors: this.#errors,
      maxMs: count ? h.max / 1000 : 0,
      p99Ms: count ? h.percentile(99) / 1000 : 0,
      ...(this.#turns !== undefined ? { turns: this.#turns } : {}),
    };
  }

  close(): void {
    diagnostics_channel.unsubscribe(this.channel, this.#listener);
  }
}
