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

  /** The logged-in user, or `undefined`. */
  user(): Promise<UserOf<T> | undefined> {
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

for (const key of Reflect.ownKeys(SessionHandle.prototype)) {
  if (key === 'constructor') continue;
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
  }),
);
