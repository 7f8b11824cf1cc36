import * as auth from './auth/auth.js';
import type { LoginOptions } from './auth/auth.js';
import { RequestSession, type SessionRuntime } from './core/request.js';
import type { SessionData } from './session-data.js';
import type { Context } from 'koa';

export type { LoginOptions } from './auth/auth.js';
export type { SessionRuntime } from './core/request.js';

/** The data inside a lock scope: your session object, which `await using` releases. */
export type LockedSession<T extends object = SessionData> = T & AsyncDisposable;

/** The logged-in user's type: `SessionData['user']` when declared. */
export type UserOf<T> = T extends {
  /** The session field `login()` writes. */
  user?: infer U;
}
  ? U
  : unknown;

/** A handle's request (set by the class's static block; the traps below cannot name `#req`). */
let requestOf: (handle: object) => RequestSession | undefined;

/**
 * `ctx.session`: a lockable handle on one request's session. Data changes only
 * inside a lock scope (`withLock`, `lock`), which reads the record fresh under
 * the lock and saves it (master, then mirrors) when the scope ends.
 *
 * The handle is not the data: assigning any property of it (`ctx.session.views = 1`,
 * the koa-session habit) throws a TypeError naming `withLock`, in strict and
 * sloppy code alike, instead of being silently lost; reading a name it does not
 * have (`ctx.session.user`, `ctx.session.views`, `JSON.stringify(ctx.session)`)
 * throws a TypeError naming `get()` / `currentUser()` instead of reading `undefined`.
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

  // ---- auth (src/auth/auth.ts) ---------------------------------------------------

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
   * The logged-in user, or `undefined` (a read of the session, like {@link get}).
   * Named so that no member of the handle reads like session data: `ctx.session.user`
   * (the koa-session habit) throws instead of being a truthy method (issue 20, item 5).
   * @example const user = await ctx.session.currentUser();
   */
  currentUser(): Promise<UserOf<T> | undefined> {
    return auth.userOf(this.#req) as Promise<UserOf<T> | undefined>;
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
   * index update follows two rules (`indexAdd`/`indexRemove`, src/auth/index-upkeep.ts): a sid is listed
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

  static {
    requestOf = (handle) => (#req in handle ? handle.#req : undefined);
  }
}

/**
 * No silent footguns (issues 14 and 20): the handle is not the session data, and
 * code written for koa-session's `ctx.session` object must fail loudly on it
 * rather than read `undefined` (`if (ctx.session.user)` would let everyone in
 * if `user` were a method, and silently deny if it read `undefined`).
 *
 * - Writes throw in sloppy code too, where a frozen object would ignore them:
 *   methods and getters become accessors with a throwing setter (a getter
 *   returning the method is inlined: no cost per call).
 * - A Proxy at the END of the prototype chain refuses every other name, read
 *   or written. Real members are found before it, so their reads never reach
 *   the Proxy: it is never on a hot path.
 * - It does not refuse what JavaScript, Node and libraries probe on any object:
 *   symbols (`util.inspect.custom`, `Symbol.toPrimitive`, `Symbol.asyncDispose`,
 *   `Symbol.iterator`…), Object.prototype's members, and {@link PROBES}.
 *
 * `delete ctx.session.views` cannot be refused here: a delete only looks at the
 * object's own properties, never at its prototype chain, and a Proxy around the
 * handle itself would put every member read on the slow path (and break `#req`).
 * TypeScript rejects it at compile time (`views` is not a member of the handle).
 */

/**
 * Names read by code that inspects any value, answered `undefined` as for a plain object:
 * `then` (`await handle`, returning it from an async function, `Promise.resolve(handle)`),
 * `inspect` (legacy custom inspection, some loggers), `readable` (Koa's
 * `ctx.body = …` stream check, so `ctx.body = ctx.session` fails at JSON
 * serialisation with the toJSON message naming get()), and test-framework
 * matchers' probes (`asymmetricMatch`, `$$typeof`, `nodeType`).
 */
const PROBES: ReadonlySet<string> = new Set(['href', 'then', 'inspect', 'readable', 'asymmetricMatch', '$$typeof', 'nodeType']);

/** `ctx.<name>`, for messages: the session's own name (`session({ name: 'cart' })` → ctx.cart). */
function where(handle: object): string {
  return `ctx.${requestOf(handle)?.options.name ?? 'session'}`;
}

/** Where a session's expiry is set (there is no per-session `maxAge` to change). */
function expiryFix(at: string): string {
  return (
    `a session's expiry is set when the user logs in, \`await ${at}.login(user, { ttl, remember })\` ` +
    `(\`remember: false\`: a browser-session cookie), and for every session by the \`ttl\` and \`cookie.maxAge\` options of \`session({ ... })\``
  );
}

/** The fix for the koa-session members that mean something else here. */
function koaSessionMember(at: string, key: string): string | undefined {
  switch (key) {
    case 'maxAge':
      return `${at}.maxAge does not exist: ${expiryFix(at)}`;
    case 'save':
    case 'manuallyCommit':
      return (
        `${at}.${key}() does not exist: a change is saved when its lock scope ends, \`await ${at}.withLock((s) => { s.views = … })\` ` +
        `saves when fn returns; to extend the expiry without a change call \`await ${at}.touch()\``
      );
    case 'toJSON':
      return `JSON.stringify(${at}) (or \`ctx.body = ${at}\`): ${at} is a handle, not the session data; serialise the data, \`await ${at}.get()\``;
    default:
      return undefined;
  }
}

function refuseWrite(handle: object, key: string | symbol): never {
  const at = where(handle);
  if (key === 'maxAge') throw new TypeError(`koa-locked-session: ${at}.maxAge = … does nothing: ${expiryFix(at)}`);
  const name = typeof key === 'symbol' ? key.toString() : key;
  throw new TypeError(
    `koa-locked-session: ${at}.${name} = … does nothing: ${at} is a handle, not the session data. ` +
      `Change data inside \`await ${at}.withLock((s) => { s.${typeof key === 'symbol' ? 'key' : name} = … })\`; to end the session call \`await ${at}.destroy()\``,
  );
}

function refuseRead(handle: object, key: string): never {
  const at = where(handle);
  const special = koaSessionMember(at, key);
  if (special !== undefined) throw new TypeError(`koa-locked-session: ${special}`);
  const user =
    key === 'user'
      ? `the logged-in user is \`await ${at}.currentUser()\` (renamed from user(), issue 20)`
      : `the logged-in user is \`await ${at}.currentUser()\``;
  throw new TypeError(
    `koa-locked-session: ${at}.${key} is not session data (${at} is a handle, so it would always read undefined). ` +
      `Read the data with \`(await ${at}.get()).${key}\` or inside \`await ${at}.withLock((s) => s.${key})\`; ${user}`,
  );
}

let userWarned = false;

/**
 * The deprecation path of `user()` (opt-in `auth: { legacyUserMethod: true }`): the
 * old method, warning once per process. It brings back the trap it was renamed
 * for (`if (ctx.session.user)` is true for everyone), so it is off by default.
 */
function legacyUser(this: SessionHandle): Promise<unknown> {
  if (!userWarned) {
    userWarned = true;
    process.emitWarning(
      'ctx.session.user() is deprecated: call ctx.session.currentUser() (same result), then drop `auth: { legacyUserMethod: true }`; ' +
        'while it is on, `if (ctx.session.user)` is true for every request, logged in or not',
      { type: 'DeprecationWarning', code: 'KOA_LOCKED_SESSION_USER' },
    );
  }
  return this.currentUser();
}

for (const key of Reflect.ownKeys(SessionHandle.prototype)) {
  if (key === 'constructor') continue;
  const descriptor = Object.getOwnPropertyDescriptor(SessionHandle.prototype, key)!;
  if ('value' in descriptor) {
    const method = descriptor.value as unknown;
    Object.defineProperty(SessionHandle.prototype, key, {
      get: () => method,
      set(this: object) {
        refuseWrite(this, key);
      },
      enumerable: false,
      configurable: true,
    });
  } else if (descriptor.set === undefined) {
    Object.defineProperty(SessionHandle.prototype, key, {
      ...descriptor,
      set(this: object) {
        refuseWrite(this, key);
      },
    });
  }
}
const base = Object.create(Object.prototype) as object;
Object.setPrototypeOf(
  SessionHandle.prototype,
  new Proxy(base, {
    get(target, key, receiver: object) {
      if (typeof key === 'symbol' || key in target) return Reflect.get(target, key, receiver);
      if (PROBES.has(key)) return undefined;
      if (key === 'user' && requestOf(receiver)?.options.legacyUserMethod === true) return legacyUser;
      return refuseRead(receiver, key);
    },
    set: (_target, key, _value, receiver: object) => refuseWrite(receiver, key),
  }),
);
