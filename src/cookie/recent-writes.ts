/**
 * The in-process memory of recent CookieStore writes: a request that proves it
 * holds a session id (its cookie carried it) sees a newer state written by a
 * concurrent request of the same browser before that browser got the new cookie.
 */

/** One session state as this request or this process knows it. `value === undefined` is a tombstone. */
export interface Rec {
  /** Generation: incremented by every write of this session (set, touch, destroy) to tell newer from older. */
  n: number;
  value: string | undefined;
  /** Absolute expiry, ms. */
  exp: number;
  session: boolean;
  /** The sealed cookie value that carries this state (for re-sending it); absent for tombstones. */
  sealed?: string;
}

/** Latest write per session id in this process, for a short window; LRU-bounded by write order. */
export class RecentWrites {
  readonly #entries = new Map<string, { rec: Rec; at: number }>();
  constructor(
    readonly max: number,
    readonly windowMs: number,
  ) {}

  get(key: string, now: number): Rec | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (now - e.at > this.windowMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.rec;
  }

  put(key: string, rec: Rec, now: number): void {
    const current = this.#entries.get(key);
    if (current && current.rec.n > rec.n && now - current.at <= this.windowMs) return; // never move backwards
    this.#entries.delete(key);
    this.#entries.set(key, { rec, at: now });
    while (this.#entries.size > this.max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  clear(): void {
    this.#entries.clear();
  }
}
