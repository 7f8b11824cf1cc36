/**
 * CookieStore's in-process memory of destroyed sessions (logout, regenerate,
 * destroy). A sealed cookie stays valid until its sealed expiry, and a copy of
 * it (an older tab, a thief) would open again after a logout: this memory
 * refuses such copies in this process until that expiry.
 *
 * It holds only destroyed sessions: anonymous traffic, however much, never
 * pushes a logout out (the recent-writes window, which every save feeds, used
 * to). Bounded by bytes; when full the oldest revocation is forgotten first.
 */

/**
 * Bytes charged per remembered revocation besides its id. Measured on Node 20: a Map of
 * 43-character sids to `{ n, exp }` costs ~156 bytes per entry, so 80 + 2 × 43 = 166 over-counts a little.
 */
export const ENTRY_OVERHEAD_BYTES = 80;

/** What is remembered of a destroyed session. */
export interface Revocation {
  /** Generation of the destroy: cookies of the session with a lower generation are dead. */
  n: number;
  /** Newest sealed expiry known for the session, ms: after it every cookie of it is expired anyway. */
  exp: number;
}

/** Bytes one revocation of `sid` is charged: 2 per id character (UTF-16) + {@link ENTRY_OVERHEAD_BYTES}. */
export const revocationBytes = (sid: string): number => 2 * sid.length + ENTRY_OVERHEAD_BYTES;

export class Revocations {
  readonly #entries = new Map<string, Revocation>();
  #bytes = 0;

  constructor(readonly maxBytes: number) {}

  /** Bytes charged now (for tests and diagnostics). */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The revocation of `sid`, if any and not past its expiry. */
  get(sid: string, now: number): Revocation | undefined {
    const r = this.#entries.get(sid);
    if (r === undefined) return undefined;
    if (r.exp <= now) {
      this.#delete(sid, r);
      return undefined;
    }
    return r;
  }

  /** Remember that `sid` was destroyed at generation `n`; every cookie of it is expired by `exp`. */
  add(sid: string, n: number, exp: number, now: number): void {
    if (exp <= now) return; // its cookies are expired already: nothing to refuse
    const old = this.#entries.get(sid);
    if (old) {
      this.#delete(sid, old);
      n = Math.max(n, old.n);
      exp = Math.max(exp, old.exp);
    }
    const bytes = revocationBytes(sid);
    if (bytes > this.maxBytes) return;
    // Expired entries first (insertion order is roughly expiry order), then the oldest live ones.
    for (const [id, r] of this.#entries) {
      if (this.#bytes + bytes <= this.maxBytes && r.exp > now) break;
      this.#delete(id, r);
    }
    this.#entries.set(sid, { n, exp });
    this.#bytes += bytes;
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  #delete(sid: string, _r: Revocation): void {
    this.#entries.delete(sid);
    this.#bytes -= revocationBytes(sid);
  }
}
