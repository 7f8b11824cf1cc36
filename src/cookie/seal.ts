/**
 * Sealing: turn a string into a tamper-proof (and by default encrypted) token
 * that is safe to put in a cookie, and back. Pure functions over a {@link Keyring};
 * `CookieStore` only adapts them to Koa's cookies.
 *
 * Format (version 1), every part base64url without padding, joined by `.`:
 *
 * ```
 * encrypted:   v1.e.<kid>.<iv>.<ciphertext>.<tag>     AES-256-GCM, 12-byte random IV, 16-byte tag
 * signed only: v1.s.<kid>.<payload>.<mac>              payload readable, HMAC-SHA256 over the rest
 * ```
 *
 * - `kid` (4 chars) names the key that sealed the value, so opening goes straight
 *   to that key and can tell "sealed with a key we no longer have" (re-keyed)
 *   from "tampered". It is derived one-way from the key and reveals nothing about it.
 * - The header `v1.<mode>.<kid>` and the caller's `purpose` are authenticated
 *   (GCM additional data / inside the HMAC), so a value cannot be moved to another
 *   version, mode, key id or purpose (e.g. another cookie name) unnoticed.
 * - The authenticated plaintext is `<expiresAt>.<data>`: expiry (ms since epoch,
 *   `0` = none) lives inside the seal and is checked on open, so a client cannot
 *   extend it and a stale copy dies on time even if the browser keeps it.
 * - Each configured key is only input keying material: HKDF-SHA256 derives separate
 *   subkeys for encryption, MAC and key id (domain separation), so one secret is
 *   never used for two algorithms.
 *
 * Opening never throws on bad input: garbage, truncated, tampered, wrong version,
 * re-keyed and stale values give `{ ok: false, reason }`.
 *
 * No home-made crypto: only AES-256-GCM, HMAC-SHA256 and HKDF-SHA256 from
 * `node:crypto`, used the standard way. Not compressed before sealing: compressing
 * secrets next to attacker-influenced data leaks through the length (CRIME/BREACH).
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomFillSync, timingSafeEqual } from 'node:crypto';

/** A key as configured: a string of ≥ 32 characters or exactly 32 bytes. */
export type KeyInput = string | Uint8Array;

/** Key material derived from one configured key. Opaque; build it with {@link createKeyring}. */
export interface DerivedKey {
  /** 4-char base64url key id written into every value this key seals. */
  readonly kid: string;
  readonly encKey: Buffer;
  readonly macKey: Buffer;
}

/** Validated, derived keys; the first one seals, all of them open. */
export interface Keyring {
  readonly keys: readonly DerivedKey[];
}

/** Why {@link unseal} refused a value. Short, stable strings suitable for logs and `session:invalid`. */
export type UnsealFailure =
  | 'malformed' // not the shape of a sealed value at all (garbage, truncated, bad base64url)
  | 'version' // a well-formed value of a format version we do not read
  | 'mode' // encrypted value given to a signed-only reader, or the reverse
  | 'unknown-key' // sealed with a key that is no longer configured (re-keyed)
  | 'tampered' // authentication failed (wrong tag/MAC, changed bytes, other purpose)
  | 'expired' // authentic but past its expiry
  | 'too-large'; // longer than `maxLength`, refused before any work

export type UnsealResult =
  | {
      readonly ok: true;
      /** The original plaintext. */
      readonly value: string;
      /** Absolute expiry in ms since the epoch, `undefined` when sealed without one. */
      readonly expiresAt: number | undefined;
      /** Position in the keyring of the key that opened it: `> 0` means an older key (re-seal to rotate). */
      readonly keyIndex: number;
    }
  | { readonly ok: false; readonly reason: UnsealFailure };

/** Options of {@link seal}. */
export interface SealOptions {
  /**
   * Encrypt (AES-256-GCM) or only sign (HMAC-SHA256, content readable by whoever holds the value).
   * @default true
   */
  encrypt?: boolean;
  /** Time to live in ms from `now`; omit for a value that never expires by itself. */
  ttlMs?: number;
  /**
   * Context bound into the authentication, e.g. the cookie name: a value sealed
   * for one purpose does not open for another.
   * @default ''
   */
  purpose?: string;
  /** Current time in ms (tests inject a clock). @default Date.now() */
  now?: number;
}

/** Options of {@link unseal}. */
export interface UnsealOptions {
  /** Expected mode; a value of the other mode is refused with `'mode'`. @default true */
  encrypt?: boolean;
  /** Must equal the `purpose` given to {@link seal}. @default '' */
  purpose?: string;
  /** Current time in ms, compared with the sealed expiry. @default Date.now() */
  now?: number;
  /**
   * Longest input looked at; anything longer is refused before decoding (a cheap
   * guard: cookies are ≤ 4 KiB, request headers ≤ 16 KiB in Node).
   * @default 16_384
   */
  maxLength?: number;
}

const VERSION = 'v1';
const IV_BYTES = 12; // the GCM nonce size NIST SP 800-38D recommends; random per seal
const TAG_BYTES = 16; // full-length tag: never accept a truncated one
const MAC_BYTES = 32;
const KID_BYTES = 3; // 4 base64url chars; a collision only means trying two keys
const MIN_STRING_KEY = 32;
const RAW_KEY_BYTES = 32;
const B64URL = /^[A-Za-z0-9_-]*$/;
const HKDF_SALT = Buffer.from('koa-locked-session seal', 'utf8');
// Keyrings are branded by identity, not shape: an options-like `{ keys: [...] }` must not pass for one.
const KEYRINGS = new WeakSet<object>();

const KEY_HINT = 'generate one with `openssl rand -base64 32` (or `node -e "console.log(crypto.randomBytes(32).toString(\'base64\'))"`)';

/**
 * Validate and derive keys once (HKDF is cheap, but a keyring lets a store do it
 * at construction and fail early). The first key seals; every key opens.
 *
 * Rules: a string key must be at least 32 characters and is used as UTF-8 bytes
 * (HKDF does not add entropy: use random strings, not passwords); a byte key
 * (Buffer/Uint8Array) must be exactly 32 bytes (the size of an AES-256 key; any
 * other size is almost always a decoding mistake).
 *
 * @throws TypeError naming the key's position and the fix.
 * @example createKeyring([process.env.SESSION_KEY!, process.env.SESSION_KEY_OLD!])
 */
export function createKeyring(keys: readonly KeyInput[] | Keyring, optionName = 'keys'): Keyring {
  if (isKeyring(keys)) return keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new TypeError(
      `koa-locked-session: Expected \`${optionName}\` to be a non-empty array of secret keys, got \`${describe(keys)}\`; ${KEY_HINT}`,
    );
  }
  const derived = keys.map((key: unknown, i): DerivedKey => {
    let ikm: Buffer;
    if (typeof key === 'string') {
      if (key.length < MIN_STRING_KEY) {
        throw new TypeError(
          `koa-locked-session: Expected \`${optionName}[${i}]\` to be a string of at least ${MIN_STRING_KEY} characters, got ${key.length}; ${KEY_HINT}`,
        );
      }
      ikm = Buffer.from(key, 'utf8');
    } else if (key instanceof Uint8Array) {
      if (key.byteLength !== RAW_KEY_BYTES) {
        throw new TypeError(
          `koa-locked-session: Expected \`${optionName}[${i}]\` to be exactly ${RAW_KEY_BYTES} bytes, got ${key.byteLength}; ${KEY_HINT} and pass it as a string, or Buffer.from(it, 'base64')`,
        );
      }
      ikm = Buffer.from(key); // copy: a caller zeroing or reusing its buffer cannot change our keys
    } else {
      throw new TypeError(
        `koa-locked-session: Expected \`${optionName}[${i}]\` to be a string or a Buffer, got \`${describe(key)}\`; ${KEY_HINT}`,
      );
    }
    return Object.freeze({
      kid: derive(ikm, 'kid', KID_BYTES).toString('base64url'),
      encKey: derive(ikm, 'aes-256-gcm', 32),
      macKey: derive(ikm, 'hmac-sha256', 32),
    });
  });
  const ring: Keyring = Object.freeze({ keys: Object.freeze(derived) });
  KEYRINGS.add(ring);
  return ring;
}

/**
 * Random IVs drawn from a pool filled 256 at a time: one CSPRNG call per 256
 * seals instead of one per seal (a measurable share of a CookieStore save).
 * Every IV is still 12 fresh random bytes, used once (Node's randomUUID
 * caches its entropy the same way).
 */
const ivPool = Buffer.alloc(IV_BYTES * 256);
let ivOffset = ivPool.length;

function nextIv(): Buffer {
  if (ivOffset === ivPool.length) {
    randomFillSync(ivPool);
    ivOffset = 0;
  }
  // A view, not a copy: seal() uses it synchronously and never lets it escape, so no refill can reach it in use.
  const iv = ivPool.subarray(ivOffset, ivOffset + IV_BYTES);
  ivOffset += IV_BYTES;
  return iv;
}

/**
 * Seal `plaintext` with the first key of `keys`.
 *
 * @returns `v1.e.…` (encrypted, default) or `v1.s.…` (signed only), cookie-safe.
 * @example seal('{"count":1}', keyring, { ttlMs: 86_400_000, purpose: 'session' })
 */
export function seal(plaintext: string, keys: Keyring | readonly KeyInput[], opts: SealOptions = {}): string {
  const ring = createKeyring(keys);
  const key = ring.keys[0]!; // createKeyring guarantees at least one
  const { encrypt = true, purpose = '', ttlMs } = opts;
  if (typeof plaintext !== 'string') throw new TypeError(`koa-locked-session: seal() expects a string, got \`${describe(plaintext)}\``);
  let expiresAt = 0;
  if (ttlMs !== undefined) {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0)
      throw new TypeError(`koa-locked-session: Expected \`ttlMs\` to be a positive number of ms, got \`${String(ttlMs)}\``);
    expiresAt = Math.ceil((opts.now ?? Date.now()) + ttlMs);
  }
  const body = Buffer.from(`${expiresAt}.${plaintext}`, 'utf8');

  if (encrypt) {
    const header = `${VERSION}.e.${key.kid}`;
    const iv = nextIv();
    const cipher = createCipheriv('aes-256-gcm', key.encKey, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(header, purpose));
    const ciphertext = Buffer.concat([cipher.update(body), cipher.final()]);
    const tag = cipher.getAuthTag();
    return `${header}.${iv.toString('base64url')}.${ciphertext.toString('base64url')}.${tag.toString('base64url')}`;
  }
  const signedPart = `${VERSION}.s.${key.kid}.${body.toString('base64url')}`;
  return `${signedPart}.${mac(key.macKey, signedPart, purpose).toString('base64url')}`;
}

/**
 * Open a value made by {@link seal}. Never throws on bad input.
 *
 * @example
 * const r = unseal(cookie, keyring, { purpose: 'session' });
 * if (r.ok) use(r.value); else log(r.reason);
 */
export function unseal(sealed: unknown, keys: Keyring | readonly KeyInput[], opts: UnsealOptions = {}): UnsealResult {
  const ring = createKeyring(keys); // a config error (bad keys) does throw: that is the app's bug, not the client's
  const { encrypt = true, purpose = '', maxLength = 16_384 } = opts;
  if (typeof sealed !== 'string' || sealed.length === 0) return fail('malformed');
  if (sealed.length > maxLength) return fail('too-large');

  const parts = sealed.split('.');
  if (parts[0] !== VERSION) {
    // Say 'version' only for something that looks like a versioned seal (`v2.…`), 'malformed' for garbage.
    return fail(/^v\d+$/.test(parts[0] ?? '') && parts.length >= 4 ? 'version' : 'malformed');
  }
  const mode = parts[1];
  if (mode !== 'e' && mode !== 's') return fail('malformed');
  if ((mode === 'e') !== encrypt) return fail('mode');
  if (parts.length !== (mode === 'e' ? 6 : 5)) return fail('malformed');
  // Every part must be canonical base64url: one text per value, so a value cannot be re-spelled.
  const bytes: Buffer[] = [];
  for (const part of parts.slice(2)) {
    const b = decode(part);
    if (!b) return fail('malformed');
    bytes.push(b);
  }
  const kid = parts[2]!;
  if (bytes[0]!.length !== KID_BYTES) return fail('malformed');

  // Usually one candidate; a kid collision between two configured keys just means trying both.
  const candidates: number[] = [];
  ring.keys.forEach((k, i) => {
    if (k.kid === kid) candidates.push(i);
  });
  if (candidates.length === 0) return fail('unknown-key');

  let body: Buffer | undefined;
  let keyIndex = -1;
  if (mode === 'e') {
    const [, iv, ciphertext, tag] = bytes as [Buffer, Buffer, Buffer, Buffer];
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) return fail('malformed');
    const header = `${VERSION}.e.${kid}`;
    for (const i of candidates) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', ring.keys[i]!.encKey, iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(aad(header, purpose));
        decipher.setAuthTag(tag);
        body = Buffer.concat([decipher.update(ciphertext), decipher.final()]); // final() throws when the tag does not match
        keyIndex = i;
        break;
      } catch {
        // try the next candidate; none left → tampered
      }
    }
  } else {
    const [, payload, macBytes] = bytes as [Buffer, Buffer, Buffer];
    if (macBytes.length !== MAC_BYTES) return fail('malformed');
    const signedPart = sealed.slice(0, sealed.lastIndexOf('.')); // the first four parts, as sealed
    for (const i of candidates) {
      if (timingSafeEqual(mac(ring.keys[i]!.macKey, signedPart, purpose), macBytes)) {
        body = payload;
        keyIndex = i;
        break;
      }
    }
  }
  if (!body) return fail('tampered');

  // Authentic from here on; still parse defensively (a future writer bug must not crash a request).
  const text = body.toString('utf8');
  const dot = text.indexOf('.');
  const expText = dot > 0 ? text.slice(0, dot) : '';
  if (!/^\d{1,16}$/.test(expText)) return fail('malformed');
  const expiresAt = Number(expText);
  if (expiresAt !== 0 && expiresAt <= (opts.now ?? Date.now())) return fail('expired');
  return { ok: true, value: text.slice(dot + 1), expiresAt: expiresAt === 0 ? undefined : expiresAt, keyIndex };
}

/** True when `value` is a keyring made by {@link createKeyring}. */
export function isKeyring(value: unknown): value is Keyring {
  return typeof value === 'object' && value !== null && KEYRINGS.has(value);
}

function derive(ikm: Buffer, purpose: string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, HKDF_SALT, `koa-locked-session/v1/${purpose}`, length));
}

// NUL cannot occur in the header (base64url and dots), so header and purpose cannot be confused.
function aad(header: string, purpose: string): Buffer {
  return Buffer.from(`${header}\0${purpose}`, 'utf8');
}

function mac(key: Buffer, signedPart: string, purpose: string): Buffer {
  return createHmac('sha256', key).update(`${signedPart}\0${purpose}`, 'utf8').digest();
}

/**
 * Strict base64url: right alphabet and canonical (the one text that encodes these
 * bytes), else undefined. Canonical is checked on the text instead of by
 * re-encoding the bytes (a second pass over the whole cookie): no padding, a
 * length that is not 1 mod 4, and the unused low bits of a last partial group zero.
 */
function decode(part: string): Buffer | undefined {
  if (!B64URL.test(part)) return undefined;
  const rest = part.length % 4;
  if (rest === 1) return undefined;
  if (rest !== 0 && (sextet(part.charCodeAt(part.length - 1)) & (rest === 2 ? 0x0f : 0x03)) !== 0) return undefined;
  return Buffer.from(part, 'base64url');
}

/** The 6-bit value of a base64url character (already checked against the alphabet). */
function sextet(c: number): number {
  if (c >= 97) return c - 71; // a-z: 26-51
  if (c >= 65) return c === 95 ? 63 : c - 65; // A-Z: 0-25, '_' (95): 63
  if (c >= 48) return c + 4; // 0-9: 52-61
  return 62; // '-'
}

function fail(reason: UnsealFailure): UnsealResult {
  return { ok: false, reason };
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `string of length ${value.length}`; // never print a secret
  if (value === null) return 'null';
  if (Array.isArray(value)) return `array of length ${value.length}`;
  return typeof value;
}
