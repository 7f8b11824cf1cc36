import { MemoryLocker } from './lockers/memory.js';
import { isLocker, type Locker } from './lockers/locker.js';
import type { MirrorWrites } from './replica.js';
import { jsonSerializer, type Serializer } from './serialize.js';
import { MemoryStore } from './stores/memory.js';
import { isRequestStore, isStore, type Store } from './stores/store.js';

/** Options of the sid cookie. Defaults follow DESIGN §6 (and OWASP): HttpOnly, SameSite=Lax, Secure on HTTPS. */
export interface CookieOptions {
  /** Cookie name. @default 'sid' (or `<name>.sid` for a named session other than `session`) */
  name?: string;
  /** Cookie domain. @default unset (host-only cookie) */
  domain?: string;
  /** Cookie path. @default '/' */
  path?: string;
  /**
   * Cookie lifetime in ms, or `'session'` for a browser-session cookie (gone when the browser closes).
   * @default the session `ttl`
   */
  maxAge?: number | 'session';
  /** @default true */
  httpOnly?: boolean;
  /**
   * `true`/`false`, or `'auto'`: Secure when the request is HTTPS (behind a TLS-terminating proxy set `app.proxy = true`).
   * @default 'auto'
   */
  secure?: boolean | 'auto';
  /** @default 'lax' */
  sameSite?: 'strict' | 'lax' | 'none' | false;
  /** CHIPS partitioned cookie (needs `secure`). @default false */
  partitioned?: boolean;
  /** Sign the sid with `app.keys` (Koa's signed cookies; every key verifies, the first signs). @default true */
  signed?: boolean;
}

/** Options of {@link session}. Every field is optional: `session()` runs on the embedded memory store. */
export interface SessionOptions {
  /**
   * Context property the handle lives on: `ctx[name]`. Several named sessions may share one app.
   * @default 'session'
   */
  name?: string;
  /** The store reads come from and writes go to first. @default new MemoryStore() */
  master?: Store;
  /** Stores that receive every write and destroy too, after the master (analytics, migration, backup). @default [] */
  mirrors?: Store[];
  /** `'await'`: a scope ends after the mirrors are written; `'background'`: it does not wait for them. @default 'await' */
  mirrorWrites?: MirrorWrites;
  /**
   * With `mirrorWrites: 'background'`: most mirror writes in flight at once. Past it new
   * mirror writes are dropped and reported (`session:mirror-error`), so a dead mirror cannot grow memory.
   * @default 1000
   */
  maxPendingMirrorWrites?: number;
  /** Bound on every store call in ms (master and mirrors); past it the call fails with `StoreError` (503). @default 2000 */
  storeTimeout?: number;
  /** Serializes scopes per session id. `RedisLocker` for many processes. @default new MemoryLocker() */
  locker?: Locker;
  /** Server-side expiry in ms, renewed by every save and `touch()`. @default 86_400_000 (24 h) */
  ttl?: number;
  /** Most ms a scope waits for the lock before failing with `LockTimeoutError` (503). @default 5000 */
  lockTimeout?: number;
  /**
   * Absolute timeout in ms: a session ends this long after it was created (or after
   * `login`), however active it is (OWASP). `ttl` stays the idle timeout.
   * @default undefined (no absolute limit)
   */
  absoluteTtl?: number;
  /** Renew the expiry (store and cookie) on every request that uses the session, not only on saves. @default false */
  rolling?: boolean;
  /** Prefix of this session's keys in the stores and the locker (separates named sessions sharing a store). @default '' */
  prefix?: string;
  /** Generates new session ids; its output must be 16–128 chars of `[A-Za-z0-9_-]`. @default 32 random bytes, base64url */
  genid?: () => string;
  /** How session data becomes a stored string. @default JSON (hardened against prototype pollution) */
  serializer?: Serializer;
  /** The sid cookie. */
  cookie?: CookieOptions;
  /**
   * Where the sid travels. `{ header: 'x-session-id' }` reads it from that request header and
   * returns new ids in the same response header (APIs, mobile apps), signed like the cookie
   * (`<sid>.<signature>`); no cookie is read or set.
   * @default the cookie
   */
  sid?: { header?: string };
  /** Auth helpers (`login`, `logout`, `user`, `sessionsOf`, `revokeAll`). */
  auth?: AuthOptions;
}

/** Options of the auth helpers. */
export interface AuthOptions {
  /** Session data key the logged-in user is stored under. @default 'user' */
  userKey?: string;
  /**
   * A user's stable id, for the per-user session index (`sessionsOf`, `revokeAll`).
   * @default user => user.id (or the user itself when it is a string or number)
   */
  userId?: (user: unknown) => string | number;
  /**
   * Most sessions one user keeps (devices, browsers). A login past it destroys the
   * user's oldest sessions, so the per-user index stays bounded on every store.
   * @default 100
   */
  maxSessionsPerUser?: number;
}

/** The cookie options with every default applied. */
export interface ResolvedCookieOptions {
  name: string;
  domain: string | undefined;
  path: string;
  maxAge: number | 'session';
  httpOnly: boolean;
  secure: boolean | 'auto';
  sameSite: 'strict' | 'lax' | 'none' | false;
  partitioned: boolean;
  signed: boolean;
}

/** The options with every default applied: what the middleware runs on. */
export interface ResolvedOptions {
  name: string;
  master: Store;
  mirrors: readonly Store[];
  mirrorWrites: MirrorWrites;
  maxPendingMirrorWrites: number;
  storeTimeout: number;
  locker: Locker;
  ttl: number;
  lockTimeout: number;
  absoluteTtl: number | undefined;
  rolling: boolean;
  prefix: string;
  genid: (() => string) | undefined;
  serializer: Serializer;
  cookie: ResolvedCookieOptions;
  /** Request/response header carrying the signed sid instead of the cookie, lower-case. */
  header: string | undefined;
  userKey: string;
  userId: (user: unknown) => string | number;
  maxSessionsPerUser: number;
}

/** Defaults in one place (stores and lockers are created per `session()` call). */
export const DEFAULTS = Object.freeze({
  name: 'session',
  mirrorWrites: 'await' as MirrorWrites,
  maxPendingMirrorWrites: 1000,
  storeTimeout: 2000,
  ttl: 24 * 60 * 60 * 1000,
  lockTimeout: 5000,
  rolling: false,
  prefix: '',
  cookie: Object.freeze({ name: 'sid', path: '/', httpOnly: true, secure: 'auto' as const, sameSite: 'lax' as const, partitioned: false, signed: true }),
});

// Names that would shadow Koa's own context members.
const RESERVED_NAMES = new Set([
  'app', 'req', 'res', 'request', 'response', 'originalUrl', 'cookies', 'state', 'body', 'status', 'message',
  'headers', 'header', 'method', 'url', 'path', 'query', 'querystring', 'host', 'hostname', 'href', 'ip', 'ips',
  'secure', 'protocol', 'type', 'length', 'socket', 'throw', 'assert', 'onerror', 'respond', 'redirect', 'attachment',
  'set', 'get', 'append', 'remove', 'is', 'accepts', 'fresh', 'stale', 'inspect', 'toJSON', 'constructor', '__proto__',
]);

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/;
// RFC 6265 cookie-name token characters.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$/;
const PREFIX = /^[A-Za-z0-9_:.-]{0,64}$/;

function fail(option: string, expected: string, got: unknown, fix = ''): never {
  const shown = typeof got === 'function' ? 'a function' : typeof got === 'string' ? JSON.stringify(got) : String(got);
  throw new TypeError(`koa-locked-session: Expected \`${option}\` to be ${expected}, got \`${shown}\`${fix ? `. ${fix}` : ''}`);
}

function positive(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail(option, 'a positive number of ms', value);
  return value;
}

function bool(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') fail(option, 'a boolean', value);
  return value;
}

/**
 * Validate `input` and apply the defaults. Returns a new object (the caller's
 * is never mutated); throws a `TypeError` naming the option and the fix.
 */
export function resolveOptions(input: SessionOptions = {}): ResolvedOptions {
  if (typeof input !== 'object' || input === null) fail('options', 'an object', input);
  const name = input.name ?? DEFAULTS.name;
  if (typeof name !== 'string' || !IDENTIFIER.test(name)) fail('name', 'a JavaScript identifier (it becomes ctx[name])', name);
  if (RESERVED_NAMES.has(name)) fail('name', 'a name Koa does not use itself', name, 'Pick another name, e.g. "session" or "cart"');

  const master = input.master ?? new MemoryStore();
  if (!isStore(master)) fail('master', 'a Store (an object with name, get, set and destroy)', master);
  const mirrors = input.mirrors ?? [];
  if (!Array.isArray(mirrors)) fail('mirrors', 'an array of Stores', mirrors);
  mirrors.forEach((m, i) => {
    if (!isStore(m)) fail(`mirrors[${i}]`, 'a Store (an object with name, get, set and destroy)', m);
    if (m === master) fail(`mirrors[${i}]`, 'a store other than the master', m.name, 'Remove the master from `mirrors`');
    if (isRequestStore(m)) fail(`mirrors[${i}]`, 'a server-side store', m.name, 'A CookieStore can only be the master: it lives in the browser');
  });
  const mirrorWrites = input.mirrorWrites ?? DEFAULTS.mirrorWrites;
  if (mirrorWrites !== 'await' && mirrorWrites !== 'background') fail('mirrorWrites', "'await' or 'background'", mirrorWrites);

  const maxPendingMirrorWrites = input.maxPendingMirrorWrites ?? DEFAULTS.maxPendingMirrorWrites;
  if (!Number.isInteger(maxPendingMirrorWrites) || maxPendingMirrorWrites < 1) {
    fail('maxPendingMirrorWrites', 'a positive integer', maxPendingMirrorWrites);
  }
  const storeTimeout = positive('storeTimeout', input.storeTimeout, DEFAULTS.storeTimeout);
  const locker = input.locker ?? new MemoryLocker();
  if (!isLocker(locker)) fail('locker', 'a Locker (an object with acquire(key, options))', locker);

  const ttl = positive('ttl', input.ttl, DEFAULTS.ttl);
  const lockTimeout = positive('lockTimeout', input.lockTimeout, DEFAULTS.lockTimeout);
  const absoluteTtl = input.absoluteTtl === undefined ? undefined : positive('absoluteTtl', input.absoluteTtl, 0);
  const rolling = bool('rolling', input.rolling, DEFAULTS.rolling);
  const prefix = input.prefix ?? DEFAULTS.prefix;
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) fail('prefix', 'up to 64 chars of [A-Za-z0-9_:.-]', prefix);
  const genid = input.genid;
  if (genid !== undefined && typeof genid !== 'function') fail('genid', 'a function returning a new session id', genid);
  const serializer = input.serializer ?? jsonSerializer;
  if (typeof serializer?.stringify !== 'function' || typeof serializer?.parse !== 'function') {
    fail('serializer', 'an object with stringify(data) and parse(raw)', serializer);
  }

  const sid = input.sid ?? {};
  if (typeof sid !== 'object' || sid === null) fail('sid', "an object like { header: 'x-session-id' }", sid);
  const header = sid.header;
  if (header !== undefined && (typeof header !== 'string' || !/^[A-Za-z0-9-]{1,64}$/.test(header))) {
    fail('sid.header', 'an HTTP header name (letters, digits, dashes)', header);
  }
  const auth = input.auth ?? {};
  const userKey = auth.userKey ?? 'user';
  if (typeof userKey !== 'string' || userKey === '' || userKey === '__proto__') fail('auth.userKey', 'a non-empty string', userKey);
  const userId = auth.userId ?? defaultUserId;
  if (typeof userId !== 'function') fail('auth.userId', 'a function returning the user\'s id', userId);
  const maxSessionsPerUser = auth.maxSessionsPerUser ?? 100;
  if (!Number.isInteger(maxSessionsPerUser) || maxSessionsPerUser < 1) fail('auth.maxSessionsPerUser', 'a positive integer', maxSessionsPerUser);

  return {
    name, master, mirrors: [...mirrors], mirrorWrites, maxPendingMirrorWrites, storeTimeout, locker, ttl, lockTimeout, absoluteTtl, rolling, prefix, genid, serializer,
    cookie: resolveCookie(input.cookie ?? {}, name, ttl),
    header: header?.toLowerCase(),
    userKey,
    userId,
    maxSessionsPerUser,
  };
}

function defaultUserId(user: unknown): string | number {
  if (typeof user === 'string' || typeof user === 'number') return user;
  const id = (user as { id?: unknown } | null)?.id;
  if (typeof id === 'string' || typeof id === 'number') return id;
  throw new TypeError('koa-locked-session: cannot tell the logged-in user\'s id: give the user an `id` (string or number) or pass `auth: { userId: (user) => ... }` to session()');
}

function resolveCookie(input: CookieOptions, sessionName: string, ttl: number): ResolvedCookieOptions {
  if (typeof input !== 'object' || input === null) fail('cookie', 'an object', input);
  const d = DEFAULTS.cookie;
  const name = input.name ?? (sessionName === DEFAULTS.name ? d.name : `${sessionName}.sid`);
  if (typeof name !== 'string' || !COOKIE_NAME.test(name)) fail('cookie.name', 'a cookie name (letters, digits and !#$%&\'*+-.^_`|~)', name);
  const domain = input.domain;
  if (domain !== undefined && (typeof domain !== 'string' || !/^\.?[A-Za-z0-9.-]+$/.test(domain))) fail('cookie.domain', 'a host name', domain);
  const path = input.path ?? d.path;
  if (typeof path !== 'string' || !/^\/[\x21-\x3A\x3C-\x7E]*$/.test(path)) fail('cookie.path', "a path starting with '/'", path);
  const maxAge = input.maxAge ?? ttl;
  if (maxAge !== 'session' && (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge <= 0)) {
    fail('cookie.maxAge', "a positive number of ms or 'session'", maxAge);
  }
  const httpOnly = bool('cookie.httpOnly', input.httpOnly, d.httpOnly);
  const secure = input.secure ?? d.secure;
  if (secure !== true && secure !== false && secure !== 'auto') fail('cookie.secure', "true, false or 'auto'", secure);
  const sameSite = input.sameSite ?? d.sameSite;
  if (!['strict', 'lax', 'none', false].includes(sameSite)) fail('cookie.sameSite', "'strict', 'lax', 'none' or false", sameSite);
  const partitioned = bool('cookie.partitioned', input.partitioned, d.partitioned);
  const signed = bool('cookie.signed', input.signed, d.signed);
  if (secure === false && (sameSite === 'none' || partitioned)) {
    fail('cookie.secure', `true or 'auto' with ${partitioned ? 'partitioned' : "sameSite: 'none'"}`, secure, 'Browsers drop such cookies unless they are Secure');
  }
  return { name, domain, path, maxAge, httpOnly, secure, sameSite, partitioned, signed };
}
