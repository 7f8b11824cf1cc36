import type { HandoffOptions } from './core/local-queue.js';
import type { GroupCommitOptions } from './core/group-commit.js';
import { MemoryLocker } from './memory/locker.js';
import { isLocker, type Locker } from './contracts/locker.js';
import type { MigrationSource } from './migrate/source.js';
import type { MirrorWrites } from './core/replica.js';
import { jsonSerializer, type Serializer } from './core/serialize.js';
import { MemoryStore } from './memory/store.js';
import { isRequestStore, type RequestStore, type Store } from './contracts/store.js';
import { Validator } from './util/validate.js';
import { COOKIE_DEFAULTS, resolveCookieAttributes, type CookieAttributes } from './sid/cookie-attributes.js';

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
  /**
   * The store reads come from and writes go to first, or a {@link RequestStore}
   * (CookieStore: the session travels in the cookie). @default new MemoryStore()
   */
  master?: Store | RequestStore;
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
  /**
   * Lease handoff for hot sessions: when a scope ends while another scope of the
   * same session waits in this process, the lock passes to it directly (no
   * release and re-acquire at the locker) and it starts on the record just
   * written. After `maxHandoffs` handoffs in a row or `maxMs` since the lock was
   * acquired, it goes back to the locker's queue so other processes get their
   * turn. `false` turns it off (every scope acquires from the locker).
   * @default { maxHandoffs: 64, maxMs: 250 } (measured: 50 connections on one session, RedisStore + RedisLocker)
   */
  handoff?: Partial<HandoffOptions> | false;
  /**
   * Group commit for hot sessions (rides on `handoff`): a scope that ends while
   * another scope of the same session waits in this process does not write; it
   * hands its unsaved record over with the lock and waits. The changes of up to
   * `maxScopes` scopes go to the master in one write, and each request is
   * answered only after the write that holds its change is acknowledged; if
   * that write fails, every scope in it fails (503) and none is saved. A batch
   * takes no new scope `maxMs` after its first, and is written by then even if
   * the scope holding it still runs. `false` turns it off (every
   * scope writes its own change before the next one starts). Needs `handoff`.
   * See docs/group-commit.md for what your code can observe.
   * @default { maxScopes: 32, maxMs: 20 }
   */
  groupCommit?: Partial<GroupCommitOptions> | false;
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
  sid?: {
    /** Request/response header carrying the signed sid instead of the cookie (`[A-Za-z0-9-]`, at most 64 chars). */
    header?: string;
  };
  /** Auth helpers (`login`, `logout`, `currentUser`, `sessionsOf`, `revokeAll`). */
  auth?: AuthOptions;
  /**
   * Keep users logged in when replacing koa-session, koa-generic-session or
   * express-session: a request without a valid session of ours but with a
   * valid old one has the old data moved into the master under a new sid,
   * exactly once (under the lock), then the old session retired. Needs a
   * server-side master (the "already moved" markers live there).
   * See docs/migrating.md.
   * @example session({ master, migrateFrom: expressSession({ store: oldStore, secret: OLD_SECRET }) })
   * @default [] (no migration)
   */
  migrateFrom?: MigrationSource | readonly MigrationSource[];
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
  /**
   * @deprecated Keeps `ctx.session.user()`, renamed `currentUser()`, for one release
   * (a DeprecationWarning once per process). It brings back the trap the rename
   * removes: `if (ctx.session.user)` is true for every request, logged in or not.
   * @default false (`ctx.session.user` throws a TypeError naming `currentUser()`)
   */
  legacyUserMethod?: boolean;
}

/** The cookie options with every default applied. */
export interface ResolvedCookieOptions extends CookieAttributes {
  maxAge: number | 'session';
  signed: boolean;
}

/** The options with every default applied: what the middleware runs on. */
export interface ResolvedOptions {
  name: string;
  master: Store | RequestStore;
  mirrors: readonly Store[];
  mirrorWrites: MirrorWrites;
  maxPendingMirrorWrites: number;
  storeTimeout: number;
  locker: Locker;
  /** Lease handoff bounds (`false`: off); `maxMs` already capped by the locker's lease. */
  handoff: HandoffOptions | false;
  /** Group commit bounds (`false`: off, always off when handoff is). */
  groupCommit: GroupCommitOptions | false;
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
  /** `auth.legacyUserMethod`: the handle still answers `user()` (deprecated). */
  legacyUserMethod: boolean;
  /** The migration sources, in the order they are asked (empty: no migration). */
  migrateFrom: readonly MigrationSource[];
}

/** Defaults in one place (stores and lockers are created per `session()` call). */
export const DEFAULTS = Object.freeze({
  /** Context property of the handle: `ctx.session`. */
  name: 'session',
  /** A scope ends after the mirrors are written. */
  mirrorWrites: 'await' as MirrorWrites,
  /** Most background mirror writes in flight at once; more are dropped and reported. */
  maxPendingMirrorWrites: 1000,
  /** Bound on every store call, in ms. */
  storeTimeout: 2000,
  /** Server-side idle expiry in ms (24 h). */
  ttl: 24 * 60 * 60 * 1000,
  /** Most ms a scope waits for the lock. */
  lockTimeout: 5000,
  /** Lease handoff bounds (measured: 50 connections on one session, RedisStore + RedisLocker). */
  handoff: Object.freeze({
    /** Most handoffs in a row before the lease goes back to the locker's queue. */
    maxHandoffs: 64,
    /** Most ms the lease stays in this process by handoffs, counted from its acquire. */
    maxMs: 250,
  }),
  /** Group commit bounds (measured: 50 connections on one session, RedisStore + RedisLocker). */
  groupCommit: Object.freeze({
    /** Most scopes whose changes one master write carries. */
    maxScopes: 32,
    /** Most ms a batch takes new scopes, counted from its first. */
    maxMs: 20,
  }),
  /** The expiry is renewed on saves and `touch()` only, not on every request. */
  rolling: false,
  /** No key prefix in the stores and the locker. */
  prefix: '',
  /** The sid cookie: path `/`, HttpOnly, SameSite=Lax, Secure on HTTPS, not partitioned, signed. */
  cookie: Object.freeze({
    /** Cookie name of the default session (a named session uses `<name>.sid`). */
    name: 'sid',
    ...COOKIE_DEFAULTS,
    /** Signed with `app.keys`. */
    signed: true,
  }),
});

// Names that would shadow Koa's own context members.
const RESERVED_NAMES = new Set([
  'app',
  'req',
  'res',
  'request',
  'response',
  'originalUrl',
  'cookies',
  'state',
  'body',
  'status',
  'message',
  'headers',
  'header',
  'method',
  'url',
  'path',
  'query',
  'querystring',
  'host',
  'hostname',
  'href',
  'ip',
  'ips',
  'secure',
  'protocol',
  'type',
  'length',
  'socket',
  'throw',
  'assert',
  'onerror',
  'respond',
  'redirect',
  'attachment',
  'set',
  'get',
  'append',
  'remove',
  'is',
  'accepts',
  'fresh',
  'stale',
  'inspect',
  'toJSON',
  'constructor',
  '__proto__',
]);

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/;
const PREFIX = /^[A-Za-z0-9_:.-]{0,64}$/;

const check = new Validator('');
const fail = check.fail.bind(check);

/** Every option of session(); anything else fails at session() time (see {@link PEER_OPTION_HINTS}). */
const OPTION_NAMES = [
  'name',
  'master',
  'mirrors',
  'mirrorWrites',
  'maxPendingMirrorWrites',
  'storeTimeout',
  'locker',
  'handoff',
  'groupCommit',
  'ttl',
  'lockTimeout',
  'absoluteTtl',
  'rolling',
  'prefix',
  'genid',
  'serializer',
  'cookie',
  'sid',
  'auth',
  'migrateFrom',
] as const;
const COOKIE_OPTION_NAMES = ['name', 'domain', 'path', 'maxAge', 'httpOnly', 'secure', 'sameSite', 'partitioned', 'signed'] as const;
const ADAPTERS =
  'wrap a koa-session / koa-generic-session store (koa-redis…) with `fromKoaStore(store)`, an express-session (connect) store with `fromConnectStore(store)`';

/**
 * Options of koa-session, koa-generic-session and express-session that a
 * port brings along, with our equivalent: from plain JavaScript they would
 * otherwise be ignored silently (a `store` never written to, a `key` that
 * names no cookie).
 */
const PEER_OPTION_HINTS: Readonly<Record<string, string>> = {
  key: "The cookie name is `cookie.name`: `session({ cookie: { name: 'koa.sess' } })`",
  store: `The store is \`master\`: \`session({ master: new RedisStore({ client }) })\`; ${ADAPTERS}`,
  maxAge: "Use `ttl` (server-side expiry, ms) and, for the cookie, `cookie.maxAge` (ms, or 'session' for a browser-session cookie)",
  renew: 'No counterpart: `rolling: true` renews the expiry on every request that uses the session',
  resave: 'No counterpart: a session is saved only when a withLock()/lock() scope changed it',
  saveUninitialized: 'No counterpart: a new session is stored only once something is written to it',
  genSid: 'Use `genid` (a function returning a new session id)',
  signed: 'Use `cookie.signed` (signed with `app.keys`)',
  secret: "The sid cookie is signed with Koa's `app.keys`: set `app.keys = [secret]`",
  keys: "The sid cookie is signed with Koa's `app.keys`: set `app.keys = keys`",
  autoCommit: 'No counterpart: changes are saved when the withLock()/lock() scope ends',
  overwrite: 'No counterpart: the sid cookie always replaces an earlier one',
  httpOnly: 'Use `cookie.httpOnly`',
  secure: 'Use `cookie.secure`',
  sameSite: 'Use `cookie.sameSite`',
  domain: 'Use `cookie.domain`',
  path: 'Use `cookie.path`',
  partitioned: 'Use `cookie.partitioned`',
  expires: 'Use `ttl` and `cookie.maxAge`',
  encode: 'Use `serializer: { stringify, parse }`',
  decode: 'Use `serializer: { stringify, parse }`',
  serialize: 'Use `serializer: { stringify, parse }`',
  unserialize: 'Use `serializer: { stringify, parse }`',
  proxy: "Set Koa's `app.proxy = true` behind a TLS-terminating proxy",
  errorHandler: "No counterpart: store failures reach Koa's error handling as a StoreError (status 503)",
};

const COOKIE_HINTS: Readonly<Record<string, string>> = {
  key: 'Use `cookie.name`',
  expires: "Use `cookie.maxAge` (ms, or 'session' for a browser-session cookie)",
  overwrite: 'No counterpart: the sid cookie always replaces an earlier one',
  priority: 'No counterpart',
};

/**
 * Validate `input` and apply the defaults. Returns a new object (the caller's
 * is never mutated); throws a `TypeError` naming the option and the fix.
 */
export function resolveOptions(input: SessionOptions = {}): ResolvedOptions {
  check.object('options', input);
  check.known(input, OPTION_NAMES, PEER_OPTION_HINTS);
  const name = input.name ?? DEFAULTS.name;
  if (typeof name !== 'string' || !IDENTIFIER.test(name)) {
    fail('name', 'a JavaScript identifier (it becomes ctx[name])', name, "The cookie's name is `cookie.name`");
  }
  if (RESERVED_NAMES.has(name)) fail('name', 'a name Koa does not use itself', name, 'Pick another name, e.g. "session" or "cart"');

  const master = input.master ?? new MemoryStore();
  if (!isRequestStore(master)) check.store('master', master);
  const mirrors = input.mirrors ?? [];
  if (!Array.isArray(mirrors)) fail('mirrors', 'an array of Stores', mirrors);
  mirrors.forEach((m, i) => {
    if (isRequestStore(m))
      fail(`mirrors[${i}]`, 'a server-side store', m.name, 'A CookieStore can only be the master: it lives in the browser');
    check.store(`mirrors[${i}]`, m);
    if (m === master) fail(`mirrors[${i}]`, 'a store other than the master', m.name, 'Remove the master from `mirrors`');
  });
  const mirrorWrites = check.oneOf('mirrorWrites', input.mirrorWrites, ['await', 'background'], DEFAULTS.mirrorWrites);

  const maxPendingMirrorWrites = check.positiveInt('maxPendingMirrorWrites', input.maxPendingMirrorWrites, DEFAULTS.maxPendingMirrorWrites);
  const storeTimeout = check.positiveMs('storeTimeout', input.storeTimeout, DEFAULTS.storeTimeout);
  const locker = input.locker ?? new MemoryLocker();
  if (!isLocker(locker)) fail('locker', 'a Locker (an object with acquire(key, options))', locker);

  const handoff = resolveHandoff(input.handoff, locker);
  const groupCommit = resolveGroupCommit(input.groupCommit, handoff);
  const ttl = check.positiveMs('ttl', input.ttl, DEFAULTS.ttl);
  const lockTimeout = check.positiveMs('lockTimeout', input.lockTimeout, DEFAULTS.lockTimeout);
  const absoluteTtl = input.absoluteTtl === undefined ? undefined : check.positiveMs('absoluteTtl', input.absoluteTtl, 0);
  const rolling = check.bool('rolling', input.rolling, DEFAULTS.rolling);
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
  check.known(sid, ['header'], {}, 'sid.');
  const header = sid.header;
  if (header !== undefined && (typeof header !== 'string' || !/^[A-Za-z0-9-]{1,64}$/.test(header))) {
    fail('sid.header', 'an HTTP header name (letters, digits, dashes)', header);
  }
  const auth = check.object('auth', input.auth);
  check.known(auth, ['userKey', 'userId', 'maxSessionsPerUser', 'legacyUserMethod'], {}, 'auth.');
  const userKey = auth.userKey ?? 'user';
  if (typeof userKey !== 'string' || userKey === '' || userKey === '__proto__') fail('auth.userKey', 'a non-empty string', userKey);
  const userId = auth.userId ?? defaultUserId;
  if (typeof userId !== 'function') fail('auth.userId', "a function returning the user's id", userId);
  const maxSessionsPerUser = check.positiveInt('auth.maxSessionsPerUser', auth.maxSessionsPerUser, 100);
  const legacyUserMethod = check.bool('auth.legacyUserMethod', auth.legacyUserMethod, false);
  const migrateFrom = resolveMigrateFrom(input.migrateFrom, master);

  return {
    name,
    master,
    mirrors: [...mirrors],
    mirrorWrites,
    maxPendingMirrorWrites,
    storeTimeout,
    locker,
    handoff,
    groupCommit,
    ttl,
    lockTimeout,
    absoluteTtl,
    rolling,
    prefix,
    genid,
    serializer,
    cookie: resolveCookie(input.cookie ?? {}, name, ttl),
    header: header?.toLowerCase(),
    userKey,
    userId,
    maxSessionsPerUser,
    legacyUserMethod,
    migrateFrom,
  };
}

const SOURCES = 'koaSessionCookie(), genericSession() or expressSession()';

function resolveMigrateFrom(input: SessionOptions['migrateFrom'], master: Store | RequestStore): readonly MigrationSource[] {
  if (input === undefined) return [];
  const sources = (Array.isArray(input) ? [...input] : [input]) as unknown[];
  sources.forEach((source, i) => {
    const s = source as Partial<MigrationSource> | null;
    if (
      typeof s !== 'object' ||
      s === null ||
      typeof s.name !== 'string' ||
      typeof s.read !== 'function' ||
      typeof s.retire !== 'boolean'
    ) {
      fail(Array.isArray(input) ? `migrateFrom[${i}]` : 'migrateFrom', `a migration source (${SOURCES})`, source);
    }
  });
  if (sources.length > 0 && isRequestStore(master)) {
    // Exactly-once needs a shared "already moved" marker; a CookieStore keeps nothing on the server.
    fail(
      'migrateFrom',
      'used with a server-side master',
      master.name,
      'A CookieStore master has nowhere to record that an old session was moved (two overlapping first requests would create two sessions): migrate into a server-side master (RedisStore, MemoryStore in one process, …), or let the old sessions expire',
    );
  }
  return sources as MigrationSource[];
}

/**
 * The handoff bounds. A locker with a lease of fixed length (`leaseMs`,
 * RedisLocker) caps `maxMs` at half of it, so a lease handed over always has
 * half its life left even with renewal off: a lease near its expiry is
 * released to the locker, never passed on.
 */
function resolveHandoff(input: unknown, locker: Locker): HandoffOptions | false {
  if (input === false) return false;
  if (input !== undefined && (typeof input !== 'object' || input === null || Array.isArray(input))) {
    fail('handoff', 'an object like { maxHandoffs: 64, maxMs: 250 }, or false', input, 'Leave it out for the defaults');
  }
  const given = (input ?? {}) as Partial<HandoffOptions>;
  check.known(given, ['maxHandoffs', 'maxMs'], {}, 'handoff.');
  const maxHandoffs = check.positiveInt('handoff.maxHandoffs', given.maxHandoffs, DEFAULTS.handoff.maxHandoffs);
  const maxMs = check.positiveMs('handoff.maxMs', given.maxMs, DEFAULTS.handoff.maxMs);
  const leaseMs = (locker as { leaseMs?: unknown }).leaseMs;
  return { maxHandoffs, maxMs: typeof leaseMs === 'number' && leaseMs > 0 ? Math.min(maxMs, leaseMs / 2) : maxMs };
}

/** The group commit bounds; off with handoff (the batch travels with the handed-over lease). */
function resolveGroupCommit(input: unknown, handoff: HandoffOptions | false): GroupCommitOptions | false {
  if (input === false) return false;
  if (input !== undefined && (typeof input !== 'object' || input === null || Array.isArray(input))) {
    fail('groupCommit', 'an object like { maxScopes: 32, maxMs: 20 }, or false', input, 'Leave it out for the defaults');
  }
  if (handoff === false) {
    if (input === undefined) return false;
    fail(
      'groupCommit',
      'false or left out when handoff is false (a batch travels with the handed-over lock)',
      input,
      'Turn handoff on, or drop groupCommit',
    );
  }
  const given = (input ?? {}) as Partial<GroupCommitOptions>;
  check.known(given, ['maxScopes', 'maxMs'], {}, 'groupCommit.');
  const maxScopes = check.positiveInt('groupCommit.maxScopes', given.maxScopes, DEFAULTS.groupCommit.maxScopes);
  const maxMs = check.positiveMs('groupCommit.maxMs', given.maxMs, DEFAULTS.groupCommit.maxMs);
  return { maxScopes, maxMs };
}

function defaultUserId(user: unknown): string | number {
  if (typeof user === 'string' || typeof user === 'number') return user;
  const id = (user as { id?: unknown } | null)?.id;
  if (typeof id === 'string' || typeof id === 'number') return id;
  throw new TypeError(
    "koa-locked-session: cannot tell the logged-in user's id: give the user an `id` (string or number) or pass `auth: { userId: (user) => ... }` to session()",
  );
}

function resolveCookie(input: CookieOptions, sessionName: string, ttl: number): ResolvedCookieOptions {
  check.object('cookie', input);
  check.known(input, COOKIE_OPTION_NAMES, COOKIE_HINTS, 'cookie.');
  const d = DEFAULTS.cookie;
  const attributes = resolveCookieAttributes(check, input, sessionName === DEFAULTS.name ? d.name : `${sessionName}.sid`);
  const maxAge = input.maxAge ?? ttl;
  if (maxAge !== 'session' && (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge <= 0)) {
    fail('cookie.maxAge', "a positive number of ms or 'session'", maxAge);
  }
  const signed = check.bool('cookie.signed', input.signed, d.signed);
  return { ...attributes, maxAge, signed };
}
