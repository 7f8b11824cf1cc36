/**
 * The Koa auth stack, unchanged, on a locked session: koa-passport + passport-local,
 * koa-csrf, @koa/router and @koa/bodyparser, through plainSession().
 *
 * Run: npx tsx examples/passport.ts, then open http://localhost:3000 (or PORT).
 * With REDIS_URL set, sessions and locks live in Redis (run it twice on one Redis:
 * both processes serve the same sessions).
 *   GET  /login     a login form (any user name, password "secret"), with its CSRF token
 *   POST /login     passport.authenticate('local'): a new sid, the old one dead
 *   GET  /account   protected (requireLogin and ctx.isAuthenticated() agree)
 *   POST /cart      anonymous cart (kept across login by passport's keepSessionInfo)
 *   POST /increment protected counter, `ctx.session.count += 1` (exact under parallel requests)
 *   POST /logout    ctx.logout(): the session is regenerated empty, the old sid dead
 *   GET  /devices   the handle API beside it: this user's live sessions (the user index sees passport logins)
 *   GET  /health    no session at all: no store call
 */
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa, { type Middleware } from 'koa';
import compose from 'koa-compose';
import CSRF from 'koa-csrf';
import passport from 'koa-passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { createClient } from 'redis';
import {
  passportUser,
  plainSession,
  plainSessionOf,
  RedisLocker,
  RedisStore,
  requireLogin,
  session,
  type SessionOptions,
} from '../src/index.js';

declare module '../src/index.js' {
  interface SessionData {
    /** passport's own key: `passport.user` is what serializeUser returned (the user id). */
    passport?: { user?: string };
    count?: number;
    cart?: string[];
  }
}

// koa-passport's additions to the context (it ships no types; the module is typed in examples/types/).
declare module 'koa' {
  interface ExtendableContext {
    /** koa-passport: log in (passport's session manager: regenerate, then save). */
    login(user: unknown, options?: Record<string, unknown>): Promise<void>;
    /** koa-passport: log out (passport deletes its user, saves, regenerates). */
    logout(options?: Record<string, unknown>): Promise<void>;
    isAuthenticated(): boolean;
    isUnauthenticated(): boolean;
  }
}

interface User {
  id: string;
  name: string;
}

const users = new Map<string, User>();

passport.use(
  new LocalStrategy((username, password, done) => {
    const name = username.trim();
    if (!name || password !== 'secret') return done(null, false);
    const user = { id: name.toLowerCase(), name };
    users.set(user.id, user);
    return done(null, user);
  }),
);
passport.serializeUser((user, done) => done(null, (user as User).id));
passport.deserializeUser((id: string, done) => done(null, users.get(id) ?? { id, name: id }));

const page = (title: string, body: string) => `<!doctype html><meta charset="utf-8"><title>${title}</title><h1>${title}</h1>${body}`;
const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The app on `options` (store, locker); exported for the tests. */
export function createApp(options: SessionOptions = {}): Koa {
  const app = new Koa();
  app.keys = [process.env.SESSION_SECRET ?? 'dev-only-secret-change-me'];
  app.use(session(options));
  app.use(bodyParser());

  // What the auth libraries need: a plain-object ctx.session (loaded under the session's
  // lock for the whole request), passport on it, CSRF tokens from its secret. Only the
  // routes that use it pay for it. `user: passportUser` keeps passport's user in the
  // session's `user` field, for requireLogin() and the user index (sessionsOf, revokeAll).
  const auth: Middleware = compose([plainSession({ user: passportUser }), passport.initialize(), passport.session(), new CSRF()]);
  const protect = requireLogin({
    onUnauthorized: (ctx) => (ctx.accepts('html', 'json') === 'html' ? ctx.redirect('/login') : ctx.throw(401, 'Login required')),
  });

  const router = new Router();
  router.get('/health', (ctx) => {
    ctx.body = 'ok';
  });
  router.get('/login', auth, (ctx) => {
    ctx.body = page(
      'Log in',
      `<form method="post" action="/login">
      <input type="hidden" name="_csrf" value="${escape(String(ctx.state._csrf))}">
      <label>Name <input name="username" autocomplete="username"></label>
      <label>Password <input name="password" type="password" autocomplete="current-password"></label>
      <button>Log in</button></form>`,
    );
  });
  // keepSessionInfo: what the anonymous session held (a cart, a counter) moves to the new sid.
  router.post(
    '/login',
    auth,
    passport.authenticate('local', { successRedirect: '/account', failureRedirect: '/login', keepSessionInfo: true }),
  );
  router.get('/account', auth, protect, (ctx) => {
    const user = ctx.state.user as User;
    const s = plainSessionOf(ctx);
    ctx.body = page(
      'Account',
      `<p>Logged in as <span id="name">${escape(user.name)}</span> (isAuthenticated: ${ctx.isAuthenticated()}). Counter: <span id="count">${s.count ?? 0}</span></p>
      <meta name="csrf" content="${escape(String(ctx.state._csrf))}">
      <form method="post" action="/logout"><input type="hidden" name="_csrf" value="${escape(String(ctx.state._csrf))}"><button>Log out</button></form>`,
    );
  });
  router.get('/whoami', auth, (ctx) => {
    const s = plainSessionOf(ctx);
    ctx.body = {
      user: (ctx.state.user as User | undefined) ?? null,
      authenticated: ctx.isAuthenticated(),
      count: s.count ?? 0,
      cart: s.cart ?? [],
      csrf: ctx.state._csrf,
    };
  });
  // Anonymous (no login needed): the cart that keepSessionInfo carries into the logged-in session.
  router.post('/cart', auth, (ctx) => {
    const s = plainSessionOf(ctx);
    (s.cart ??= []).push(String((ctx.request.body as { item?: unknown }).item));
    ctx.body = { cart: s.cart };
  });
  router.post('/increment', auth, protect, (ctx) => {
    const s = plainSessionOf(ctx);
    s.count = (s.count ?? 0) + 1;
    ctx.body = { count: s.count };
  });
  router.post('/logout', auth, async (ctx) => {
    await ctx.logout();
    ctx.redirect('/login');
  });
  // The handle API (no view on this route): passport logins are in the user index.
  router.get('/devices', async (ctx) => {
    const user = (await ctx.session.currentUser()) as unknown as string | undefined;
    if (user === undefined) ctx.throw(401, 'Login required');
    ctx.body = { sessions: (await ctx.session.sessionsOf(user as never)).length };
  });
  app.use(router.routes()).use(router.allowedMethods());
  return app;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // REDIS_URL set: sessions and locks in Redis (several processes can serve them); else the embedded memory store.
  const redis = process.env.REDIS_URL ? await createClient({ url: process.env.REDIS_URL }).connect() : undefined;
  const app = createApp(redis ? { master: new RedisStore({ client: redis }), locker: new RedisLocker({ client: redis }) } : {});
  const port = Number(process.env.PORT ?? 3000);
  app.listen(port, '127.0.0.1', () => console.log(`passport example on http://localhost:${port}`));
}
