import type { Context } from 'koa';
import { debuglog } from 'node:util';
import { ConflictError, SessionError, LockLostError, LockTimeoutError, SessionMovedError, SerializationError, StoreError } from './errors.js';
import type { Lease } from './lockers/locker.js';
import type { InvalidReason } from './events.js';
import type { SessionData } from './koa.js';
import type { ResolvedOptions } from './options.js';
import { readonly } from './readonly.js';
import type { Replica } from './replica.js';
import { Scope } from './scope.js';
import { deserialize, serialize } from './serialize.js';
import { generateSid, isValidSid } from './sid.js';
import { redactSids } from './format.js';
import type { SidTransport } from './sid-transport.js';
import { isRequestStore, type BoundRequestStore } from './stores/store.js';
import type { UserIndex } from './user-index.js';
import type { Lifecycle } from './lifecycle.js';
import { lockChannel } from './diagnostics.js';
import { performance } from 'node:perf_hooks';

const debug = debuglog('koa-locked-session');

let warnedUndisposed = false;
/** Loud, once per process: a `lock()` left open is a bug in the app that would otherwise block the session. */
function warnUndisposed(): void {
  debug('a lock() scope was still open when its request ended');
  if (warnedUndisposed) return;
  warnedUndisposed = true;
  process.emitWarning(
    'koa-locked-session: a ctx.session.lock() scope was still open when its request ended; it was ended for you (saved after a response, discarded after an error). Use `await using s = await ctx.session.lock()` or withLock() so the scope ends with its block',
    { code: 'KOA_LOCKED_SESSION_UNDISPOSED_LOCK' },
  );
}

/** The data inside a lock scope: your session object, which `await using` releases. */
export type LockedSession<T extends object = SessionData> = T & AsyncDisposable;

/** Options of {@link SessionHandle.login}. */
export interface LoginOptions {
  /** `false`: a browser-session cookie (gone when the browser closes). @default true */
  remember?: boolean;
  /** Expiry of this session in ms, instead of the `ttl` option (never longer than it). */
  ttl?: number;
  /** Keep the data of the anonymous session (e.g. a cart); by default login starts from empty data. @default false */
  keepData?: boolean;
}

/** The logged-in user's type: `SessionData['user']` when declared. */
export type UserOf<T> = T extends { user?: infer U } ? U : unknown;

/** Per-session settings stored with the record (set by `login`). */
interface SessionMeta {
  ttl?: number;
  remember?: false;
  /** Creation time (ms since epoch), kept when `absoluteTtl` is set. */
  created?: number;
}

/** Per-user index changes a commit must make: `[userId, sid]` pairs. */
interface IndexPlan {
  remove?: [string | number, string];
  add?: [string | number, string];
}

/**
 * One caller inside a scope: the data as it was when it joined (null: empty;
 * undefined: not serializable), and, for a caller that joined an open scope,
 * the top-level keys it set, deleted or reached into (recorded by its view).
 * The opener works on the data itself (no view on the hot path): its keys are
 * what changed since it opened, less those a joined caller touched.
 */
interface Participant {
  readonly checkpoint: string | null | undefined;
  readonly touched?: Set<string>;
  /** What the caller's function gets: a recording view for a joined caller, the data itself for the opener. */
  readonly view: Record<string, unknown>;
}

/**
 * The data as a joined caller sees it: the same object (its changes are the
 * scope's), recording the top-level keys it sets, deletes or reaches into (an
 * object value read may be changed in place), so a throw can undo just those.
 */
function recordingView(data: Record<string, unknown>, touched: Set<string>): Record<string, unknown> {
  return new Proxy(data, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof key === 'string' && typeof value === 'object' && value !== null) touched.add(key);
      return value;
    },
    set(target, key, value) {
      if (typeof key === 'string') touched.add(key);
      return Reflect.set(target, key, value);
    },
    deleteProperty(target, key) {
      if (typeof key === 'string') touched.add(key);
      return Reflect.deleteProperty(target, key);
    },
    defineProperty(target, key, descriptor) {
      if (typeof key === 'string') touched.add(key);
      return Reflect.defineProperty(target, key, descriptor);
    },
  });
}

/** The record key the per-session settings hide under (never visible in the data). */
const META = '$session';

/** Longest wait for the lock of a session destroyed by `auth.maxSessionsPerUser` (the scope holds its own lock meanwhile). */
const CAP_LOCK_WAIT_MS = 250;

/** Most listing rounds of revokeAll() before it gives up loudly (sessions of the user keep appearing). */
const REVOKE_ROUNDS = 10;

function sameId(a: string | number | undefined, b: string | number): boolean {
  return a === undefined || String(a) === String(b);
}

function indexLost(method: string): SessionError {
  return new SessionError(`koa-locked-session: ${method}() found this request's own logged-in session missing from the user's session index: the index was lost (evicted by the store under memory pressure?), so other sessions of the user may be unlisted. Run the master without eviction (Redis \`maxmemory-policy noeviction\`, memcached \`-M\`); see the README, "sign out everywhere"`, { code: 'ERR_SESSION_INDEX_LOST' });
}

/** What a handle needs from its `session()` call and app, shared by all its requests. */
export interface SessionRuntime {
  readonly options: ResolvedOptions;
  readonly transport: SidTransport;
  readonly index: UserIndex;
  readonly lifecycle: Lifecycle;
  /** The serializer's output for `{}`: a record equal to it is an empty session. */
  readonly empty: string;
  /** Master + mirrors for this app (undefined when the master is a request store: built per request). */
  readonly replica: Replica;
  /** Build the replica for a request-bound master (CookieStore). */
  bindReplica(master: BoundRequestStore): Replica;
}

/**
 * `ctx.session`: a lockable handle on one request's session. Data changes only
 * inside a lock scope (`withLock`, `lock`), which reads the record fresh under
 * the lock and saves it (master, then mirrors) when the scope ends.
 */
export class SessionHandle<T extends object = SessionData> {
  readonly #ctx: Context;
  readonly #rt: SessionRuntime;
  #replica: Replica;
  #bound: BoundRequestStore | undefined;
  #resolved = false;
  #sid: string | undefined;
  #isNew = true;
  #active: Scope | undefined;
  #snapshot: Promise<Readonly<T>> | undefined;
  /** The last record this request saved (`null`: the session was destroyed); feeds get() after a scope. */
  #latest: string | null | undefined;
  #wroteCookie = false;
  #used = false;
  /** Per-session settings of the last record read or written. */
  #meta: SessionMeta | undefined;

  /** @internal Built lazily by the middleware on first access to `ctx[name]`. */
  constructor(ctx: Context, runtime: SessionRuntime) {
    this.#ctx = ctx;
    this.#rt = runtime;
    this.#replica = runtime.replica;
  }

  /** The session id, or `undefined` for a new session that has not been saved yet. */
  get id(): string | undefined {
    this.#resolve();
    return this.#sid;
  }

  /** True when the client brought no valid, live session (no cookie, a refused one, or one whose record is gone). */
  get isNew(): boolean {
    this.#resolve();
    return this.#isNew;
  }

  /**
   * Run `fn` under the session lock on data read fresh from the master, then
   * save it if it changed. If `fn` throws, nothing is saved and the error propagates.
   * @returns what `fn` returns.
   * @example await ctx.session.withLock((s) => { s.count = (s.count ?? 0) + 1; });
   */
  async withLock<R>(fn: (data: T) => R | Promise<R>): Promise<R> {
    const [scope, me] = await this.#enter();
    let result: R;
    try {
      result = await fn(me.view as T);
    } catch (error) {
      await this.#leave(scope, me, true);
      throw error;
    }
    await this.#leave(scope, me, false);
    return result;
  }

  /**
   * The same scope as {@link withLock}, block-shaped: leaving the block saves and releases.
   * JavaScript does not tell a disposer that its block threw, so changes made
   * before a throw are saved; use `withLock` when a throw must discard them.
   * @example { await using s = await ctx.session.lock(); s.visits = (s.visits ?? 0) + 1; }
   */
  async lock(): Promise<LockedSession<T>> {
    const [scope, me] = await this.#enter();
    scope.undisposed.push(me);
    const data = scope.data as LockedSession<T>; // the disposer lives on the data; a joined caller's view passes it through
    if (!Object.prototype.hasOwnProperty.call(data, Symbol.asyncDispose)) {
      // One disposer per data object; `await using` blocks end innermost first.
      const dispose = async (): Promise<void> => {
        const participant = scope.undisposed.pop();
        if (participant) await this.#leave(scope, participant, false); // none left: ended with its request
      };
      Object.defineProperty(data, Symbol.asyncDispose, { value: dispose, enumerable: false, configurable: true });
    }
    return me.view as LockedSession<T>;
  }

  /**
   * A read-only snapshot of the session data without taking the lock (`{}` for a
   * new session): at most one master read per request. Writing to it throws.
   */
  get(): Promise<Readonly<T>> {
    this.#used = true;
    if (this.#snapshot === undefined && this.#latest === undefined && this.#rt.lifecycle.closed) {
      return Promise.reject(new SessionError('koa-locked-session: the session layer is shutting down', { code: 'ERR_SESSION_CLOSED', status: 503, headers: { 'Retry-After': '1' } }));
    }
    if (this.#latest !== undefined) {
      const raw = this.#latest;
      this.#latest = undefined;
      this.#snapshot = Promise.resolve(readonly((raw === null ? {} : (this.#decode(raw, false)?.data ?? {})) as T));
    }
    return (this.#snapshot ??= this.#read());
  }

  /** A new sid for the same data; the old sid is destroyed in every store (session-fixation defence). */
  async regenerate(): Promise<void> {
    await this.withLock(() => {
      this.#active!.regenerate = true;
    });
  }

  /** Delete the session in every store and clear its cookie. */
  async destroy(): Promise<void> {
    await this.withLock((data) => {
      for (const key of Object.keys(data)) delete (data as Record<string, unknown>)[key];
    });
  }

  /** Extend the session's expiry (store and cookie) without changing its data. */
  async touch(): Promise<void> {
    await this.withLock(() => {
      this.#active!.touch = true;
    });
  }

  // ---- auth ---------------------------------------------------------------

  /**
   * Log `user` in: a new sid (the old one is dead in every store: session-fixation
   * defence) holding the user under the `auth.userKey` option (default `user`).
   * @example await ctx.session.login({ id: '42', name: 'Ada' }, { remember: false });
   */
  async login(user: UserOf<T>, options: LoginOptions = {}): Promise<void> {
    const { remember = true, ttl, keepData = false } = options;
    if (user === undefined || user === null) throw new TypeError('koa-locked-session: login(user) needs a user; to log out call logout()');
    if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0)) {
      throw new TypeError(`koa-locked-session: Expected login \`ttl\` to be a positive number of ms, got \`${String(ttl)}\``);
    }
    if (typeof remember !== 'boolean') throw new TypeError(`koa-locked-session: Expected login \`remember\` to be a boolean, got \`${String(remember)}\``);
    await this.withLock((data) => {
      const scope = this.#active!;
      if (!keepData) for (const key of Object.keys(data)) delete (data as Record<string, unknown>)[key];
      (data as Record<string, unknown>)[this.#rt.options.userKey] = user;
      scope.regenerate = true;
      const meta: SessionMeta = {};
      if (ttl !== undefined) meta.ttl = Math.min(ttl, this.#rt.options.ttl);
      if (!remember) meta.remember = false;
      if (this.#rt.options.absoluteTtl !== undefined) meta.created = Date.now(); // a login starts the absolute clock anew
      scope.meta = Object.keys(meta).length > 0 ? meta : undefined;
    });
  }

  /** Log out: the session's data and sid are destroyed everywhere; the old cookie no longer works. */
  logout(): Promise<void> {
    return this.destroy();
  }

  /** The logged-in user, or `undefined`. */
  async user(): Promise<UserOf<T> | undefined> {
    const data = (await this.get()) as Record<string, unknown>;
    return data[this.#rt.options.userKey] as UserOf<T> | undefined;
  }

  /**
   * The ids of `user`'s live sessions (every device), from the per-user index beside the master.
   * Throws (500) when this request's own session is logged in as `user` but missing
   * from the index: the index was lost (evicted), so the list would be incomplete.
   */
  async sessionsOf(user: UserOf<T>): Promise<string[]> {
    const uid = this.#rt.options.userId(user);
    const master = this.#indexStore();
    const sids = await this.#rt.index.list(master, uid);
    if (await this.#unlisted(uid, sids)) throw indexLost('sessionsOf');
    return sids;
  }

  /**
   * Destroy every session of `user` in every store ("sign out other devices",
   * password change). `except`: sids to keep, e.g. `ctx.session.id`.
   * @returns the sids destroyed.
   *
   * No session escapes, whatever runs concurrently (issue 11, item 4). Every
   * index update follows two rules (`#indexAdd`/`#indexRemove`): a sid is listed
   * only once its record exists, and a regenerate/login lists the new sid BEFORE
   * it destroys the old one, all under the old sid's lock; a sid is unlisted only
   * after its record is gone. So at every instant, a live session S of the user
   * whose login or regenerate has completed is either listed, or is being created
   * by a regenerate that holds the lock of a listed, still-live predecessor. Each
   * round lists the index, destroys every listed sid under its lock (waiting out
   * any regenerate in flight, whose new sid is then listed) and unlists them. We
   * return only after a listing that holds nothing but `except`: at that instant no
   * such S exists. If sessions keep appearing (logins racing the revoke) for
   * REVOKE_ROUNDS rounds, we throw instead of reporting success.
   * A login that has not completed when revokeAll starts counts as one after it.
   */
  async revokeAll(user: UserOf<T>, options: { except?: string | readonly string[] } = {}): Promise<string[]> {
    const except = typeof options.except === 'string' ? [options.except] : (options.except ?? []);
    const uid = this.#rt.options.userId(user);
    const master = this.#indexStore();
    const destroyed: string[] = [];
    let lost: boolean | undefined;
    for (let round = 0; round < REVOKE_ROUNDS; round++) {
      const entries = await this.#rt.index.entries(master, uid);
      lost ??= await this.#unlisted(uid, entries);
      const listed = entries.filter((sid) => !except.includes(sid));
      if (listed.length === 0) {
        if (lost) throw indexLost('revokeAll');
        return destroyed;
      }
      for (const sid of listed) if (await this.#revokeOne(sid, uid)) destroyed.push(sid);
      await this.#rt.index.remove(master, uid, listed);
    }
    throw new SessionError(`koa-locked-session: revokeAll() destroyed ${destroyed.length} sessions but new ones of this user kept appearing for ${REVOKE_ROUNDS} rounds (logins racing the revoke); not all may be gone: call it again`);
  }

  /** Destroy one listed session under its lock; true if it was live and this user's. */
  async #revokeOne(sid: string, uid: string | number): Promise<boolean> {
    if (sid === this.#sid) {
      const live = (await this.user()) !== undefined;
      await this.destroy(); // joins this request's own scope if one is open
      return live;
    }
    return this.#destroyListed(sid, uid, await this.#acquire(this.#key(sid)));
  }

  /**
   * Destroy a listed session while holding its lock (`lease`, released here): it is
   * read, and deleted only if it is live and still `uid`'s (an entry left by a failed
   * user change may list another user's session), conditionally on the version read;
   * mirrors get a tombstone that outlives any late write. A tombstone means the
   * session moved (regenerate): its successor is listed, the next round takes it.
   * @returns true if a live session was destroyed.
   */
  async #destroyListed(sid: string, uid: string | number, lease: Lease): Promise<boolean> {
    const key = this.#key(sid);
    try {
      const store = this.#replica.withMaster(lease.store ?? this.#replica.master);
      const record = await store.read(key);
      if (record?.value === undefined) return false;
      const owner = this.#decode(record.value, false)?.data[this.#rt.options.userKey];
      if (owner !== undefined && !sameId(this.#ownerId(owner), uid)) return false;
      if (lease.lost) throw new LockLostError();
      if (!(await store.write(key, undefined, record.version + 1, this.#rt.options.ttl, record.version, 0))) throw new ConflictError();
      return true;
    } finally {
      await lease.release();
    }
  }

  #ownerId(user: unknown): string | number | undefined {
    try {
      return this.#rt.options.userId(user);
    } catch {
      return undefined; // unknown owner: treat as this user's (revoking too much is the safe side)
    }
  }

  /**
   * Eviction check (item 16): this request's own session is logged in as `uid`
   * and live, yet the index does not list it. Every completed login is listed, so
   * the index (or part of it) was lost, e.g. evicted by a store under memory
   * pressure, and a listing cannot be trusted to be complete.
   */
  async #unlisted(uid: string | number, listed: readonly string[]): Promise<boolean> {
    const sid = this.#sid;
    if (sid === undefined || this.#active !== undefined || listed.includes(sid)) return false;
    const user = (await this.get()) as Record<string, unknown>;
    const owner = user[this.#rt.options.userKey];
    return owner !== undefined && this.#sid === sid && sameId(this.#ownerId(owner), uid);
  }

  /** The master, for the user index; a client-side master has nowhere to keep one. */
  #indexStore() {
    this.#resolve();
    if (this.#bound) {
      throw new SessionError('koa-locked-session: sessionsOf()/revokeAll() need a server-side master store; a CookieStore keeps each session in its browser, where the server cannot reach it. Use RedisStore, MongoStore, MemcachedStore or MemoryStore as master');
    }
    return this.#replica.master;
  }

  /**
   * @internal Called by the middleware when the downstream middleware settled.
   * A `lock()` never disposed (no `await using`) would hold the session's lock
   * for good: it is ended here, saved when the request succeeded and discarded
   * when it failed, and reported once per process.
   */
  async end(failed: boolean): Promise<void> {
    const scope = this.#active;
    if (scope && !scope.closing && scope.undisposed.length > 0 && scope.participants === scope.undisposed.length) {
      warnUndisposed();
      for (let p = scope.undisposed.pop(); p; p = scope.undisposed.pop()) await this.#leave(scope, p, failed);
    }
    if (!failed) await this.#finish();
  }

  async #finish(): Promise<void> {
    if (!this.#used) return;
    const ctx = this.#ctx;
    // A response that depends on the session must never be served to another user from a shared cache.
    ctx.vary(this.#rt.transport.vary);
    if (!ctx.response.get('Cache-Control')) ctx.set('Cache-Control', 'private');
    const { rolling } = this.#rt.options;
    if (!rolling || this.#wroteCookie || this.#sid === undefined) return;
    await this.#replica.touch(this.#key(this.#sid), this.#ttl());
    this.#writeCookie(this.#sid);
  }

  // ---- scopes -------------------------------------------------------------

  /**
   * Join the open scope of this handle (a nested or parallel scope of the same
   * request: it holds the lock already), or open a new one once any closing
   * scope has finished.
   */
  async #enter(): Promise<[Scope, Participant]> {
    this.#used = true;
    for (;;) {
      const active = this.#active;
      if (!active) break;
      if (!active.closing) {
        active.participants++;
        try {
          await active.ready;
        } catch (error) {
          active.participants--;
          throw error;
        }
        // Its way back if it throws: the data as it stood when it joined, and what it touches from now on.
        const touched = new Set<string>();
        const joined: Participant = { checkpoint: this.#checkpoint(active), touched, view: recordingView(active.data, touched) };
        active.members.push(joined);
        return [active, joined];
      }
      await active.closed;
    }
    this.#rt.lifecycle.enter();
    const scope = new Scope();
    this.#active = scope;
    scope.ready = this.#open(scope);
    try {
      await scope.ready;
    } catch (error) {
      if (this.#active === scope) this.#active = undefined;
      scope.markClosed();
      this.#rt.lifecycle.leave();
      throw error;
    }
    const opener: Participant = { checkpoint: scope.original ?? null, view: scope.data };
    scope.members.push(opener);
    return [scope, opener];
  }

  /** Take the lock and read the record under it. */
  async #open(scope: Scope): Promise<void> {
    this.#resolve();
    const sid = this.#sid;
    scope.store = this.#replica;
    if (sid === undefined) return; // a new session: nobody else can know its id yet
    const key = this.#key(sid);
    scope.lease = await this.#acquire(key);
    scope.lockedKey = key;
    try {
      if (scope.lease.store) scope.store = this.#replica.withMaster(scope.lease.store);
      const record = await scope.store.read(key);
      // A tombstone: a concurrent request of this browser moved the session (login, regenerate) a moment ago.
      if (record !== undefined && record.value === undefined) throw new SessionMovedError();
      const raw = record?.value;
      const decoded = raw === undefined ? undefined : this.#decode(raw, true);
      if (decoded === undefined || this.#pastAbsolute(decoded.meta)) {
        // No resurrection: the record is gone (destroyed, expired): work on a fresh session with a new sid.
        if (decoded !== undefined && !(await scope.store.write(key, undefined, record!.version + 1, this.#ttl(), record!.version, 0))) throw new ConflictError(); // past its absolute timeout
        if (raw === undefined || decoded !== undefined) this.#emit('session:expired', {});
        this.#forget();
        return;
      }
      scope.sid = sid;
      scope.version = record!.version;
      scope.original = raw;
      scope.data = decoded.data;
      scope.meta = decoded.meta;
      scope.user = decoded.data[this.#rt.options.userKey];
    } catch (error) {
      await this.#release(scope);
      throw error;
    }
  }

  /** The data of the scope serialized now (`undefined` if it cannot be: then a throw fails the whole scope). */
  #checkpoint(scope: Scope): string | null | undefined {
    try {
      return Object.keys(scope.data).length === 0 ? null : serialize(this.#rt.options.serializer, scope.data);
    } catch {
      return undefined;
    }
  }

  /**
   * A participant leaves. Alone, a throw discards the scope (nothing is saved).
   * With others in the scope, a throw restores only the top-level keys this
   * participant changed (not the ones another participant saved since it
   * joined), and a success is saved at once, under the lock still held, so
   * that every promise resolves only after the save that holds its change.
   * The last one out saves and releases the lock.
   */
  async #leave(scope: Scope, me: Participant, threw: boolean): Promise<void> {
    if (threw) {
      if (scope.members.length === 1) scope.failed = true; // alone all along: nothing is saved
      else this.#rollback(scope, me);
    }
    if (--scope.participants > 0) {
      if (!threw) await this.#save(scope, false);
      return;
    }
    scope.closing = true;
    try {
      if (!scope.failed) await this.#save(scope, true);
    } finally {
      await this.#release(scope);
      if (this.#active === scope) this.#active = undefined;
      scope.markClosed();
      this.#rt.lifecycle.leave();
    }
  }

  /** Saves of one scope run one after the other (each is conditional on the version the previous one wrote). */
  async #save(scope: Scope, final: boolean): Promise<void> {
    const run = scope.saving.then(() => {
      if (scope.error) throw scope.error;
      return this.#commit(scope, final);
    });
    scope.saving = run.catch((error: unknown) => {
      scope.error ??= error;
    });
    await run;
  }

  /** The data as `me` found it when it joined, or undefined when that cannot be rebuilt. */
  #before(me: Participant): Record<string, unknown> | undefined {
    if (me.checkpoint === undefined) return undefined;
    if (me.checkpoint === null) return {};
    return this.#decode(me.checkpoint, false)?.data;
  }

  /**
   * The top-level keys `me` changed: what its view recorded (a joined caller),
   * or for the opener what differs from the record it opened on, less the keys
   * a joined caller touched. A key two callers of one request touched at once
   * counts as the joined caller's.
   */
  #keysOf(scope: Scope, me: Participant, before: Record<string, unknown>): string[] {
    if (me.touched) return [...me.touched];
    const others = new Set(scope.members.flatMap((p) => (p === me || !p.touched ? [] : [...p.touched])));
    const keys = new Set([...Object.keys(before), ...Object.keys(scope.data)]);
    return [...keys].filter((key) => !others.has(key) && !this.#sameValue(before[key], scope.data[key]));
  }

  /** Undo the top-level keys `me` changed; what the other callers of the request changed stays. */
  #rollback(scope: Scope, me: Participant): void {
    const before = this.#before(me);
    if (!before) {
      scope.error ??= new SerializationError('koa-locked-session: a scope threw and its changes could not be rolled back (its data could not be serialized when it joined); nothing more is saved');
      return;
    }
    for (const key of this.#keysOf(scope, me, before)) {
      if (Object.prototype.hasOwnProperty.call(before, key)) scope.data[key] = before[key];
      else delete scope.data[key];
    }
  }

  #sameValue(a: unknown, b: unknown): boolean {
    if (a === b) return true;
    if (a === undefined || b === undefined) return false;
    try {
      const { serializer } = this.#rt.options;
      return serialize(serializer, { v: a }) === serialize(serializer, { v: b });
    } catch {
      return false;
    }
  }

  /** Acquire the lock on `key`, publishing the wait on the diagnostics channel. */
  async #acquire(key: string): Promise<Lease> {
    const { locker, lockTimeout, storeTimeout, name } = this.#rt.options;
    const options = { timeoutMs: lockTimeout, storeTimeoutMs: storeTimeout, store: this.#replica.master };
    if (!lockChannel.hasSubscribers) return locker.acquire(key, options);
    const start = performance.now();
    let outcome: 'acquired' | 'timeout' | 'error' = 'error';
    try {
      const lease = await locker.acquire(key, options);
      outcome = 'acquired';
      return lease;
    } catch (error) {
      if (error instanceof LockTimeoutError) outcome = 'timeout';
      throw error;
    } finally {
      lockChannel.publish({ session: name, locker: locker.name, waitMs: performance.now() - start, outcome });
    }
  }

  async #release(scope: Scope): Promise<void> {
    try {
      await scope.lease?.release();
    } catch (error) {
      // The lease expires on its own; the outcome of the scope is already decided.
      debug('lease release failed: %s', redactSids(String((error as Error)?.message ?? error)));
    }
  }

  /**
   * Save what the scope changed: master first, then mirrors; the cookie last.
   * Not `final`: the scope goes on under the lock after this save (a
   * participant left while others remain), so the scope now stands on the
   * record just written.
   */
  async #commit(scope: Scope, final: boolean): Promise<void> {
    if (scope.lease?.lost) throw new LockLostError();
    const { serializer } = this.#rt.options;
    const store = scope.store!;
    const oldSid = scope.sid;
    if (this.#rt.options.absoluteTtl !== undefined && (oldSid === undefined || scope.meta?.created === undefined)) {
      scope.meta = { ...scope.meta, created: Date.now() };
    }
    this.#meta = scope.meta;
    if (this.#bound) this.#bound.sessionCookie = scope.meta?.remember === false || this.#rt.options.cookie.maxAge === 'session';
    if (Object.prototype.hasOwnProperty.call(scope.data, META)) {
      throw new SerializationError(`koa-locked-session: \`${META}\` is a reserved session key (it holds per-session settings); use another name. Nothing was saved.`);
    }
    // Empty is judged on what would be stored: { a: undefined } serializes to {} and is empty too.
    let value = Object.keys(scope.data).length === 0 ? undefined : serialize(serializer, scope.data);
    if (value === this.#rt.empty) value = undefined;

    if (value === undefined) {
      if (oldSid === undefined) {
        this.#latest = null;
        return;
      }
      const plan = this.#indexPlan(scope, oldSid, undefined);
      if (final) this.#lastWrite(scope, plan);
      await this.#write(scope, this.#key(oldSid), undefined);
      this.#forget();
      this.#latest = null;
      await this.#indexRemove(plan);
      this.#stand(scope, undefined, undefined, 0);
      return;
    }
    if (scope.meta) value = serialize(serializer, { ...scope.data, [META]: scope.meta });
    const ttl = this.#ttl();
    if (oldSid === undefined || scope.regenerate) {
      this.#cookieWritable();
      const sid = this.#newSid();
      const plan = this.#indexPlan(scope, oldSid, sid);
      // A fresh id: no lock needed, nobody else knows it; the insert refuses to overwrite anything.
      if (!(await this.#replica.write(this.#key(sid), value, 1, ttl, null))) throw new ConflictError();
      await this.#indexAdd(plan, sid, oldSid); // listed before the old sid dies: see revokeAll
      if (oldSid !== undefined) {
        if (final) this.#lastWrite(scope, plan);
        // The old sid keeps a short tombstone, so that requests of this browser still waiting
        // on it get a retryable 409 instead of writing into a fresh anonymous session.
        await this.#write(scope, this.#key(oldSid), undefined, this.#movedMs());
      }
      this.#adopt(sid, value);
      await this.#indexRemove(plan);
      this.#stand(scope, sid, value, 1);
    } else if (value !== scope.original) {
      const plan = this.#indexPlan(scope, oldSid, oldSid);
      await this.#indexAdd(plan, undefined, oldSid); // the record exists: listed before it changes hands
      if (final) this.#lastWrite(scope, plan);
      await this.#write(scope, this.#key(oldSid), value, ttl);
      this.#adopt(oldSid, value);
      await this.#indexRemove(plan);
      this.#stand(scope, oldSid, value, scope.version + 1);
    } else if (scope.touch) {
      const key = this.#key(oldSid);
      if (final) this.#lastWrite(scope, undefined);
      if (store.master.touch) await this.#storeFor(scope, key).touch(key, ttl);
      else await this.#write(scope, key, value, ttl);
      this.#writeCookie(oldSid);
      scope.touch = false;
    }
  }

  /** After a save the scope stands on the record it wrote (it may go on: see #commit). */
  #stand(scope: Scope, sid: string | undefined, value: string | undefined, version: number): void {
    scope.sid = sid;
    scope.original = value;
    scope.version = version;
    scope.regenerate = false;
    scope.touch = false;
    scope.user = sid === undefined ? undefined : scope.data[this.#rt.options.userKey];
  }

  /** The lease-guarded store for the locked key; the plain replica for any other (a sid this scope just created). */
  #storeFor(scope: Scope, key: string): Replica {
    return key === scope.lockedKey ? scope.store! : this.#replica;
  }

  /**
   * The master write of a scope, conditional on the version it read under the
   * lock: a refusal means the record changed under the lock (lost lease, a
   * late write landed first), so nothing is saved and the request fails.
   * `ttl`: the record's expiry, or for a delete how long the master keeps a tombstone.
   */
  async #write(scope: Scope, key: string, value: string | undefined, ttl = 0): Promise<void> {
    const store = this.#storeFor(scope, key);
    const applied = value === undefined
      ? await store.write(key, undefined, scope.version + 1, this.#ttl(), scope.version, ttl)
      : await store.write(key, value, scope.version + 1, ttl, scope.version);
    if (!applied) throw new ConflictError();
  }

  /** How long the old sid of a regenerated session answers 409 (retry with the new cookie): past any waiter's lockTimeout. */
  #movedMs(): number {
    return Math.max(1000, 2 * this.#rt.options.lockTimeout);
  }

  /**
   * A save that must send a new cookie is refused before anything is written
   * once the response headers are out (a scope started after the response):
   * the browser could never learn the new sid.
   */
  #cookieWritable(): void {
    if (this.#ctx.headerSent && !this.#bound) {
      throw new SessionError('koa-locked-session: the response was already sent, so a new session cookie cannot be set; nothing was saved. Open session scopes before the response is sent (await them in the middleware)', { status: 500 });
    }
  }

  /**
   * The master write about to happen is the scope's last store operation under
   * the lock when no mirror write must follow it in order and the user index has
   * nothing to do: let the locker release in the same round trip (RedisLocker).
   */
  #lastWrite(scope: Scope, plan: IndexPlan | undefined): void {
    const { mirrors, mirrorWrites } = this.#rt.options;
    if (plan === undefined && (mirrors.length === 0 || mirrorWrites === 'background')) scope.lease?.releaseWithNextWrite?.();
  }

  /** How the per-user index must change when the session moves from `oldSid` to `newSid` (undefined: nothing). */
  #indexPlan(scope: Scope, oldSid: string | undefined, newSid: string | undefined): IndexPlan | undefined {
    if (this.#bound) return undefined; // client-side sessions: no server-side index
    const { userKey, userId } = this.#rt.options;
    const before = scope.user;
    const after = newSid === undefined ? undefined : scope.data[userKey];
    if (before === undefined && after === undefined) return undefined;
    const beforeId = before === undefined ? undefined : userId(before);
    const afterId = after === undefined ? undefined : userId(after);
    if (oldSid === newSid && beforeId === afterId) return undefined;
    const plan: IndexPlan = {};
    if (beforeId !== undefined && oldSid !== undefined) plan.remove = [beforeId, oldSid];
    if (afterId !== undefined && newSid !== undefined) plan.add = [afterId, newSid];
    return plan.add || plan.remove ? plan : undefined;
  }

  /**
   * Index hook 1 of 2, under the lock of the session's old sid: list the session
   * under its (new) user once its record exists and before the old sid's record
   * is destroyed. Past `auth.maxSessionsPerUser` the oldest sessions are
   * destroyed. If the entry cannot be written the commit fails (503) and a new
   * sid's record is removed again: a login that succeeded unlisted could not be
   * revoked, and the old session is left as it was.
   */
  async #indexAdd(plan: IndexPlan | undefined, newSid: string | undefined, oldSid: string | undefined): Promise<void> {
    if (!plan?.add) return;
    const [uid, sid] = plan.add;
    const master = this.#replica.master;
    let over: string[];
    try {
      over = await this.#rt.index.add(master, uid, sid, oldSid === undefined ? [] : [oldSid]);
    } catch (error) {
      // Undo the insert (version 1): the client never learns this sid, no cookie was sent.
      if (newSid !== undefined) await this.#replica.write(this.#key(newSid), undefined, 2, this.#rt.options.ttl, 1, 0).catch(() => false);
      throw error instanceof SessionError ? error : new StoreError(master.name, 'user index update failed; nothing was logged in', { cause: error });
    }
    if (over.length > 0) await this.#capSessions(uid, over);
  }

  /** Index hook 2 of 2: unlist the old sid once its record is gone. A failure leaves a dead entry that later updates prune. */
  async #indexRemove(plan: IndexPlan | undefined): Promise<void> {
    if (!plan?.remove) return;
    try {
      await this.#rt.index.remove(this.#replica.master, plan.remove[0], [plan.remove[1]]);
    } catch (error) {
      debug('user index: removing a dead entry failed (pruned later): %s', (error as Error)?.message);
    }
  }

  /**
   * `auth.maxSessionsPerUser`: destroy the oldest sessions past the cap, each
   * under its own lock, then unlist them. Called while this scope holds its own
   * lock, so the wait for theirs is short: two logins capping each other's old
   * sessions must not wait out `lockTimeout`. A session that cannot be destroyed
   * now stays listed (still revocable) and is retried on the next login.
   */
  async #capSessions(uid: string | number, sids: readonly string[]): Promise<void> {
    const done: string[] = [];
    for (const sid of sids) {
      try {
        const { locker, lockTimeout, storeTimeout } = this.#rt.options;
        const lease = await locker.acquire(this.#key(sid), { timeoutMs: Math.min(lockTimeout, CAP_LOCK_WAIT_MS), storeTimeoutMs: storeTimeout, store: this.#replica.master });
        await this.#destroyListed(sid, uid, lease);
        done.push(sid);
      } catch (error) {
        debug('user index: a session past maxSessionsPerUser could not be destroyed now (retried later): %s', (error as Error)?.message);
      }
    }
    if (done.length > 0) await this.#rt.index.remove(this.#replica.master, uid, done).catch((error: unknown) => debug('user index: unlisting capped sessions failed: %s', (error as Error)?.message));
  }

  /** This session's expiry in ms: login's `ttl` if it set one, else the option; never past the absolute timeout. */
  #ttl(): number {
    const idle = this.#meta?.ttl ?? this.#rt.options.ttl;
    const { absoluteTtl } = this.#rt.options;
    const created = this.#meta?.created;
    if (absoluteTtl === undefined || created === undefined) return idle;
    return Math.max(1, Math.min(idle, created + absoluteTtl - Date.now()));
  }

  #pastAbsolute(meta: SessionMeta | undefined): boolean {
    const { absoluteTtl } = this.#rt.options;
    return absoluteTtl !== undefined && meta?.created !== undefined && Date.now() >= meta.created + absoluteTtl;
  }

  // ---- reads, ids and cookies --------------------------------------------

  async #read(): Promise<Readonly<T>> {
    this.#resolve();
    const sid = this.#sid;
    if (sid === undefined) return readonly({} as T);
    const record = await this.#replica.read(this.#key(sid));
    if (record !== undefined && record.value === undefined) throw new SessionMovedError();
    const raw = record?.value;
    const decoded = raw === undefined ? undefined : this.#decode(raw, true);
    if (raw === undefined || this.#pastAbsolute(decoded?.meta)) {
      // Gone (destroyed, expired): the request is anonymous from now on, and a rolling cookie is not re-sent.
      this.#forget();
      this.#emit('session:expired', {});
      return readonly({} as T);
    }
    if (decoded) this.#meta = decoded.meta;
    return readonly((decoded?.data ?? {}) as T);
  }

  /** Parse a record into the data and the per-session settings hidden in it. */
  #decode(raw: string, report: boolean): { data: Record<string, unknown>; meta: SessionMeta | undefined } | undefined {
    const data = deserialize(this.#rt.options.serializer, raw);
    if (data === undefined) {
      if (report) this.#emit('session:invalid', { reason: 'bad-record' satisfies InvalidReason });
      return undefined;
    }
    if (!(META in data)) return { data, meta: undefined };
    const { [META]: meta, ...rest } = data;
    return { data: rest, meta: this.#checkMeta(meta) };
  }

  /** Per-session settings read back from a record are only trusted within the configured limits. */
  #checkMeta(raw: unknown): SessionMeta | undefined {
    if (typeof raw !== 'object' || raw === null) return undefined;
    const { ttl, remember, created } = raw as Record<string, unknown>;
    const meta: SessionMeta = {};
    const max = this.#rt.options.ttl;
    if (typeof ttl === 'number' && ttl > 0) meta.ttl = Math.min(ttl, max);
    if (remember === false) meta.remember = false;
    if (typeof created === 'number' && Number.isFinite(created)) meta.created = Math.min(created, Date.now());
    return Object.keys(meta).length > 0 ? meta : undefined;
  }

  /** Read the session reference the request brought, once. */
  #resolve(): void {
    if (this.#resolved) return;
    this.#resolved = true;
    const { master } = this.#rt.options;
    if (isRequestStore(master)) {
      const { prefix, cookie } = this.#rt.options;
      this.#bound = master.bindRequest(this.#ctx, {
        onInvalid: (reason) => this.#emit('session:invalid', { reason }),
        prefix,
        maxAge: cookie.maxAge,
      });
      this.#replica = this.#rt.bindReplica(this.#bound);
      this.#sid = this.#bound.sid;
    } else {
      const read = this.#rt.transport.read(this.#ctx);
      if (read.invalid) this.#emit('session:invalid', { reason: read.invalid });
      this.#sid = read.sid;
    }
    this.#isNew = this.#sid === undefined;
  }

  #newSid(): string {
    const { genid } = this.#rt.options;
    if (!genid) return generateSid();
    const sid = genid();
    if (!isValidSid(sid)) {
      throw new SessionError('koa-locked-session: `genid` returned an id that is not 16–128 chars of [A-Za-z0-9_-]; return e.g. crypto.randomBytes(32).toString("base64url")');
    }
    return sid;
  }

  #key(sid: string): string {
    return this.#rt.options.prefix + sid;
  }

  /** The session now lives under `sid` with record `value`. */
  #adopt(sid: string, value: string): void {
    this.#sid = sid;
    this.#latest = value;
    this.#writeCookie(sid);
  }

  /** The client's sid is dead: later scopes start a new session and the stale cookie is cleared. */
  #forget(): void {
    const had = this.#sid !== undefined;
    this.#sid = undefined;
    this.#isNew = true;
    if (had && !this.#bound && !this.#ctx.headerSent) this.#rt.transport.clear(this.#ctx);
    this.#wroteCookie = true;
  }

  #writeCookie(sid: string): void {
    this.#wroteCookie = true;
    if (this.#bound) return; // a request store (CookieStore) writes its own cookie on set/touch
    if (this.#ctx.headerSent) return; // a scope run after the response: same sid, the cookie already sent stays valid
    const { maxAge } = this.#rt.options.cookie;
    const meta = this.#meta;
    const persistent = meta?.ttl !== undefined || meta?.created !== undefined ? Math.min(maxAge === 'session' ? Infinity : maxAge, this.#ttl()) : maxAge;
    this.#rt.transport.write(this.#ctx, sid, meta?.remember === false || maxAge === 'session' ? 'session' : persistent);
  }

  #emit(event: 'session:invalid' | 'session:expired', extra: { reason?: InvalidReason }): void {
    this.#ctx.app.emit(event, { ctx: this.#ctx, name: this.#rt.options.name, ...extra });
  }
}
