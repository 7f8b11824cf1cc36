import { isDeepStrictEqual } from 'node:util';
import type { Context, Middleware } from 'koa';
import { SessionHandle } from '../session.js';
import type { SessionData } from '../session-data.js';
import { deepCopy } from './copy.js';
import { dataOf, detach, PlainSessionView, type PlainSession, type ViewHost } from './view.js';

/** Options of {@link plainSession}. */
export interface PlainSessionOptions {
  /** The session (the `name` given to `session()`) whose handle the view replaces on `ctx[name]`. @default 'session' */
  name?: string;
  /**
   * How the view keeps the no-lost-update promise.
   * - `'request'`: the session's lock is held from the start of the request to its end
   *   (like PHP and ASP.NET sessions): the data is read under the lock, the request's
   *   changes are saved under the same lock. Every read-modify-write is exact (100
   *   parallel `views + 1` end at 100); requests of ONE session run one after another
   *   (other sessions are not affected). Requests without a session cookie take no lock.
   * - `'merge'`: no lock while the request runs: one unlocked read, then at the end one
   *   short lock scope applies only the top-level keys this request changed (deep
   *   compare against its read) onto the data read fresh under the lock. Keys the
   *   request did not change are never lost; a key two requests both changed keeps the
   *   last writer's value (a counter may lose increments). For read-mostly routes.
   * @default 'request'
   */
  lock?: 'request' | 'merge';
  /**
   * What `regenerate(cb)` keeps. `'clear'`: the new session starts empty (express-session's
   * rule, which passport ≥ 0.6 expects: login and logout start from empty data unless
   * `keepSessionInfo`). `'keep'`: the data moves to the new sid (koa-session 7's rule).
   * Either way the old sid is destroyed in every store at the end of the request.
   * @default 'clear'
   */
  regenerate?: 'clear' | 'keep';
  /**
   * Which value of the view's data is the logged-in user, e.g. {@link passportUser}.
   * It is kept in the session's `auth.userKey` field when the request ends, so that
   * the user index (`sessionsOf`, `revokeAll`), `requireLogin()` and the handle's
   * `currentUser()` see logins made by a library writing its own key. That field is then
   * derived: it is hidden from the view.
   */
  user?: (data: Record<string, unknown>) => unknown;
  /** The `auth.userKey` given to `session()`, where `user` is kept. @default 'user' */
  userKey?: string;
}

/** passport's logged-in user in the session: `session.passport.user` (what `serializeUser` returned). */
export function passportUser(data: Record<string, unknown>): unknown {
  const passport = data.passport;
  return typeof passport === 'object' && passport !== null ? (passport as { user?: unknown }).user : undefined;
}

const VIEW = Symbol('koa-locked-session:plain-view');

/**
 * The plain-object session view of `ctx[name]` installed by {@link plainSession},
 * typed by your {@link SessionData}.
 * @example const s = plainSessionOf(ctx); s.views = (s.views ?? 0) + 1;
 */
export function plainSessionOf<T extends object = SessionData>(ctx: Context, name = 'session'): PlainSession<T> {
  const view = (ctx as unknown as Record<string, unknown>)[name];
  if (!(view instanceof PlainSessionView)) {
    throw new TypeError(
      `koa-locked-session: plainSessionOf(ctx${name === 'session' ? '' : `, '${name}'`}) found no plain session view on ctx.${name}; app.use(plainSession(${name === 'session' ? '' : `{ name: '${name}' }`})) must run before it`,
    );
  }
  return view as PlainSession<T>;
}

interface Resolved {
  name: string;
  lock: 'request' | 'merge';
  keep: boolean;
  user: ((data: Record<string, unknown>) => unknown) | undefined;
  userKey: string;
}

function resolve(options: PlainSessionOptions): Resolved {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`koa-locked-session: plainSession(options): Expected an object, got \`${String(options)}\``);
  const known = ['name', 'lock', 'regenerate', 'user', 'userKey'];
  for (const key of Object.keys(options)) {
    if (!known.includes(key))
      throw new TypeError(`koa-locked-session: plainSession(): unknown option \`${key}\`; known options: ${known.join(', ')}`);
  }
  const { name = 'session', lock = 'request', regenerate = 'clear', user, userKey = 'user' } = options;
  if (typeof name !== 'string' || name === '')
    throw new TypeError(`koa-locked-session: Expected plainSession \`name\` to be the name given to session(), got \`${String(name)}\``);
  if (lock !== 'request' && lock !== 'merge')
    throw new TypeError(`koa-locked-session: Expected plainSession \`lock\` to be 'request' or 'merge', got \`${String(lock)}\``);
  if (regenerate !== 'clear' && regenerate !== 'keep')
    throw new TypeError(`koa-locked-session: Expected plainSession \`regenerate\` to be 'clear' or 'keep', got \`${String(regenerate)}\``);
  if (user !== undefined && typeof user !== 'function')
    throw new TypeError(
      `koa-locked-session: Expected plainSession \`user\` to be a function (data) => user, e.g. passportUser, got \`${String(user)}\``,
    );
  if (typeof userKey !== 'string' || userKey === '' || userKey === '__proto__')
    throw new TypeError(`koa-locked-session: Expected plainSession \`userKey\` to be session()'s auth.userKey, got \`${String(userKey)}\``);
  return { name, lock, keep: regenerate === 'keep', user, userKey };
}

/**
 * One request's view and what it asked for (regenerate, destroy), between the
 * data it started from (`base`) and the data it ends with.
 */
class ViewState implements ViewHost {
  view: PlainSessionView;
  regenerated = false;
  destroyed = false;

  /**
   * @param data the session data (request: the scope's, read under the lock; merge: a copy of the unlocked read, `base`)
   * @param base merge mode: the data the changes are found against (the unlocked read, then what each save(cb) merged); request mode: undefined (the lock is held, the end saves the whole view)
   * @param commitNow merge mode: commit now (save(cb)); request mode: undefined (the end commits)
   */
  constructor(
    private readonly handle: SessionHandle<Record<string, unknown>>,
    private readonly options: Resolved,
    data: Record<string, unknown>,
    public base: Record<string, unknown> | undefined,
    private readonly commitNow: ((state: ViewState) => Promise<void>) | undefined,
  ) {
    const visible = deepCopy(data);
    if (options.user) delete visible[options.userKey];
    this.view = new PlainSessionView(this, visible);
  }

  get id(): string | undefined {
    return this.handle.id;
  }

  get isNew(): boolean {
    return this.handle.isNew;
  }

  get maxAge(): undefined {
    return undefined; // session()'s ttl / cookie.maxAge apply; the handle does not publish them
  }

  regenerate(from: PlainSessionView): PlainSessionView {
    this.regenerated = true;
    return this.replace(this.options.keep ? dataOf(from) : {});
  }

  destroy(): void {
    this.destroyed = true;
    this.regenerated = true; // data written after `= null` belongs to a new session under a new sid
    this.replace({});
  }

  /** `ctx.session = {...}` (koa-session): the data is replaced, same sid. */
  assign(data: Record<string, unknown>): void {
    this.replace(data);
  }

  save(): Promise<void> {
    return this.commitNow ? this.commitNow(this) : Promise.resolve();
  }

  userOf(view: PlainSessionView): unknown {
    const data = dataOf(view);
    return this.options.user ? this.options.user(data) : data[this.options.userKey];
  }

  /** The data the session must hold at the end, the derived user field included. */
  final(): Record<string, unknown> {
    const data = dataOf(this.view);
    if (this.options.user) {
      const user = this.options.user(data);
      if (user === undefined) delete data[this.options.userKey];
      else data[this.options.userKey] = user;
    }
    return data;
  }

  private replace(data: Record<string, unknown>): PlainSessionView {
    detach(this.view);
    this.view = new PlainSessionView(this, data);
    return this.view;
  }
}

/** Replace all of `target`'s data with `data` (request mode: the lock was held throughout). */
function replaceAll(target: Record<string, unknown>, data: Record<string, unknown>): void {
  for (const key of Object.keys(target)) if (!(key in data)) delete target[key];
  for (const [key, value] of Object.entries(data)) if (key !== '__proto__') target[key] = value;
}

/** Apply onto `fresh` only the top-level keys that differ between `base` and `final` (merge mode). */
function applyChanged(fresh: Record<string, unknown>, base: Record<string, unknown>, final: Record<string, unknown>): void {
  for (const key of new Set([...Object.keys(base), ...Object.keys(final)])) {
    if (key === '__proto__') continue;
    const had = Object.hasOwn(base, key);
    const has = Object.hasOwn(final, key);
    if (had === has && isDeepStrictEqual(base[key], final[key])) continue;
    if (has) fresh[key] = final[key];
    else delete fresh[key];
  }
}

/**
 * A plain-object session for libraries that read and write `ctx.session`
 * synchronously (koa-passport/passport, koa-csrf, grant): placed after
 * `session()`, it loads the session before the next middleware runs and
 * makes `ctx[name]` a plain object with koa-session's and express-session's
 * surface (`regenerate(cb)`, `save(cb)`, `destroy(cb)`, `isNew`, `id`,
 * `ctx.session = null`). What changed is saved when the downstream
 * middleware settles, before the response; a request that throws saves
 * nothing. Mount it only on the routes that need it: a route without it
 * costs no store call. See docs/koa-auth-stack.md for what each `lock` mode guarantees.
 *
 * @example
 * app.use(session({ master }));
 * app.use(plainSession({ user: passportUser }));
 * app.use(passport.initialize());
 * app.use(passport.session());
 */
export function plainSession(options: PlainSessionOptions = {}): Middleware {
  const resolved = resolve(options);
  const { name } = resolved;
  return async function plainSessionMiddleware(ctx, next) {
    const record = ctx as unknown as Record<string | symbol, unknown>;
    if (record[VIEW] !== undefined) return next(); // mounted twice on one path (app and route): one view
    // Keep the handle: once the view is installed, ctx[name] is the view.
    const handle = record[name];
    if (!(handle instanceof SessionHandle)) {
      throw new TypeError(
        `koa-locked-session: plainSession() found no session "${name}" on ctx; app.use(session(${name === 'session' ? '' : `{ name: '${name}' }`})) must come before it`,
      );
    }
    const typed = handle as SessionHandle<Record<string, unknown>>;
    const run = async (state: ViewState): Promise<void> => {
      record[VIEW] = state;
      Object.defineProperty(ctx, name, {
        configurable: true,
        enumerable: true,
        get: () => state.view,
        set: (value: unknown) => {
          if (value === null || value === undefined) state.destroy();
          else if (typeof value === 'object' && !Array.isArray(value)) state.assign(value as Record<string, unknown>);
          else
            throw new TypeError(
              `koa-locked-session: ctx.${name} = … takes an object (the new data) or null (destroy), got \`${String(value)}\``,
            );
        },
      });
      try {
        await next();
      } finally {
        delete record[name]; // the prototype's getter answers the handle again
        record[VIEW] = undefined;
      }
    };

    if (resolved.lock === 'request') {
      await typed.withLock(async (data) => {
        const state = new ViewState(typed, resolved, data, undefined, undefined);
        try {
          await run(state);
        } finally {
          detach(state.view);
        }
        replaceAll(data, state.final());
        if (state.regenerated) await typed.regenerate(); // joins this scope: the commit moves it to a new sid
      });
      return;
    }

    // merge: an unlocked read now, the changed keys under one short lock at the end (and at each save(cb)).
    // Round trips (test/plain-session-redis-cost.test.ts): that read, and only when something changed, the
    // lock scope, whose fresh read rides on the lock's acquire (RedisLocker) or on the lease handed over.
    const commit = async (state: ViewState, last = false): Promise<void> => {
      const final = state.final();
      const { destroyed, regenerated } = state;
      const base = state.base!;
      if (!destroyed && !regenerated && isDeepStrictEqual(final, base)) return;
      await typed.withLock(async (fresh) => {
        if (destroyed) replaceAll(fresh, final);
        else applyChanged(fresh, base, final);
        if (regenerated) await typed.regenerate();
      });
      if (last) return; // the request is over: nothing compares against the base any more
      state.base = deepCopy(final);
      state.destroyed = false;
      state.regenerated = false;
    };
    // One walk of the read-only snapshot (proxies); the view's copy is made from that plain copy.
    const base = deepCopy(await typed.get()) as Record<string, unknown>;
    const state = new ViewState(typed, resolved, base, base, commit);
    try {
      await run(state);
    } finally {
      detach(state.view);
    }
    await commit(state, true);
  };
}
