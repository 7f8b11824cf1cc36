/**
 * A CookieStore bound to one request (its cookie in, its Set-Cookie out), and
 * what the core tells it through the one seam by which the middleware knows a
 * request-bound store (`RequestStore.bindRequest`, src/contracts/store.ts).
 */
import { debuglog } from 'node:util';
import type { Context } from 'koa';
import { cookieSetAttributes, type CookieAttributes } from '../sid/cookie-attributes.js';
import { SetCookieWriter } from '../sid/set-cookie.js';
import { CookieTooLargeError, StoreError } from '../errors.js';
import { seal, unseal, type Keyring } from './seal.js';
import { isValidSid } from '../sid/sid.js';
import type { RecentWrites, Rec } from './recent-writes.js';
import type { Revocations } from './revocations.js';
import type { BoundRequestStore, RequestWriteOptions } from '../contracts/store.js';

const debug = debuglog('koa-locked-session');

/** The store's name in logs, events and errors. */
export const name = 'cookie';

/**
 * What the middleware tells `CookieStore.bindRequest` about the request's
 * session. Only `onInvalid` is required by the `RequestStore` contract.
 */
export interface CookieBindHooks {
  /** Called once, with a short reason, when the request brought a cookie that does not open. */
  onInvalid(reason: string): void;
  /**
   * The middleware's `cookie.maxAge`: `'session'` makes new sessions browser-session cookies;
   * a number caps the cookie's Max-Age (which is otherwise the ttl, the seal's own expiry).
   * @default the ttl of each save
   */
  maxAge?: number | 'session';
}

/**
 * Extra arguments of {@link BoundCookieStore.set} and `touch`: `sessionCookie` `true` writes a
 * browser-session cookie (no Max-Age/Expires; the sealed expiry still applies), `false` a
 * persistent cookie with Max-Age = ttl; omitted keeps what the session's cookie already was
 * (persistent for a new session), so later saves do not undo `remember: false`.
 */
export type CookieSetOptions = RequestWriteOptions;

/** The cookie attributes a CookieStore writes, with defaults applied. */
export type ResolvedCookieStoreCookie = CookieAttributes;

// Header framing inside the seal: `{"id":…,"n":…,"s":1}\n<record>`. JSON.stringify never emits a raw
// newline, and keeping the record outside the JSON avoids escaping it a second time (cookie bytes are scarce).
const FRAME_SEP = '\n';
// Size of the longest `expires=` attribute Koa's cookies module writes; counted even for browser-session cookies.
const EXPIRES_ATTR = '; expires=Thu, 01 Jan 1970 00:00:00 GMT';

/** What a bound store shares with its CookieStore. */
export interface BoundConfig {
  keyring: Keyring;
  encrypt: boolean;
  maxBytes: number;
  cookie: Readonly<ResolvedCookieStoreCookie>;
  recent: RecentWrites | undefined;
  revoked: Revocations | undefined;
  now: () => number;
}

/**
 * A `CookieStore` bound to one request: reads the request's cookie, writes
 * the response's. Every failure to open the cookie (garbage, tampered, re-keyed,
 * expired…) is reported once through `onInvalid(reason)` and the session counts
 * as absent; nothing a client sends makes it throw.
 */
export class BoundCookieStore implements BoundRequestStore {
  readonly name = name;
  /** Every call is synchronous work on this request's cookie (no I/O): the session adds no deadline to it. */
  readonly timeoutMs = 0;
  readonly #ctx: Context;
  readonly #hooks: CookieBindHooks;
  readonly #c: BoundConfig;
  #opened = false;
  #incomingSid: string | undefined;
  /**
   * What this request knows per session id: the state its cookie carried and
   * every state it wrote since. Holding an id here is the proof of possession
   * that lets the request see the in-process recent writes of that id.
   */
  readonly #known = new Map<string, Rec>();
  /** The id the client will hold after this response (the incoming one until a write changes it). */
  #cookieSid: string | undefined;
  /** This request has already put a Set-Cookie for the session cookie. */
  #wrote = false;

  constructor(ctx: Context, hooks: CookieBindHooks, config: BoundConfig) {
    this.#ctx = ctx;
    this.#hooks = hooks;
    this.#c = config;
  }

  /** The stable session id sealed in the request's cookie; `undefined` when it brought none or an invalid one. */
  get sid(): string | undefined {
    this.#open();
    return this.#incomingSid;
  }

  /** The serialized record of `key`, when this request holds that session and it is not expired. */
  async get(key: string): Promise<string | undefined> {
    this.#open();
    const sid = this.#sidOf(key);
    if (sid === undefined) return undefined;
    const rec = this.#latest(sid, { catchUp: true });
    if (!rec || rec.value === undefined || rec.exp <= this.#c.now()) return undefined;
    return rec.value;
  }

  /**
   * Seal `{ id, n, value }` with expiry `ttlMs` and set the cookie. Checks the size
   * first: over `maxBytes` → `CookieTooLargeError` and no Set-Cookie at all.
   */
  async set(key: string, value: string, ttlMs: number, opts: CookieSetOptions = {}): Promise<void> {
    this.#open();
    const sid = this.#sidOf(key);
    if (sid === undefined) {
      // Our own caller's bug, not client input: fail loudly rather than write a cookie we would refuse to read.
      throw new StoreError(
        name,
        `refusing to seal a key that is not a session id (16–128 chars of [A-Za-z0-9_-]), got ${typeof key === 'string' ? `${key.length} chars` : typeof key}`,
        { status: 500 },
      );
    }
    if (typeof value !== 'string') throw new StoreError(name, 'the record to seal must be a string', { status: 500 });
    if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
      throw new StoreError(name, `expected a positive ttl in ms, got ${String(ttlMs)}`, { status: 500 });
    }
    const prev = this.#latest(sid, { anyHolder: true });
    const live = prev && prev.value !== undefined ? prev : undefined;
    // The save's choice, then what the cookie already was, then the app's default.
    const session = opts.sessionCookie ?? live?.session ?? this.#hooks.maxAge === 'session';
    const n = (prev?.n ?? 0) + 1;
    const now = this.#c.now();
    // What JSON.stringify({ id, n, s }) gives, without it: the sid is [A-Za-z0-9_-] (checked above), n an integer.
    const header = session ? `{"id":"${sid}","n":${n},"s":1}` : `{"id":"${sid}","n":${n}}`;
    const sealed = seal(`${header}${FRAME_SEP}${value}`, this.#c.keyring, {
      encrypt: this.#c.encrypt,
      ttlMs,
      now,
      purpose: this.#c.cookie.name,
    });
    const size = setCookieSize(this.#c.cookie, sealed);
    if (size > this.#c.maxBytes) throw new CookieTooLargeError(size, this.#c.maxBytes);

    // Same rounding as seal(), so the in-process copy expires exactly when the cookie's seal does.
    const rec: Rec = { n, value, exp: Math.ceil(now + ttlMs), session, sealed };
    this.#writeCookie(sealed, session ? 'session' : this.#cookieMaxAge(ttlMs));
    this.#known.set(sid, rec);
    this.#cookieSid = sid;
    this.#c.recent?.put(sid, rec, now);
  }

  /**
   * Forget `key`. Clears the cookie only when the response's cookie holds `key`:
   * `regenerate` writes the new id first and then destroys the old one, which must
   * not clear the new cookie. Deleting an absent session is not an error.
   */
  async destroy(key: string): Promise<void> {
    this.#open();
    const sid = this.#sidOf(key);
    if (sid === undefined) return;
    // Only a request that holds (or wrote) this session may leave a tombstone for it.
    if (this.#known.has(sid)) {
      const mine = this.#known.get(sid);
      const prev = this.#latest(sid, { anyHolder: true });
      const tomb: Rec = { n: (prev?.n ?? 0) + 1, value: undefined, exp: 0, session: false };
      const now = this.#c.now();
      this.#known.set(sid, tomb);
      this.#c.recent?.put(sid, tomb, now);
      // Until the newest seal of this session expires, no copy of its cookie may open here again.
      this.#c.revoked?.add(sid, tomb.n, Math.max(mine?.exp ?? 0, prev?.exp ?? 0), now);
    }
    if (this.#cookieSid === sid) {
      this.#writeCookie(null, 'session');
      this.#cookieSid = undefined;
    }
  }

  /**
   * Re-seal the current record with a new expiry (a no-op when the session is absent: never
   * recreates it); without `opts.sessionCookie` it keeps the cookie kind it had.
   */
  async touch(key: string, ttlMs: number, opts: CookieSetOptions = {}): Promise<void> {
    this.#open();
    const sid = this.#sidOf(key);
    if (sid === undefined) return;
    const rec = this.#latest(sid);
    if (!rec || rec.value === undefined || rec.exp <= this.#c.now()) return;
    await this.set(key, rec.value, ttlMs, opts);
  }

  /** Read and open the request's cookie once. Bad cookies are reported, never thrown. */
  #open(): void {
    if (this.#opened) return;
    this.#opened = true;
    const { cookie, keyring, encrypt, now } = this.#c;
    const raw = this.#ctx.cookies.get(cookie.name, { signed: false });
    if (raw === undefined || raw === '') return;
    const opened = unseal(raw, keyring, { encrypt, purpose: cookie.name, now: now() });
    if (!opened.ok) return this.#invalid(opened.reason);
    const sep = opened.value.indexOf(FRAME_SEP);
    let header: { id?: unknown; n?: unknown; s?: unknown } | undefined;
    try {
      header = sep > 0 ? JSON.parse(opened.value.slice(0, sep)) : undefined;
    } catch {
      header = undefined;
    }
    if (
      typeof header !== 'object' ||
      header === null ||
      !isValidSid(header.id) ||
      typeof header.n !== 'number' ||
      !Number.isSafeInteger(header.n) ||
      header.n < 1 ||
      opened.expiresAt === undefined
    ) {
      // Authentic but not a CookieStore payload (or an id we would never generate): treat like any bad cookie.
      return this.#invalid('bad-format');
    }
    const rec: Rec = { n: header.n, value: opened.value.slice(sep + 1), exp: opened.expiresAt, session: header.s === 1, sealed: raw };
    this.#incomingSid = header.id;
    this.#cookieSid = header.id;
    this.#known.set(header.id, rec);
    if (opened.keyIndex > 0) debug('cookie store: cookie sealed with keys[%d]; the next save re-seals it with keys[0]', opened.keyIndex);
  }

  /** `key` when it is a session id (the keys of a bound store are bare sids), else undefined. */
  #sidOf(key: string): string | undefined {
    return isValidSid(key) ? key : undefined;
  }

  /** Max-Age of a persistent cookie: the ttl (the seal's expiry; a longer cookie would be useless), capped by `hooks.maxAge`. */
  #cookieMaxAge(ttlMs: number): number {
    const cap = this.#hooks.maxAge;
    return typeof cap === 'number' ? Math.min(cap, ttlMs) : ttlMs;
  }

  #invalid(reason: string): void {
    debug('cookie store: refused the session cookie (%s)', reason);
    this.#hooks.onInvalid(reason);
  }

  /**
   * The newest state of `key` this request may see: its own (cookie or writes) or,
   * if newer, this process's recent write of the same session. When the client's
   * cookie is older than what the process knows, the response re-sends the newest
   * cookie (or clears a destroyed one), so the browser catches up.
   * `catchUp` (reads only; a write sends its own cookie anyway).
   * `anyHolder` (writes only): look up the generation even without possession.
   */
  #latest(key: string, opts: { anyHolder?: boolean; catchUp?: boolean } = {}): Rec | undefined {
    const mine = this.#known.get(key);
    if (!mine && !opts.anyHolder) return undefined;
    const now = this.#c.now();
    let shared = this.#c.recent?.get(key, now);
    const revoked = this.#c.revoked?.get(key, now);
    if (revoked && (!shared || shared.n < revoked.n)) shared = { n: revoked.n, value: undefined, exp: 0, session: false };
    if (!shared || (mine && mine.n >= shared.n)) return mine;
    if (mine) {
      this.#known.set(key, shared);
      if (opts.catchUp && !this.#wrote && this.#cookieSid === key) this.#catchUp(shared);
    }
    return shared;
  }

  #catchUp(rec: Rec): void {
    const now = this.#c.now();
    if (rec.value === undefined || rec.sealed === undefined || rec.exp <= now) {
      this.#writeCookie(null, 'session');
      this.#cookieSid = undefined;
    } else {
      this.#writeCookie(rec.sealed, rec.session ? 'session' : this.#cookieMaxAge(rec.exp - now));
    }
  }

  /** Set (or, with `null`, clear) the session cookie, replacing any earlier Set-Cookie of it in this response. */
  #writeCookie(value: string | null, maxAge: number | 'session'): void {
    const c = this.#c.cookie;
    try {
      // Never Koa-signed: the seal is its own signature; a .sig cookie would only add bytes.
      // A seal is [A-Za-z0-9_.-] only: its Set-Cookie is serialized by the cached writer (the bytes
      // ctx.cookies.set writes, without its Cookie object and re-validation); clearing stays on ctx.cookies.
      if (value === null) this.#ctx.cookies.set(c.name, null, cookieSetAttributes(c, this.#ctx, 'session'));
      else writerFor(c).write(this.#ctx, [[c.name, value]], maxAge);
    } catch (cause) {
      // e.g. `secure: true` on a plain-HTTP request (behind a proxy, set `app.proxy = true`): configuration, not client input.
      throw new StoreError(name, `cannot set the session cookie: ${(cause as Error)?.message ?? String(cause)}`, { status: 500, cause });
    }
    this.#wrote = true;
  }
}

/**
 * Upper bound of the `Set-Cookie` header value Koa's cookies module will write:
 * name=value plus every attribute we may add, with `expires`, `secure` and
 * `partitioned` counted even when absent (conservative: browsers count name +
 * value, ~4096 bytes; RFC 6265 §6.1 counts attributes too).
 */
export function setCookieSize(c: Readonly<ResolvedCookieStoreCookie>, value: string): number {
  let fixed = attributeBytes.get(c);
  if (fixed === undefined) {
    let header = `${c.name}=; path=${c.path}${EXPIRES_ATTR}`;
    if (c.domain) header += `; domain=${c.domain}`;
    if (c.sameSite) header += `; samesite=${c.sameSite}`;
    header += '; secure';
    if (c.httpOnly) header += '; httponly';
    header += '; partitioned';
    fixed = Buffer.byteLength(header, 'utf8');
    attributeBytes.set(c, fixed);
  }
  return fixed + Buffer.byteLength(value, 'utf8');
}

/** One Set-Cookie writer per (frozen) cookie attributes of a CookieStore: built once, not per request. */
const writers = new WeakMap<Readonly<ResolvedCookieStoreCookie>, SetCookieWriter>();

function writerFor(c: Readonly<ResolvedCookieStoreCookie>): SetCookieWriter {
  let writer = writers.get(c);
  if (writer === undefined) {
    writer = new SetCookieWriter(c);
    writers.set(c, writer);
  }
  return writer;
}

/** Bytes of everything but the value in a Set-Cookie of these (frozen) attributes: counted once, not per save. */
const attributeBytes = new WeakMap<Readonly<ResolvedCookieStoreCookie>, number>();
