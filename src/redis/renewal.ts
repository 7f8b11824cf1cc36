/**
 * One timer for every lease of a locker: renewing (and watching the clock of)
 * each held lease costs a Set insert and delete, not a `setInterval` per lease.
 */

/** A lease as the clock sees it. */
export interface Renewable {
  /** Called on every tick with `performance.now()`; renews when due, notices a lease that ran out. */
  tick(now: number): void;
}

/**
 * Ticks every `periodMs` while at least one lease is held; unref'd (it never
 * keeps the process alive), and stopped by the first tick that finds no lease,
 * so a busy process does not start a timer per request and an idle one has none.
 */
export class RenewalClock {
  readonly #leases = new Set<Renewable>();
  readonly #periodMs: number;
  #timer: NodeJS.Timeout | undefined;

  /**
   * A lease is renewed by the first tick at least `renewEveryMs` after its last
   * renewal, so up to one period late: a period of half the margin
   * (`leaseMs - renewEveryMs`, or `renewEveryMs` if smaller) keeps every renewal
   * well inside the lease.
   */
  constructor(renewEveryMs: number, leaseMs: number) {
    this.#periodMs = Math.max(1, Math.floor(Math.min(renewEveryMs, leaseMs - renewEveryMs) / 2));
  }

  add(lease: Renewable): void {
    this.#leases.add(lease);
    if (this.#timer) return;
    this.#timer = setInterval(() => this.#tick(), this.#periodMs);
    this.#timer.unref();
  }

  delete(lease: Renewable): void {
    this.#leases.delete(lease);
  }

  #tick(): void {
    if (this.#leases.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const now = performance.now();
    for (const lease of this.#leases) lease.tick(now);
  }
}
