import type { Context, Middleware, Next } from 'koa';
import type { SessionHandle } from './session.js';

/** Options of {@link requireLogin}. */
export interface RequireLoginOptions {
  /** The session whose user counts (the `name` given to `session()`). @default 'session' */
  name?: string;
  /** Answer instead of the default 401, e.g. redirect to a login page. */
  onUnauthorized?: (ctx: Context, next: Next) => unknown;
}

/**
 * Middleware that lets a request through only when a user is logged in
 * (`ctx.session.user()`); otherwise it answers 401 (or calls `onUnauthorized`).
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
    const handle = (ctx as unknown as Record<string, SessionHandle<object> | undefined>)[name];
    if (!handle || typeof handle.user !== 'function') {
      throw new TypeError(`koa-locked-session: requireLogin() found no session "${name}" on ctx; app.use(session(${name === 'session' ? '' : `{ name: '${name}' }`})) must come before it`);
    }
    if ((await handle.user()) !== undefined) return next();
    if (onUnauthorized) return onUnauthorized(ctx, next);
    ctx.throw(401, 'Login required');
  };
}
