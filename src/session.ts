import * as auth from './auth.js';
import type { LoginOptions } from './auth.js';
import { RequestSession, type SessionRuntime } from './request.js';
import type { SessionData } from './session-data.js';
import type { Context } from 'koa';

export type { LoginOptions } from './auth.js';
export type { SessionRuntime } from './request.js';

/** The data inside a lock scope: your session object, which `await using` releases. */
export type LockedSession<T extends object = SessionData> = T & AsyncDisposable;

/** The logged-in user's type: `SessionData['user']` when declared. */
export type UserOf<T> = T extends {
  /** The session field `login()` writes. */
  user?: infer U;
} ? U : unknown;

/**
 * `ctx.session`: a lockable handle on one request's session. Data changes only
 * inside a lock scope (`withLock`, `lock`), which reads the record fresh under
 * the lock and saves it (master, then mirrors) when the scope ends.
 *
 * The handle is not the data: assigning any property of it (`ctx.session.views = 1`,
 * the koa-session habit) throws a TypeError naming `withLock`, in strict and
 * sloppy code alike, instead of being silently lost.
 */
export class SessionHandle<T extends object = SessionData> {
  readonly #req: RequestSession;

  /** @internal Built lazily by the middleware on first access to `ctx[name]`. */
  constructor(ctx: Context, runtime: SessionRuntime) {
    this.#req = new RequestSession(ctx, runtime);
  }

  /** The session id, or `undefined` for a new session that has not been saved yet. */
  get id(): string | undefined {
    return this.#req.sid;
  }

  /** True when the client brought no valid, live session (no cookie, a refused one, or one whose record is gone). */
  get isNew(): boolean {
    return this.#req.isNew;
  }

  /**
   * Run `fn` under the session lock on data read fresh from the master, then
   * save it if it changed. If `fn` throws, nothing is saved and the error propagates.
   * Built on the same enter/leave path as {@link lock}.
   * @returns what `fn` returns.
   * @example await ctx.session.withLock((s) => { s.count = (s.count ?? 0) + 1; });
   */
  withLock<R>(fn: (data: T) => R | Promise<R>): Promise<R> {
    return this.#req.run(fn as unknown as (data: Record<string, unknown>) => R | Promise<R>);
  }

  /**
   * The same scope as {@link withLock}, block-shaped: leaving the block saves and releases.
   * JavaScript does not tell a disposer that its block threw, so changes made
   * before a throw are saved; use `withLock` when a throw must discard them.
   * @example { await using s = await ctx.session.lock(); s.visits = (s.visits ?? 0) + 1; }
   */
  lock(): Promise<LockedSession<T>> {
    return this.#req.lock() as unknown as Promise<LockedSession<T>>;
  }

  /**
   * A read-only snapshot of the session data without taking the lock (`{}` for a
   * new session): at most one master read per request. Writing to it throws.
   */
  get(): Promise<Readonly<T>> {
    return this.#req.get() as Promise<Readonly<T>>;
  }

  /** A new sid for the same data; the old sid is destroyed in every store (session-fixation defence). */
  async regenerate(): Promise<void> {
    await this.#req.run((_data, scope) => {
      scope.regenerate = true;
    });
  }

  /** Delete the session in every store and clear its cookie. */
  destroy(): Promise<void> {
    return auth.destroy(this.#req);
  }

  /** Extend the session's expiry (store and cookie) without changing its data. */
  async touch(): Promise<void> {
    await this.#req.run((_data, scope) => {
      scope.touch = true;
    });
  }

  // ---- auth (src/auth.ts) ---------------------------------------------------

  /**
   * Log `user` in: a new sid (the old one is dead in every store: session-fixation
   * defence) holding the user under the `auth.userKey` option (default `user`).
   * @example await ctx.session.login({ id: '42', name: 'Ada' }, { remember: false });
   */
  login(user: UserOf<T>, options: LoginOptions = {}): Promise<void> {
    return auth.login(this.#req, user, options);
  }

  /** Log out: the session's data and sid are destroyed everywhere; the old cookie no longer works. */
  logout(): Promise<void> {
    return this.destroy();
  }

  /**
   * The logged-in user, or `undefined`. (Was `user()`: as a method, `ctx.session.user`
   * was truthy for everyone, so the koa-session habit `if (ctx.session.user)` let every
   * anonymous request in; reading `ctx.session.user` now throws, see `auth.legacyUserMethod`.)
   * @example const user = await ctx.session.currentUser();
   */
  currentUser(): Promise<UserOf<T> | undefined> {
    return auth.userOf(this.#req) as Promise<UserOf<T> | undefined>;
  }

  /**
   * Not the session data: reading it throws a TypeError naming `currentUser()`, so
   * `if (ctx.session.user)` can never let an anonymous request in. With the deprecated
   * `auth: { legacyUserMethod: true }` it is still the old name of {@link currentUser}.
   * @deprecated Use `await ctx.session.currentUser()`.
   */
  get user(): never {
    if (!this.#req.options.legacyUserMethod) throw notData('user', 'the logged-in user is `await ctx.session.currentUser()`');
    warnLegacyUser();
    return (() => this.currentUser()) as never;
  }

  /**
   * koa-session's per-session cookie lifetime: not a member of the handle. Reading or
   * assigning it throws a TypeError naming `login(user, { ttl, remember })` and the
   * `ttl` / `cookie.maxAge` options.
   */
  get maxAge(): never {
    throw maxAgeError();
  }

  /** koa-session's `save()`: not a member. A scope saves when it ends; reading it throws naming `withLock`. */
  get save(): never {
    throw notData('save', 'a scope saves when it ends: `await ctx.session.withLock((s) => { … })` (or `await using s = await ctx.session.lock()`)');
  }

  /** `JSON.stringify(ctx.session)` throws: the handle holds no data; serialize `await ctx.session.get()`. */
  toJSON(): never {
    throw notData('toJSON', 'serialize the data: `JSON.stringify(await ctx.session.get())`');
  }

  /**
   * The ids of `user`'s live sessions (every device), from the per-user index beside the master.
   * Throws (500) when this request's own session is logged in as `user` but missing
   * from the index: the index was lost (evicted), so the list would be incomplete.
   */
  sessionsOf(user: UserOf<T>): Promise<string[]> {
    return auth.sessionsOf(this.#req, user);
  }

  /**
   * Destroy every session of `user` in every store ("sign out other devices",
   * password change). `except`: sids to keep, e.g. `ctx.session.id`.
   * @returns the sids destroyed.
   *
   * No session escapes, whatever runs concurrently (issue 11, item 4). Every
   * index update follows two rules (`indexAdd`/`indexRemove`, src/index-upkeep.ts): a sid is listed
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
  revokeAll(user: UserOf<T>, options: { except?: string | readonly string[] } = {}): Promise<string[]> {
    return auth.revokeAll(this.#req, user, options);
  }

  /**
   * @internal Called by the middleware when the downstream middleware settled.
   * A `lock()` never disposed (no `await using`) would hold the session's lock
   * for good: it is ended here, saved when the request succeeded and discarded
   * when it failed, and reported once per process.
   */
  end(failed: boolean): Promise<void> | undefined {
    return this.#req.end(failed);
  }
}

/**
 * No silent footguns (issue 14): a write to the handle throws in sloppy code too,
 * where a frozen object would ignore it. Methods and getters become accessors
 * with a throwing setter (a getter returning the method is inlined: no cost per
 * call), and a Proxy at the end of the prototype chain refuses every other name
 * (`ctx.session.views = 1` reaches it because the handle has no such property).
 * Reads of unknown names are not trapped, so the Proxy is never on a hot path.
 */
function refuseWrite(key: string | symbol): never {
  const name = typeof key === 'symbol' ? key.toString() : key;
  throw new TypeError(
    `koa-locked-session: ctx.session.${name} = … does nothing: ctx.session is a handle, not the session data. ` +
      `Change data inside \`await ctx.session.withLock((s) => { s.${typeof key === 'symbol' ? 'key' : name} = … })\`; to end the session call \`await ctx.session.destroy()\``,
  );
}

/**
 * No silent reads either (issue 20 item 5): koa-session code reads data off
 * `ctx.session` (`ctx.session.views`, `if (ctx.session.userId)`); on the handle such a
 * read would be `undefined` (or, for a method, truthy) without a word. An unknown name
 * reaching the end of the prototype chain throws instead, naming `get()` and
 * `withLock`. Names that runtimes probe on any object pass as `undefined`: `then`
 * (`await` and `return` from an async function look it up), symbols (util.inspect,
 * `Symbol.toPrimitive`, disposal) and the few duck-typing probes below (util.inspect
 * asks for `href` to tell a URL).
 */
const PROBED = new Set(['then', 'href', 'inspect', 'asymmetricMatch', '$$typeof', 'nodeType', 'tagName', 'toJSON', 'catch', 'finally', 'constructor']);

function notData(name: string, fix: string): TypeError {
  return new TypeError(
    `koa-locked-session: ctx.session.${name} is not the session data: ctx.session is a handle. ` +
      `Read the data with \`await ctx.session.get()\` (or inside \`withLock\`); ${fix}`,
  );
}

function unknownRead(key: string): TypeError {
  return notData(key, `change it inside \`await ctx.session.withLock((s) => { s.${key} = … })\``);
}

function maxAgeError(): TypeError {
  return new TypeError(
    'koa-locked-session: ctx.session.maxAge is not a member of the handle. A session\'s lifetime comes from ' +
      '`await ctx.session.login(user, { ttl, remember })` (remember: false gives a browser-session cookie), ' +
      'or for every session from the `ttl` and `cookie.maxAge` options of session()',
  );
}

let legacyUserWarned = false;
function warnLegacyUser(): void {
  if (legacyUserWarned) return;
  legacyUserWarned = true;
  process.emitWarning('ctx.session.user() is deprecated: use await ctx.session.currentUser() (auth.legacyUserMethod goes away in the next release)', {
    type: 'DeprecationWarning',
    code: 'KOA_LOCKED_SESSION_USER',
  });
}

const TRAPS = new Set<string | symbol>(['user', 'save']);

for (const key of Reflect.ownKeys(SessionHandle.prototype)) {
  if (key === 'constructor') continue;
  if (key === 'maxAge') {
    Object.defineProperty(SessionHandle.prototype, key, { get: () => { throw maxAgeError(); }, set: () => { throw maxAgeError(); }, enumerable: false, configurable: true });
    continue;
  }
  if (TRAPS.has(key)) {
    const descriptor = Object.getOwnPropertyDescriptor(SessionHandle.prototype, key)!;
    Object.defineProperty(SessionHandle.prototype, key, { ...descriptor, set: () => refuseWrite(key) });
    continue;
  }
  const descriptor = Object.getOwnPropertyDescriptor(SessionHandle.prototype, key)!;
  if ('value' in descriptor) {
    const method = descriptor.value as unknown;
    Object.defineProperty(SessionHandle.prototype, key, { get: () => method, set: () => refuseWrite(key), enumerable: false, configurable: true });
  } else if (descriptor.set === undefined) {
    Object.defineProperty(SessionHandle.prototype, key, { ...descriptor, set: () => refuseWrite(key) });
  }
}
Object.setPrototypeOf(
  SessionHandle.prototype,
  new Proxy(Object.create(Object.prototype) as object, {
    set: (_target, key) => refuseWrite(key),
    get: (target, key, receiver) => {
      if (typeof key === 'symbol' || PROBED.has(key) || key in target) return Reflect.get(target, key, receiver);
      throw unknownRead(key);
    },
  }),
);
