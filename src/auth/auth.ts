import type { Context, Middleware, Next } from 'koa';
import { SessionError } from '../errors.js';
import { destroyListed, ownerId, sameId } from './index-upkeep.js';
import type { RequestSession } from '../core/request.js';
import { SessionLock } from '../core/session-lock.js';

/** Options of `SessionHandle.login`. */
export interface LoginOptions {
  /** `false`: a browser-session cookie (gone when the browser closes). @default true */
  remember?: boolean;
  /** Expiry of this session in ms, instead of the `ttl` option (never longer than it). */
  ttl?: number;
  /** Keep the data of the anonymous session (e.g. a cart); by default login starts from empty data. @default false */
  keepData?: boolean;
}

/** Most listing rounds of revokeAll() before it gives up loudly (sessions of the user keep appearing). */
const REVOKE_ROUNDS = 10;

function clear(data: Record<string, unknown>): void {
  for (const key of Object.keys(data)) delete data[key];
}

function indexLost(method: string): SessionError {
  return new SessionError(
    `koa-locked-session: ${method}() found this request's own logged-in session missing from the user's session index: the index was lost (evicted by the store under memory pressure?), so other sessions of the user may be unlisted. Run the master without eviction (Redis \`maxmemory-policy noeviction\`, memcached \`-M\`); see docs/sign-out-everywhere.md`,
    { code: 'ERR_SESSION_INDEX_LOST' },
  );
}

/** Log `user` in under a new sid, in one scope (see `SessionHandle.login`). */
export async function login(req: RequestSession, user: unknown, options: LoginOptions): Promise<void> {
  const { remember = true, ttl, keepData = false } = options;
  if (user === undefined || user === null) throw new TypeError('koa-locked-session: login(user) needs a user; to log out call logout()');
  if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0)) {
    throw new TypeError(`koa-locked-session: Expected login \`ttl\` to be a positive number of ms, got \`${String(ttl)}\``);
  }
  if (typeof remember !== 'boolean')
    throw new TypeError(`koa-locked-session: Expected login \`remember\` to be a boolean, got \`${String(remember)}\``);
  await req.run((data, scope) => {
    if (!keepData) clear(data);
    data[req.options.userKey] = user;
    scope.regenerate = true;
    scope.meta = req.format.forLogin(ttl, remember);
  });
}

/** Empty the session: the commit then destroys it in every store and clears its cookie. */
export function destroy(req: RequestSession): Promise<void> {
  return req.run(clear);
}

/** The logged-in user of the request's session, or `undefined`. */
export async function userOf(req: RequestSession): Promise<unknown> {
  return (await req.get())[req.options.userKey];
}

/** The ids of the user's live sessions (see `SessionHandle.sessionsOf`). */
export async function sessionsOf(req: RequestSession, user: unknown): Promise<string[]> {
  const uid = req.options.userId(user);
  const master = indexStore(req);
  const sids = await req.index.list(master, uid);
  if (await unlisted(req, uid, sids)) throw indexLost('sessionsOf');
  return sids;
}

/**
 * Destroy every session of the user (see `SessionHandle.revokeAll` for why
 * none escapes). Each listed session is destroyed the way every write is made:
 * its lock, a fresh read under it, a delete conditional on the version read.
 */
export async function revokeAll(req: RequestSession, user: unknown, options: { except?: string | readonly string[] }): Promise<string[]> {
  const except = typeof options.except === 'string' ? [options.except] : (options.except ?? []);
  const uid = req.options.userId(user);
  const master = indexStore(req);
  const destroyed: string[] = [];
  let lost: boolean | undefined;
  for (let round = 0; round < REVOKE_ROUNDS; round++) {
    const entries = await req.index.entries(master, uid);
    lost ??= await unlisted(req, uid, entries);
    const listed = entries.filter((sid) => !except.includes(sid));
    if (listed.length === 0) {
      if (lost) throw indexLost('revokeAll');
      return destroyed;
    }
    for (const sid of listed) if (await revokeOne(req, sid, uid)) destroyed.push(sid);
    await req.index.remove(master, uid, listed);
  }
  throw new SessionError(
    `koa-locked-session: revokeAll() destroyed ${destroyed.length} sessions but new ones of this user kept appearing for ${REVOKE_ROUNDS} rounds (logins racing the revoke); not all may be gone: call it again`,
  );
}

/** Destroy one listed session under its lock; true if it was live and this user's. */
async function revokeOne(req: RequestSession, sid: string, uid: string | number): Promise<boolean> {
  if (sid === req.sid) {
    const live = (await userOf(req)) !== undefined;
    await destroy(req); // joins this request's own scope if one is open
    return live;
  }
  return destroyListed(req, await SessionLock.acquire(req.options, req.replica, req.key(sid)), uid);
}

/**
 * Eviction check (item 16): this request's own session is logged in as `uid`
 * and live, yet the index does not list it. Every completed login is listed, so
 * the index (or part of it) was lost, e.g. evicted by a store under memory
 * pressure, and a listing cannot be trusted to be complete.
 */
async function unlisted(req: RequestSession, uid: string | number, listed: readonly string[]): Promise<boolean> {
  const sid = req.sid;
  if (sid === undefined || req.active !== undefined || listed.includes(sid)) return false;
  const owner = await userOf(req);
  return owner !== undefined && req.sid === sid && sameId(ownerId(req.options, owner), uid);
}

/** The master, for the user index; a client-side master has nowhere to keep one. */
function indexStore(req: RequestSession) {
  if (req.clientSide) {
    throw new SessionError(
      'koa-locked-session: sessionsOf()/revokeAll() need a server-side master store; a CookieStore keeps each session in its browser, where the server cannot reach it. Use RedisStore, MongoStore, MemcachedStore or MemoryStore as master',
    );
  }
  return req.replica.master;
}

/** Options of {@link requireLogin}. */
export interface RequireLoginOptions {
  /** The session whose user counts (the `name` given to `session()`). @default 'session' */
  name?: string;
  /** Answer instead of the default 401, e.g. redirect to a login page. */
  onUnauthorized?: (ctx: Context, next: Next) => unknown;
}

/**
 * Middleware that lets a request through only when a user is logged in
 * (`ctx.session.currentUser()`); otherwise it answers 401 (or calls `onUnauthorized`).
 * CORS preflight (OPTIONS) requests always pass: browsers send them without cookies.
 *
 * @example router.get('/account', requireLogin({ onUnauthorized: (ctx) => ctx.redirect('/login') }), showAccount);
 */
export function requireLogin(options: RequireLoginOptions = {}): Middleware {
  const { name = 'session', onUnauthorized } = options;
  if (onUnauthorized !== undefined && typeof onUnauthorized !== 'function') {
    throw new TypeError('koa-locked-session: Expected `onUnauthorized` to be a function (ctx, next) => …');
  }
  return async function requireLoginMiddleware(ctx, next) {
    if (ctx.method === 'OPTIONS') return next();
    const handle = (ctx as unknown as Record<string, { currentUser?: () => Promise<unknown> } | undefined>)[name];
    if (!handle || typeof handle.currentUser !== 'function') {
      throw new TypeError(
        `koa-locked-session: requireLogin() found no session "${name}" on ctx; app.use(session(${name === 'session' ? '' : `{ name: '${name}' }`})) must come before it`,
      );
    }
    if ((await handle.currentUser()) !== undefined) return next();
    if (onUnauthorized) return onUnauthorized(ctx, next);
    ctx.throw(401, 'Login required');
  };
}
