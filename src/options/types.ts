/**
 * The options of session() as a user writes them (SessionOptions, CookieOptions,
 * AuthOptions, each with its TSDoc and @default) and as the middleware runs on
 * them (ResolvedOptions). Types only: the defaults are in ./defaults.ts, the
 * checks in ./resolve.ts; src/options.ts is the public face.
 */
import type { HandoffOptions } from '../core/local-queue.js';
import type { GroupCommitOptions } from '../core/group-commit.js';
import type { Locker } from '../contracts/locker.js';
import type { MigrationSource } from '../migrate/source.js';
import type { MirrorWrites } from '../core/replica.js';
import type { Serializer } from '../core/serialize.js';
import type { RequestStore, Store } from '../contracts/store.js';
import type { CookieAttributes } from '../sid/cookie-attributes.js';

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
