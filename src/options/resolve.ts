/**
 * session()'s option checks: every option validated (a TypeError naming the
 * option, the value and the fix), unknown and foreign options refused, and
 * the defaults of ./defaults.ts applied, giving the ResolvedOptions the
 * middleware runs on.
 */
import type { HandoffOptions } from '../core/local-queue.js';
import type { GroupCommitOptions } from '../core/group-commit.js';
import { MemoryLocker } from '../memory/locker.js';
import { isLocker, type Locker } from '../contracts/locker.js';
import type { MigrationSource } from '../migrate/source.js';
import { jsonSerializer } from '../core/serialize.js';
import { MemoryStore } from '../memory/store.js';
import { isRequestStore, type RequestStore, type Store } from '../contracts/store.js';
import { Validator } from '../util/validate.js';
import { resolveCookieAttributes } from '../sid/cookie-attributes.js';
import { DEFAULTS } from './defaults.js';
import type { CookieOptions, ResolvedCookieOptions, ResolvedOptions, SessionOptions } from './types.js';

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
  const userKey = auth.userKey ?? DEFAULTS.auth.userKey;
  if (typeof userKey !== 'string' || userKey === '' || userKey === '__proto__') fail('auth.userKey', 'a non-empty string', userKey);
  const userId = auth.userId ?? DEFAULTS.auth.userId;
  if (typeof userId !== 'function') fail('auth.userId', "a function returning the user's id", userId);
  const maxSessionsPerUser = check.positiveInt('auth.maxSessionsPerUser', auth.maxSessionsPerUser, DEFAULTS.auth.maxSessionsPerUser);
  const legacyUserMethod = check.bool('auth.legacyUserMethod', auth.legacyUserMethod, DEFAULTS.auth.legacyUserMethod);
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
