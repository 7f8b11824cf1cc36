import { debuglog } from 'node:util';
import type { Context } from 'koa';
import { CookieTooLargeError, StoreError } from '../errors.js';
import { createKeyring, seal, unseal, type KeyInput, type Keyring } from '../seal.js';
import { isValidSid } from '../sid.js';
import { Revocations } from './cookie-revocations.js';
import type { BoundRequestStore, RequestStore } from './store.js';

const debug = debuglog('koa-locked-session');

/** The store's name in logs, events and errors. */
export const name = 'cookie';

/** Attributes of the session cookie CookieStore writes. */
export interface CookieStoreCookieOptions {
  /**
   * Cookie name. It is also bound into the seal: a value sealed for one name does not open under another.
   * @default `session({ cookie: { name } })` when given, else `'session'` for the default session and
   * `'<name>.session'` for a named one (`session({ name: 'cart' })` → `cart.session`), so named sessions never share a cookie
   */
  name?: string;
  /** Cookie domain. @default unset (host-only cookie) */
  domain?: string;
  /** Cookie path. @default '/' */
  path?: string;
  /** @default true */
  httpOnly?: boolean;
  /** @default 'lax' */
  sameSite?: 'strict' | 'lax' | 'none' | false;
  /**
   * `true`/`false`, or `'auto'`: Secure when the request is HTTPS (behind a TLS-terminating proxy set `app.proxy = true`).
   * @default 'auto'
   */
  secure?: boolean | 'auto';
  /** CHIPS partitioned cookie (needs `secure`). @default false */
  partitioned?: boolean;
}

/** Options of {@link CookieStore}. */
export interface CookieStoreOptions {
  /**
   * Secret keys, newest first: the first seals, every key opens (rotation: put the
   * new key first, keep the old one until its cookies have expired, then drop it).
   * Each is a string of at least 32 characters or a 32-byte Buffer.
   * @example [process.env.SESSION_KEY, process.env.SESSION_KEY_PREVIOUS]
   */
  keys: readonly KeyInput[];
  /**
   * `true`: AES-256-GCM, the client can neither read nor change the data.
   * `false`: signed only (HMAC-SHA256): the client cannot change the data but **can read it**
   * (it is base64url, not encryption). Use only for data you would show the user anyway.
   * @default true
   */
  encrypt?: boolean;
  /** The session cookie. */
  cookie?: CookieStoreCookieOptions;
  /**
   * Largest `Set-Cookie` value (name, value and attributes, counted conservatively) a save may
   * produce; a bigger one fails with `CookieTooLargeError` and nothing is sent. Browsers keep at
   * most about 4096 bytes per cookie.
   * @default 4096
   */
  maxBytes?: number;
  /**
   * In-process read-your-writes window. A cookie travels with each request, so two requests
   * in flight at the same time for one session (parallel fetches, two tabs) both carry the
   * cookie from before either saved. With this on, the store remembers each session's latest
   * write in this process for `windowMs`: a later request that brings an older cookie of the
   * same session reads the latest data (and its response carries the latest cookie), and a
   * destroyed session stays dead for requests still carrying its cookie. Bounded to `max`
   * sessions (least recently written dropped first). It cannot help across processes.
   * `false` makes the store fully stateless: every request starts from the cookie it brought.
   * @default { max: 1000, windowMs: 60_000 }
   */
  recentWrites?: false | { max?: number; windowMs?: number };
  /**
   * In-process memory of destroyed sessions (logout, `regenerate`, `destroy`): a copy of a
   * destroyed session's cookie (another tab, a thief) is refused by this process until that
   * cookie's sealed expiry. Only destroys are remembered, so no amount of other traffic
   * pushes a logout out. Bounded by `maxBytes`, each revocation charged 2 bytes per sid
   * character + 80 (166 bytes for the default 43-character sid: 6,316 revocations in the
   * default 1 MiB); past it, the oldest revocation is forgotten first. It cannot help across
   * processes or restarts (see SECURITY.md). `false`: no memory; a copied cookie opens until
   * its sealed expiry.
   * @default { maxBytes: 1_048_576 }
   */
  revocations?: false | { maxBytes?: number };
  /** Clock in ms (tests inject one). @default Date.now */
  now?: () => number;
}

/**
 * What the middleware tells {@link CookieStore.bindRequest} about the request's
 * session. Only `onInvalid` is required by the {@link RequestStore} contract.
 */
export interface CookieBindHooks {
  /** Called once, with a short reason, when the request brought a cookie that does not open. */
  onInvalid(reason: string): void;
  /**
   * The middleware's key prefix (`session({ prefix })`): keys given to get/set/destroy/touch are
   * `prefix + sid`, while the cookie and {@link BoundCookieStore.sid} carry the bare sid.
   * @default ''
   */
  prefix?: string;
  /**
   * The middleware's `cookie.maxAge`: `'session'` makes new sessions browser-session cookies;
   * a number caps the cookie's Max-Age (which is otherwise the ttl, the seal's own expiry).
   * @default the ttl of each save
   */
  maxAge?: number | 'session';
}

/** Extra arguments of {@link BoundCookieStore.set}. */
export interface CookieSetOptions {
  /**
   * `true`: a browser-session cookie (no Max-Age/Expires; the sealed expiry still applies).
   * `false`: a persistent cookie with Max-Age = ttl. Omitted: keep what the session's cookie
   * already was (persistent for a new session), so later saves do not undo `remember: false`.
   */
  sessionCookie?: boolean;
}

/** One session state as this request or this process knows it. `value === undefined` is a tombstone. */
interface Rec {
  /** Generation: incremented by every write of this session (set, touch, destroy) to tell newer from older. */
  n: number;
  value: string | undefined;
  /** Absolute expiry, ms. */
  exp: number;
  session: boolean;
  /** The sealed cookie value that carries this state (for re-sending it); absent for tombstones. */
  sealed?: string;
}

/** The cookie attributes a CookieStore writes, with defaults applied. */
export interface ResolvedCookieStoreCookie {
  name: string;
  domain: string | undefined;
  path: string;
  httpOnly: boolean;
  sameSite: 'strict' | 'lax' | 'none' | false;
  secure: boolean | 'auto';
  partitioned: boolean;
}

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$/;
// Header framing inside the seal: `{"id":…,"n":…,"s":1}\n<record>`. JSON.stringify never emits a raw
// newline, and keeping the record outside the JSON avoids escaping it a second time (cookie bytes are scarce).
const FRAME_SEP = '\n';
// Size of the longest `expires=` attribute Koa's cookies module writes; counted even for browser-session cookies.
const EXPIRES_ATTR = '; expires=Thu, 01 Jan 1970 00:00:00 GMT';

/**
 * The whole session in the client's cookie, sealed with AES-256-GCM (or signed
 * only, `encrypt: false`) by `src/seal.ts`. It works as the `master` of
 * `session()`: a stable id inside the sealed payload keys the in-process lock and
 * the mirrors, so `session({ master: new CookieStore({ keys }), mirrors: [redis] })`
 * keeps a server-side copy of every cookie session.
 *
 * It is a {@link RequestStore}: the middleware calls {@link CookieStore.bindRequest}
 * once per request; the unbound `get`/`set`/`destroy` throw, because there is no
 * cookie to read or write outside a request.
 *
 * @example
 * app.use(session({ master: new CookieStore({ keys: [process.env.SESSION_KEY!] }) }));
 */
export class CookieStore implements RequestStore {
  readonly name = name;
  readonly encrypt: boolean;
  readonly maxBytes: number;
  #cookie: Readonly<ResolvedCookieStoreCookie>;
  /** `cookie.name` was given to the constructor (else the session() that uses this store picks it). */
  readonly #explicitName: boolean;
  /** The session() (by name) this store is the master of: one store, one session, one cookie. */
  #claimedBy: string | undefined;
  readonly #keyring: Keyring;
  readonly #recent: RecentWrites | undefined;
  readonly #revoked: Revocations | undefined;
  readonly #now: () => number;
  readonly #boundTo = new WeakSet<Context>();

  constructor(options: CookieStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('koa-locked-session: Expected CookieStore options to be an object with `keys`, e.g. `new CookieStore({ keys: [process.env.SESSION_KEY] })`');
    }
    this.#keyring = createKeyring(options.keys, 'CookieStore keys');
    this.encrypt = bool('encrypt', options.encrypt, true);
    const maxBytes = options.maxBytes ?? 4096;
    if (!Number.isInteger(maxBytes) || maxBytes < 256) fail('maxBytes', 'an integer of at least 256 (bytes)', maxBytes);
    this.maxBytes = maxBytes;
    this.#cookie = Object.freeze(resolveCookie(options.cookie ?? {}));
    this.#explicitName = options.cookie?.name !== undefined;
    const recent = options.recentWrites ?? {};
    if (recent !== false) {
      if (typeof recent !== 'object' || recent === null) fail('recentWrites', 'false or { max, windowMs }', recent);
      const { max = 1000, windowMs = 60_000 } = recent;
      if (!Number.isInteger(max) || max < 1) fail('recentWrites.max', 'a positive integer', max);
      if (!Number.isFinite(windowMs) || windowMs <= 0) fail('recentWrites.windowMs', 'a positive number of ms', windowMs);
      this.#recent = new RecentWrites(max, windowMs);
    }
    const revocations = options.revocations ?? {};
    if (revocations !== false) {
      if (typeof revocations !== 'object' || revocations === null) fail('revocations', 'false or { maxBytes }', revocations);
      const { maxBytes = 1_048_576 } = revocations;
      if (!Number.isInteger(maxBytes) || maxBytes < 1) fail('revocations.maxBytes', 'a positive integer (bytes)', maxBytes);
      this.#revoked = new Revocations(maxBytes);
    }
    const now = options.now ?? Date.now;
    if (typeof now !== 'function') fail('now', 'a function returning ms', now);
    this.#now = now;
  }

  /** The attributes of the session cookie this store writes (its name is final once a session() uses the store). */
  get cookie(): Readonly<ResolvedCookieStoreCookie> {
    return this.#cookie;
  }

  /**
   * Called by `session()` when it takes this store as its master: picks the cookie name when
   * the constructor was given none (see {@link CookieStoreCookieOptions.name}), and refuses a
   * second session(), which would read and overwrite the same cookie.
   * @param sessionName the session's `name` (`ctx[name]`).
   * @param cookieName `session({ cookie: { name } })`, when given.
   * @throws TypeError when the store is already the master of another session(), or when both
   * the store and the session() name the cookie, differently.
   */
  claim(sessionName: string, cookieName: string | undefined): void {
    if (this.#claimedBy !== undefined && this.#claimedBy !== sessionName) {
      throw new TypeError(`koa-locked-session: this CookieStore is already the master of session "${this.#claimedBy}"; give session "${sessionName}" its own CookieStore (two sessions in one cookie would overwrite each other)`);
    }
    if (this.#claimedBy !== undefined) return;
    if (this.#explicitName && cookieName !== undefined && cookieName !== this.#cookie.name) {
      throw new TypeError(`koa-locked-session: session "${sessionName}" names its cookie "${cookieName}" but its CookieStore names it "${this.#cookie.name}"; set the name in one place`);
    }
    if (!this.#explicitName) {
      const name = cookieName ?? (sessionName === 'session' ? 'session' : `${sessionName}.session`);
      this.#cookie = Object.freeze({ ...this.#cookie, name }); // both sources of `name` are validated already
    }
    this.#claimedBy = sessionName;
  }

  /**
   * Bind to one request: read its cookie (lazily, on first use) and write the response's.
   * @throws StoreError when this instance is bound twice in one request: two `session()`
   * middlewares would fight over one cookie; give each its own CookieStore and `cookie.name`.
   */
  bindRequest(ctx: Context, hooks: CookieBindHooks): BoundCookieStore {
    if (this.#boundTo.has(ctx)) {
      throw new StoreError(name, `this CookieStore (cookie "${this.cookie.name}") was bound twice in one request: two session() middlewares share it and would overwrite each other's cookie; give each session() its own CookieStore with its own \`cookie.name\``, { status: 500 });
    }
    this.#boundTo.add(ctx);
    return new BoundCookieStore(ctx, hooks, {
      keyring: this.#keyring,
      encrypt: this.encrypt,
      maxBytes: this.maxBytes,
      cookie: this.cookie,
      recent: this.#recent,
      revoked: this.#revoked,
      now: this.#now,
    });
  }

  /** @throws always: outside a request there is no cookie. */
  async get(_key: string): Promise<string | undefined> {
    throw unbound('get');
  }

  /** @throws always: outside a request there is no cookie. */
  async set(_key: string, _value: string, _ttlMs: number): Promise<void> {
    throw unbound('set');
  }

  /** @throws always: outside a request there is no cookie. */
  async destroy(_key: string): Promise<void> {
    throw unbound('destroy');
  }

  /** @throws always: outside a request there is no cookie. */
  async touch(_key: string, _ttlMs: number): Promise<void> {
    throw unbound('touch');
  }

  /** Forget the in-process recent writes. Never touches any client's cookie. */
  async close(): Promise<void> {
    this.#recent?.clear();
    this.#revoked?.clear();
  }
}

interface BoundConfig {
  keyring: Keyring;
  encrypt: boolean;
  maxBytes: number;
  cookie: Readonly<ResolvedCookieStoreCookie>;
  recent: RecentWrites | undefined;
  revoked: Revocations | undefined;
  now: () => number;
}

/**
 * A {@link CookieStore} bound to one request: reads the request's cookie, writes
 * the response's. Every failure to open the cookie (garbage, tampered, re-keyed,
 * expired…) is reported once through `onInvalid(reason)` and the session counts
 * as absent; nothing a client sends makes it throw.
 */
export class BoundCookieStore implements BoundRequestStore {
  readonly name = name;
  readonly #ctx: Context;
  readonly #hooks: CookieBindHooks;
  readonly #prefix: string;
  readonly #c: BoundConfig;
  /**
   * Per-request choice of cookie kind for the following saves: `true` browser-session
   * cookie, `false` persistent; `undefined` keeps what the session's cookie already was.
   * The auth helpers set it (`login(user, { remember: false })`), since the scope's
   * save goes through the master+mirrors Replica, which has no room for extra arguments.
   */
  sessionCookie: boolean | undefined = undefined;
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
    this.#prefix = hooks.prefix ?? '';
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
      throw new StoreError(name, `refusing to seal a key that is not \`prefix\` + a session id (16–128 chars of [A-Za-z0-9_-]), got ${typeof key === 'string' ? `${key.length} chars` : typeof key}`, { status: 500 });
    }
    if (typeof value !== 'string') throw new StoreError(name, 'the record to seal must be a string', { status: 500 });
    if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
      throw new StoreError(name, `expected a positive ttl in ms, got ${String(ttlMs)}`, { status: 500 });
    }
    const prev = this.#latest(sid, { anyHolder: true });
    const live = prev && prev.value !== undefined ? prev : undefined;
    // Explicit argument, then this request's choice, then what the cookie already was, then the app's default.
    const session = opts.sessionCookie ?? this.sessionCookie ?? live?.session ?? this.#hooks.maxAge === 'session';
    const n = (prev?.n ?? 0) + 1;
    const now = this.#c.now();
    const header = JSON.stringify(session ? { id: sid, n, s: 1 } : { id: sid, n });
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

  /** Re-seal the current record with a new expiry (a no-op when the session is absent: never recreates it). */
  async touch(key: string, ttlMs: number): Promise<void> {
    this.#open();
    const sid = this.#sidOf(key);
    if (sid === undefined) return;
    const rec = this.#latest(sid);
    if (!rec || rec.value === undefined || rec.exp <= this.#c.now()) return;
    await this.set(key, rec.value, ttlMs); // keeps the cookie kind (browser-session or persistent) it had
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
      typeof header !== 'object' || header === null || !isValidSid(header.id) ||
      typeof header.n !== 'number' || !Number.isSafeInteger(header.n) || header.n < 1 ||
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

  /** The bare sid in `key` (`prefix + sid`), or undefined when `key` is not of that shape. */
  #sidOf(key: string): string | undefined {
    if (typeof key !== 'string' || !key.startsWith(this.#prefix)) return undefined;
    const sid = key.slice(this.#prefix.length);
    return isValidSid(sid) ? sid : undefined;
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
      this.#ctx.cookies.set(c.name, value, {
        signed: false, // the seal is its own signature; Koa's .sig cookie would only add bytes
        httpOnly: c.httpOnly,
        sameSite: c.sameSite,
        path: c.path,
        ...(c.domain === undefined ? {} : { domain: c.domain }),
        secure: c.secure === 'auto' ? this.#ctx.secure : c.secure,
        partitioned: c.partitioned,
        ...(value === null || maxAge === 'session' ? {} : { maxAge }),
        overwrite: true,
      });
    } catch (cause) {
      // e.g. `secure: true` on a plain-HTTP request (behind a proxy, set `app.proxy = true`): configuration, not client input.
      throw new StoreError(name, `cannot set the session cookie: ${(cause as Error)?.message ?? String(cause)}`, { status: 500, cause });
    }
    this.#wrote = true;
  }
}

/** Latest write per session id in this process, for a short window; LRU-bounded by write order. */
class RecentWrites {
  readonly #entries = new Map<string, { rec: Rec; at: number }>();
  constructor(readonly max: number, readonly windowMs: number) {}

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

/**
 * Upper bound of the `Set-Cookie` header value Koa's cookies module will write:
 * name=value plus every attribute we may add, with `expires`, `secure` and
 * `partitioned` counted even when absent (conservative: browsers count name +
 * value, ~4096 bytes; RFC 6265 §6.1 counts attributes too).
 */
export function setCookieSize(c: Readonly<ResolvedCookieStoreCookie>, value: string): number {
  let header = `${c.name}=${value}; path=${c.path}${EXPIRES_ATTR}`;
  if (c.domain) header += `; domain=${c.domain}`;
  if (c.sameSite) header += `; samesite=${c.sameSite}`;
  header += '; secure';
  if (c.httpOnly) header += '; httponly';
  header += '; partitioned';
  return Buffer.byteLength(header, 'utf8');
}

function resolveCookie(input: CookieStoreCookieOptions): ResolvedCookieStoreCookie {
  if (typeof input !== 'object' || input === null) fail('cookie', 'an object', input);
  const cookieName = input.name ?? 'session';
  if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName)) fail('cookie.name', "a cookie name (letters, digits and !#$%&'*+-.^_`|~)", cookieName);
  const domain = input.domain;
  if (domain !== undefined && (typeof domain !== 'string' || !/^\.?[A-Za-z0-9.-]+$/.test(domain))) fail('cookie.domain', 'a host name', domain);
  const path = input.path ?? '/';
  if (typeof path !== 'string' || !/^\/[\x21-\x3A\x3C-\x7E]*$/.test(path)) fail('cookie.path', "a path starting with '/'", path);
  const httpOnly = bool('cookie.httpOnly', input.httpOnly, true);
  const sameSite = input.sameSite ?? 'lax';
  if (!(['strict', 'lax', 'none', false] as unknown[]).includes(sameSite)) fail('cookie.sameSite', "'strict', 'lax', 'none' or false", sameSite);
  const secure = input.secure ?? 'auto';
  if (secure !== true && secure !== false && secure !== 'auto') fail('cookie.secure', "true, false or 'auto'", secure);
  const partitioned = bool('cookie.partitioned', input.partitioned, false);
  if (secure === false && (sameSite === 'none' || partitioned)) {
    fail('cookie.secure', `true or 'auto' with ${partitioned ? 'partitioned' : "sameSite: 'none'"}`, secure, 'Browsers drop such cookies unless they are Secure');
  }
  return { name: cookieName, domain, path, httpOnly, sameSite, secure, partitioned };
}

function unbound(op: string): StoreError {
  return new StoreError(
    name,
    `CookieStore.${op}() called outside a request: CookieStore keeps each session in the client's cookie, so it only works as the \`master\` of session() (which binds it to each request), not as a mirror or on its own`,
    { status: 500 },
  );
}

function bool(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') fail(option, 'a boolean', value);
  return value;
}

function fail(option: string, expected: string, got: unknown, fix = ''): never {
  const shown = typeof got === 'function' ? 'a function' : typeof got === 'string' ? JSON.stringify(got) : String(got);
  throw new TypeError(`koa-locked-session: Expected CookieStore \`${option}\` to be ${expected}, got \`${shown}\`${fix ? `. ${fix}` : ''}`);
}
