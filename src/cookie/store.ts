import type { Context } from 'koa';
import { StoreError } from '../errors.js';
import { resolveCookieAttributes } from '../sid/cookie-attributes.js';
import { createKeyring, type KeyInput, type Keyring } from './seal.js';
import { Validator } from '../util/validate.js';
import { BoundCookieStore, name, type CookieBindHooks, type ResolvedCookieStoreCookie } from './bound.js';
import { RecentWrites } from './recent-writes.js';
import { Revocations } from './revocations.js';
import type { RequestStore } from '../contracts/store.js';

export { BoundCookieStore, setCookieSize, type CookieBindHooks, type CookieSetOptions, type ResolvedCookieStoreCookie } from './bound.js';

export { name } from './bound.js';

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
  recentWrites?:
    | false
    | {
        /** Most sessions remembered; the least recently written is dropped first. @default 1000 */
        max?: number;
        /** How long, in ms, a write is remembered after it was made. @default 60_000 */
        windowMs?: number;
      };
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
  revocations?:
    | false
    | {
        /** Memory bound of the remembered revocations, in bytes (2 per sid character + 80 each). @default 1_048_576 */
        maxBytes?: number;
      };
  /** Clock in ms (tests inject one). @default Date.now */
  now?: () => number;
}

const check = new Validator('CookieStore');

/** The options {@link CookieStore} knows; any other key is refused (a misspelling would be ignored silently). */
const OPTIONS = ['keys', 'encrypt', 'cookie', 'maxBytes', 'recentWrites', 'revocations', 'now'] as const;
const COOKIE_OPTIONS = ['name', 'domain', 'path', 'httpOnly', 'sameSite', 'secure', 'partitioned'] as const;
const COOKIE_LIFETIME =
  "The session lifetime is `session({ ttl })`, sealed into the cookie; its Max-Age follows it, capped by `session({ cookie: { maxAge } })` ('session': a browser-session cookie)";

/**
 * Options of other cookie-session libraries (koa-session, cookie-session,
 * client-sessions) and top-level cookie attributes, with our equivalent.
 */
const HINTS: Readonly<Record<string, string>> = {
  key: 'The cookie name is `cookie.name`: `new CookieStore({ keys, cookie: { name } })`',
  cookieName: 'The cookie name is `cookie.name`: `new CookieStore({ keys, cookie: { name } })`',
  secret: 'Use `keys` (secrets of at least 32 characters, newest first)',
  secrets: 'Use `keys` (secrets of at least 32 characters, newest first)',
  signed: 'Cookies are always authenticated; `encrypt: false` makes them signed only (readable by the client)',
  encode: 'No counterpart: the sealed format is fixed',
  decode: 'No counterpart: the sealed format is fixed',
  ttl: COOKIE_LIFETIME,
  maxAge: COOKIE_LIFETIME,
  expires: COOKIE_LIFETIME,
  duration: COOKIE_LIFETIME,
  ...Object.fromEntries(
    COOKIE_OPTIONS.map((option) => [option, `Cookie attributes go in \`cookie\`: \`new CookieStore({ keys, cookie: { ${option} } })\``]),
  ),
};
/** Koa-session's cookie options that have no place in `cookie`, with our equivalent. */
const COOKIE_HINTS: Readonly<Record<string, string>> = {
  key: 'Use `cookie.name`',
  maxAge: COOKIE_LIFETIME,
  expires: COOKIE_LIFETIME,
  signed: 'Cookies are always authenticated; `encrypt: false` makes them signed only (readable by the client)',
  overwrite: 'No counterpart: the cookie always replaces an earlier one',
  priority: 'No counterpart',
};

/**
 * The whole session in the client's cookie, sealed with AES-256-GCM (or signed
 * only, `encrypt: false`) by `src/cookie/seal.ts`. It works as the `master` of
 * `session()`: a stable id inside the sealed payload keys the in-process lock and
 * the mirrors, so `session({ master: new CookieStore({ keys }), mirrors: [redis] })`
 * keeps a server-side copy of every cookie session.
 *
 * It is a {@link RequestStore}, not a `Store`: outside a request there is no cookie
 * to read or write, so it has no `get`/`set`/`destroy` of its own; the middleware
 * calls {@link CookieStore.bindRequest} once per request (on the first use of the
 * session) and uses the bound store as that request's master.
 *
 * @example
 * app.use(session({ master: new CookieStore({ keys: [process.env.SESSION_KEY!] }) }));
 */
export class CookieStore implements RequestStore {
  readonly name = name;
  /** `true`: the cookie is sealed with AES-256-GCM; `false`: signed only (readable by the client). */
  readonly encrypt: boolean;
  /** Largest `Set-Cookie` value a save may produce, in bytes; a bigger one fails with `CookieTooLargeError`. */
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
      throw new TypeError(
        'koa-locked-session: Expected CookieStore options to be an object with `keys`, e.g. `new CookieStore({ keys: [process.env.SESSION_KEY] })`',
      );
    }
    check.known(options, OPTIONS, HINTS);
    this.#keyring = createKeyring(options.keys, 'CookieStore keys');
    this.encrypt = check.bool('encrypt', options.encrypt, true);
    const maxBytes = options.maxBytes ?? 4096;
    if (!Number.isInteger(maxBytes) || maxBytes < 256) check.fail('maxBytes', 'an integer of at least 256 (bytes)', maxBytes);
    this.maxBytes = maxBytes;
    const cookie = check.object('cookie', options.cookie);
    check.known(cookie, COOKIE_OPTIONS, COOKIE_HINTS, 'cookie.');
    this.#cookie = Object.freeze(resolveCookieAttributes(check, cookie, 'session'));
    this.#explicitName = options.cookie?.name !== undefined;
    const recent = options.recentWrites ?? {};
    if (recent !== false) {
      if (typeof recent !== 'object' || recent === null) check.fail('recentWrites', 'false or { max, windowMs }', recent);
      check.known(recent, ['max', 'windowMs'], {}, 'recentWrites.');
      this.#recent = new RecentWrites(
        check.positiveInt('recentWrites.max', recent.max, 1000),
        check.positiveMs('recentWrites.windowMs', recent.windowMs, 60_000),
      );
    }
    const revocations = options.revocations ?? {};
    if (revocations !== false) {
      if (typeof revocations !== 'object' || revocations === null) check.fail('revocations', 'false or { maxBytes }', revocations);
      check.known(revocations, ['maxBytes'], {}, 'revocations.');
      const { maxBytes = 1_048_576 } = revocations;
      if (!Number.isInteger(maxBytes) || maxBytes < 1) check.fail('revocations.maxBytes', 'a positive integer (bytes)', maxBytes);
      this.#revoked = new Revocations(maxBytes);
    }
    const now = options.now ?? Date.now;
    if (typeof now !== 'function') check.fail('now', 'a function returning ms', now);
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
      throw new TypeError(
        `koa-locked-session: this CookieStore is already the master of session "${this.#claimedBy}"; give session "${sessionName}" its own CookieStore (two sessions in one cookie would overwrite each other)`,
      );
    }
    if (this.#claimedBy !== undefined) return;
    if (this.#explicitName && cookieName !== undefined && cookieName !== this.#cookie.name) {
      throw new TypeError(
        `koa-locked-session: session "${sessionName}" names its cookie "${cookieName}" but its CookieStore names it "${this.#cookie.name}"; set the name in one place`,
      );
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
      throw new StoreError(
        name,
        `this CookieStore (cookie "${this.cookie.name}") was bound twice in one request: two session() middlewares share it and would overwrite each other's cookie; give each session() its own CookieStore with its own \`cookie.name\``,
        { status: 500 },
      );
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

  /** Forget the in-process recent writes. Never touches any client's cookie. */
  async close(): Promise<void> {
    this.#recent?.clear();
    this.#revoked?.clear();
  }
}
