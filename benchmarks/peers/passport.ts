/**
 * The Koa auth stack's workload (issue 21 item 6): the REAL koa-passport + passport-local
 * on a plain-object `ctx.session`, the same code on koa-session + koa-redis and on ours
 * (session() + plainSession({ user: passportUser }), in variants/ours.ts).
 *
 * - `POST /login` (JSON or form body): passport.authenticate('local') (passport ≥ 0.6
 *   regenerates the session, then saves `passport.user`), then `views = 0`. The harness
 *   logs each virtual user in once this way when it creates the scenario's sessions
 *   (a variant with `seed: 'login'`), instead of `GET /fresh`.
 * - `/rmw` plays `GET /account`: passport.session() restores the user from the session
 *   (deserializeUser), a request without one is a 401 (an error, not throughput), and
 *   the route increments `ctx.session.views` (koa-session's own code, no lock in it).
 * - `/read` answers `views` for the harness's read-back of the hot session's counter.
 */
import { bodyParser } from '@koa/bodyparser';
import type { Context, Middleware } from 'koa';
import compose from 'koa-compose';
import koaPassport from 'koa-passport';
import createSession from 'koa-session';
import { Strategy as LocalStrategy } from 'passport-local';
import { koaApp, type SessionOps } from '../lib/routes.js';
import type { VariantFactory } from '../lib/types.js';
import { koaRedis, peerSession } from './koa-session.js';

interface User {
  id: string;
}

/** One passport per app process (koa-passport's own class, not its global instance). */
function createPassport() {
  const passport = new koaPassport.KoaPassport();
  passport.use(new LocalStrategy((username, password, done) => done(null, password === 'secret' ? { id: username } : false)));
  passport.serializeUser((user, done) => done(null, (user as User).id));
  passport.deserializeUser((id: string, done) => done(null, { id }));
  return passport;
}

/** The middleware after the session middleware (passport on `ctx.session`, the login route) and the protected routes. */
export function passportStack(): { middleware: Middleware[]; ops: SessionOps } {
  const passport = createPassport();
  const login = compose([
    bodyParser(),
    passport.authenticate('local'),
    (ctx: Context) => {
      peerSession(ctx).views = 0;
      ctx.body = { user: (ctx.state.user as User).id };
    },
  ]);
  const loginRoute: Middleware = (ctx, next) => (ctx.method === 'POST' && ctx.path === '/login' ? login(ctx, next) : next());
  const views = (ctx: Context): number | undefined => {
    if (!(ctx as unknown as { isAuthenticated(): boolean }).isAuthenticated()) ctx.throw(401, 'Login required');
    const value = peerSession(ctx).views;
    return typeof value === 'number' ? value : undefined;
  };
  const ops: SessionOps = {
    fresh(ctx) {
      ctx.throw(404, 'this workload creates its sessions with POST /login');
    },
    rmw(ctx) {
      const next = (views(ctx) ?? 0) + 1;
      peerSession(ctx).views = next;
      return next;
    },
    read: views,
  };
  return { middleware: [passport.initialize(), passport.session(), loginRoute], ops };
}

/** koa-session 7 + koa-redis 4 + koa-passport: the stack an app switching to ours has today. */
export const koaSessionPassport: VariantFactory = async (env) => {
  const store = koaRedis(env.servers.redis!);
  const { middleware, ops } = passportStack();
  const app = koaApp({
    ops,
    middleware: (koa) => [createSession({ key: 'koa.sess', maxAge: env.ttlMs, store: store as never }, koa), ...middleware],
  });
  return { listener: app.callback(), close: async () => void (await store.quit()) };
};
