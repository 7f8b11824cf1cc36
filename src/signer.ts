import { createHmac, timingSafeEqual } from 'node:crypto';

type Key = string | Buffer;
type Mac = (key: Key, data: string) => string;

/** Koa's cookie signatures (Keygrip): HMAC-SHA1, base64 made URL-safe, no padding. */
export const keygripMac: Mac = (key, data) =>
  createHmac('sha1', key).update(data).digest('base64').replace(/[/+=]/g, (c) => (c === '/' ? '_' : c === '+' ? '-' : ''));

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
  readonly #cache = new Map<string, string>();
  #chars = 0;

  constructor(private readonly mac: Mac) {}

  /** What the cache holds (for tests and diagnostics). */
  get cacheStats(): { entries: number; chars: number } {
    return { entries: this.#cache.size, chars: this.#chars };
  }

  /** The signature of `data` under the newest key (remembered: the server signs only sids it issued). */
  sign(keys: readonly Key[], data: string): string {
    this.#use(keys);
    let sig = this.#cache.get(data);
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
    const known = this.#cache.get(data);
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

  #remember(data: string, sig: string): void {
    if (data.length > MAX_DATA_CHARS) return;
    const chars = data.length + sig.length;
    while (this.#cache.size > 0 && (this.#cache.size >= MAX_ENTRIES || this.#chars + chars > MAX_CHARS)) {
      const [oldData, oldSig] = this.#cache.entries().next().value!;
      this.#cache.delete(oldData);
      this.#chars -= oldData.length + oldSig.length;
    }
    this.#cache.set(data, sig);
    this.#chars += chars;
  }

  #use(keys: readonly Key[]): void {
    if (this.#keys === keys) return;
    // New keys (or keys changed in place: compare by value), new signatures.
    if (!this.#keys || this.#keys.length !== keys.length || this.#keys.some((k, i) => k !== keys[i])) {
      this.#cache.clear();
      this.#chars = 0;
    }
    this.#keys = [...keys];
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
