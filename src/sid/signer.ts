import { createHmac, timingSafeEqual } from 'node:crypto';

type Key = string | Buffer;
type Mac = (key: Key, data: string) => string;

/** Koa's cookie signatures (Keygrip): HMAC-SHA1, base64 made URL-safe, no padding. */
export const keygripMac: Mac = (key, data) =>
  createHmac('sha1', key)
    .update(data)
    .digest('base64')
    .replace(/[/+=]/g, (c) => (c === '/' ? '_' : c === '+' ? '-' : ''));

/** Header sids: HMAC-SHA256, base64url. */
export const sha256Mac: Mac = (key, data) => createHmac('sha256', key).update(data).digest('base64url');

/** Most remembered signatures. */
export const MAX_ENTRIES = 10_000;
/** Most characters (data + signature) the remembered signatures may hold together: ~2 MB of UTF-16. */
export const MAX_CHARS = 1_000_000;
/** Longest data worth remembering: a cookie name plus the longest valid sid, with room to spare. */
const MAX_DATA_CHARS = 512;

/**
 * Signs and verifies with a list of keys (the first signs, all verify), and
 * remembers the newest key's signature of recent values. An HMAC is a pure
 * function of key and data, and `createHmac` was a fifth of a request's CPU
 * (one to verify the incoming sid, one to sign it again on every save):
 * repeat visitors now cost a Map lookup. Reset when the keys change.
 *
 * Only what the server signed itself, or a client proved it holds (a signature
 * that verifies), is remembered, and only when short: junk cookies (a 15 KB
 * unsigned sid, random ids with forged signatures) cost an HMAC and leave
 * nothing behind. Bounded by entries AND characters.
 */
export class Signer {
  #keys: readonly Key[] | undefined;
  /**
   * Two generations instead of an LRU: inserts go to `#young`; when it is full
   * it becomes `#old` (the previous old generation is dropped whole) and a hit
   * in `#old` is promoted. Every operation is O(1): evicting the oldest entry
   * of a full 10,000-entry Map on every insert cost ~5 µs per new session.
   */
  #young = new Map<string, string>();
  #old = new Map<string, string>();
  #youngChars = 0;
  #oldChars = 0;

  constructor(private readonly mac: Mac) {}

  /** What the cache holds (for tests and diagnostics). */
  get cacheStats(): { entries: number; chars: number } {
    return { entries: this.#young.size + this.#old.size, chars: this.#youngChars + this.#oldChars };
  }

  /** The signature of `data` under the newest key (remembered: the server signs only sids it issued). */
  sign(keys: readonly Key[], data: string): string {
    this.#use(keys);
    let sig = this.#lookup(data);
    if (sig === undefined) {
      sig = this.mac(keys[0]!, data);
      this.#remember(data, sig);
    }
    return sig;
  }

  /** Index of the key that made `sig` for `data` (0 = the newest), or -1. Constant-time comparisons. */
  verify(keys: readonly Key[], data: string, sig: string): number {
    if (keys.length === 0) return -1;
    this.#use(keys);
    const known = this.#lookup(data);
    if (known !== undefined) {
      if (same(known, sig)) return 0;
    } else {
      const fresh = this.mac(keys[0]!, data);
      if (same(fresh, sig)) {
        this.#remember(data, fresh); // proven: the client holds a signature we made
        return 0;
      }
    }
    for (let i = 1; i < keys.length; i++) if (same(this.mac(keys[i]!, data), sig)) return i;
    return -1;
  }

  #lookup(data: string): string | undefined {
    const sig = this.#young.get(data);
    if (sig !== undefined) return sig;
    const old = this.#old.get(data);
    if (old !== undefined) this.#remember(data, old); // still in use: survives the next generation change
    return old;
  }

  #remember(data: string, sig: string): void {
    if (data.length > MAX_DATA_CHARS) return;
    const chars = data.length + sig.length;
    // Each generation holds at most half the bounds, so both together stay within them.
    if (this.#young.size >= MAX_ENTRIES / 2 || this.#youngChars + chars > MAX_CHARS / 2) {
      this.#old = this.#young;
      this.#oldChars = this.#youngChars;
      this.#young = new Map();
      this.#youngChars = 0;
    }
    this.#young.set(data, sig);
    this.#youngChars += chars;
  }

  #use(keys: readonly Key[]): void {
    // Compared by value (app.keys may be replaced or changed in place), without allocating:
    // the copy is taken only when the keys did change, not on every sign and verify.
    const known = this.#keys;
    if (known !== undefined && known.length === keys.length) {
      let same = true;
      for (let i = 0; i < keys.length; i++) if (known[i] !== keys[i]) same = false;
      if (same) return;
    }
    // New keys, new signatures.
    this.#young.clear();
    this.#old.clear();
    this.#youngChars = 0;
    this.#oldChars = 0;
    this.#keys = [...keys];
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
