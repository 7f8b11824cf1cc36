import { createHmac, timingSafeEqual } from 'node:crypto';

type Key = string | Buffer;
type Mac = (key: Key, data: string) => string;

/** Koa's cookie signatures (Keygrip): HMAC-SHA1, base64 made URL-safe, no padding. */
export const keygripMac: Mac = (key, data) =>
  createHmac('sha1', key).update(data).digest('base64').replace(/[/+=]/g, (c) => (c === '/' ? '_' : c === '+' ? '-' : ''));

/** Header sids: HMAC-SHA256, base64url. */
export const sha256Mac: Mac = (key, data) => createHmac('sha256', key).update(data).digest('base64url');

const MAX_ENTRIES = 10_000;

/**
 * Signs and verifies with a list of keys (the first signs, all verify), and
 * remembers the newest key's signature of recent values. An HMAC is a pure
 * function of key and data, and `createHmac` was a fifth of a request's CPU
 * (one to verify the incoming sid, one to sign it again on every save):
 * repeat visitors now cost a Map lookup. Bounded; reset when the keys change.
 */
export class Signer {
  #keys: readonly Key[] | undefined;
  readonly #cache = new Map<string, string>();

  constructor(private readonly mac: Mac) {}

  /** The signature of `data` under the newest key. */
  sign(keys: readonly Key[], data: string): string {
    this.#use(keys);
    let sig = this.#cache.get(data);
    if (sig === undefined) {
      sig = this.mac(keys[0]!, data);
      if (this.#cache.size >= MAX_ENTRIES) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(data, sig);
    }
    return sig;
  }

  /** Index of the key that made `sig` for `data` (0 = the newest), or -1. Constant-time comparisons. */
  verify(keys: readonly Key[], data: string, sig: string): number {
    if (keys.length === 0) return -1;
    if (same(this.sign(keys, data), sig)) return 0;
    for (let i = 1; i < keys.length; i++) if (same(this.mac(keys[i]!, data), sig)) return i;
    return -1;
  }

  #use(keys: readonly Key[]): void {
    if (this.#keys === keys) return;
    // New keys (or keys changed in place: compare by value), new signatures.
    if (!this.#keys || this.#keys.length !== keys.length || this.#keys.some((k, i) => k !== keys[i])) this.#cache.clear();
    this.#keys = [...keys];
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
