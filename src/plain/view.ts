import type { SessionData } from '../session-data.js';

/** A callback in Node's style, as passport and express-session pass them. */
export type NodeCallback = (error?: unknown) => void;

/**
 * What the view must be able to ask of the request it belongs to (src/plain/middleware.ts).
 * Kept behind an interface so the view object itself holds nothing enumerable but data.
 */
export interface ViewHost {
  readonly id: string | undefined;
  readonly isNew: boolean;
  readonly maxAge: number | 'session' | undefined;
  /** Mark a regenerate (new sid at commit, old one destroyed) and answer the view that replaces this one. */
  regenerate(from: PlainSessionView): PlainSessionView;
  /** `save(cb)`: persist what the view holds now (request lock: at the end of the request). */
  save(view: PlainSessionView): Promise<void>;
  /** `destroy(cb)` / `ctx.session = null`. */
  destroy(): void;
  /** The logged-in user as the view's data says (`user` option), for `requireLogin`. */
  userOf(view: PlainSessionView): unknown;
}

const hosts = new WeakMap<PlainSessionView, ViewHost>();

function hostOf(view: PlainSessionView): ViewHost {
  const host = hosts.get(view);
  if (!host)
    throw new TypeError(
      'koa-locked-session: this plain session view is not attached to a request (it was replaced by regenerate() or the request ended)',
    );
  return host;
}

/** Run `work`, then call `cb(err)` if given, else return the promise (koa-session's and express-session's dual style). */
function settle(work: Promise<void>, cb: NodeCallback | undefined): Promise<void> | undefined {
  if (typeof cb !== 'function') return work;
  work.then(
    () => cb(),
    (error: unknown) => cb(error),
  );
  return undefined;
}

/**
 * The plain-object session of {@link plainSession}: the session data as own,
 * enumerable properties, read and written synchronously like koa-session's
 * `ctx.session`. Everything else (methods, `id`, `isNew`, `maxAge`) lives on
 * the prototype, non-enumerable, so that `for…in` copies (passport's
 * `keepSessionInfo` merge), `Object.keys` and `JSON.stringify` see data only.
 */
export class PlainSessionView {
  /** @internal Built by plainSession(); `data` is copied in. */
  constructor(host: ViewHost, data: Record<string, unknown>) {
    hosts.set(this, host);
    for (const [key, value] of Object.entries(data)) {
      if (key !== '__proto__') (this as Record<string, unknown>)[key] = value;
    }
  }

  /** The session id, or `undefined` for a session not saved yet. */
  get id(): string | undefined {
    return hostOf(this).id;
  }

  /** True when the request brought no live session. */
  get isNew(): boolean {
    return hostOf(this).isNew;
  }

  /**
   * koa-session's `maxAge`: `undefined` here, meaning session()'s `ttl` and `cookie.maxAge` apply.
   * Setting it throws: a lifetime per login is the handle's `login(user, { ttl, remember })`.
   */
  get maxAge(): number | 'session' | undefined {
    return hostOf(this).maxAge;
  }

  /** Throws a TypeError: the lifetime is session()'s `ttl`, or per login the handle's `login(user, { ttl, remember })`. */
  set maxAge(value: unknown) {
    throw new TypeError(
      `koa-locked-session: plainSession() view: setting maxAge (to \`${String(value)}\`) is not supported; the lifetime comes from session({ ttl, cookie: { maxAge } }), or per login from the handle's login(user, { ttl, remember })`,
    );
  }

  /** Number of data keys (koa-session). */
  get length(): number {
    return Object.keys(this).length;
  }

  /** True when the session holds any data (koa-session). */
  get populated(): boolean {
    return this.length > 0;
  }

  /**
   * A new sid at the end of the request; the old sid is destroyed in every store
   * (session-fixation defence). After the callback, `ctx.session` is the new
   * view: empty (express-session's rule, which passport is written for) or with
   * this data (`regenerate: 'keep'`, koa-session's rule).
   */
  regenerate(cb?: NodeCallback): Promise<void> | undefined {
    const host = hostOf(this);
    return settle(
      Promise.resolve().then(() => void host.regenerate(this)),
      cb,
    );
  }

  /** Persist the data now held (with `lock: 'request'`: in the commit at the end of the request, which the response waits for). */
  save(cb?: NodeCallback): Promise<void> | undefined {
    const host = hostOf(this);
    return settle(host.save(this), cb);
  }

  /** Destroy the session in every store at the end of the request (like `ctx.session = null`). */
  destroy(cb?: NodeCallback): Promise<void> | undefined {
    const host = hostOf(this);
    return settle(
      Promise.resolve().then(() => host.destroy()),
      cb,
    );
  }

  /** express-session's `reload(cb)`: the view already holds the data read under the lock; calls back at once. */
  reload(cb?: NodeCallback): Promise<void> | undefined {
    hostOf(this);
    return settle(Promise.resolve(), cb);
  }

  /** express-session's `touch()`: every save slides the expiry already. */
  touch(): this {
    return this;
  }

  /**
   * The logged-in user (the `user` option of plainSession), so that
   * `requireLogin()` placed after plainSession() agrees with passport's
   * `ctx.isAuthenticated()`: both read this request's view.
   */
  currentUser(): Promise<unknown> {
    try {
      return Promise.resolve(hostOf(this).userOf(this));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The data only (koa-session). */
  toJSON(): Record<string, unknown> {
    return { ...(this as unknown as Record<string, unknown>) };
  }
}

/**
 * The type of the view: your {@link SessionData} (declaration merging types it)
 * plus koa-session's and express-session's methods. Read it with `plainSessionOf(ctx)`.
 */
export type PlainSession<T extends object = SessionData> = T & PlainSessionView & Record<string, unknown>;

/** Detach a view from its request: methods called on it afterwards throw instead of acting on a finished request. */
export function detach(view: PlainSessionView): void {
  hosts.delete(view);
}

/** The data a view holds (own enumerable keys). */
export function dataOf(view: PlainSessionView): Record<string, unknown> {
  return { ...view };
}
