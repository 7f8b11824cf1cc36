/**
 * Migration end to end with koa-passport (issue 21 item 4): users logged in on a
 * REAL koa-session + koa-redis + koa-passport (passport-local) app switch to ours
 * (RedisStore + RedisLocker on the same Redis, plainSession() + koa-passport,
 * `migrateFrom: koaSessionCookie({ store, user: passportUser })`) and stay logged
 * in — for passport (isAuthenticated, the protected page) AND for our user index
 * (sessionsOf, revokeAll, currentUser(), requireLogin() on routes without the view),
 * from their very first request, whichever route it hits.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bodyParser } from '@koa/bodyparser';
import Koa, { type Context } from 'koa';
import compose from 'koa-compose';
import koaPassport from 'koa-passport';
import redisStore from 'koa-redis';
import koaSessionMiddleware from 'koa-session';
import { Strategy as LocalStrategy } from 'passport-local';
import { createClient } from 'redis';
import {
  expressSession,
  genericSession,
  koaSessionCookie,
  passportUser,
  plainSession,
  plainSessionOf,
  RedisLocker,
  RedisStore,
  requireLogin,
  session,
} from '../../src/index.js';
import { listen } from '../helpers/app.js';
import { CookieJar, setCookies } from '../helpers/cookies.js';
import { redisServer, skipReason } from '../helpers/servers.js';

const KEYS = ['app key kept from the old app'];
const redis = await redisServer();
const skip = redis ? false : skipReason('redis');

// One passport configuration, as the app has before and after the switch.
const passport = new koaPassport.KoaPassport();
passport.use(new LocalStrategy((username, password, done) => done(null, password === 'secret' ? { id: username } : false)));
passport.serializeUser((user, done) => done(null, (user as { id: string }).id));
passport.deserializeUser((id: string, done) => done(null, { id }));

declare module 'koa' {
  interface ExtendableContext {
    isAuthenticated(): boolean;
    logout(options?: Record<string, unknown>): Promise<void>;
  }
}

/** The old app: koa-session in external-store mode on koa-redis, koa-passport + passport-local. */
function oldApp(store: unknown): Koa {
  const app = new Koa();
  app.keys = KEYS;
  app.silent = true;
  app.use(koaSessionMiddleware({ key: 'koa.sess', maxAge: 86_400_000, store: store as never }, app));
  app.use(bodyParser());
  app.use(passport.initialize());
  app.use(passport.session());
  app.use(async (ctx, next) => {
    if (ctx.path === '/cart') {
      (ctx.session as unknown as { cart: string[] }).cart = ['book'];
      ctx.body = 'ok';
      return;
    }
    return next();
  });
  app.use(passport.authenticate('local', { successRedirect: '/account', failureRedirect: '/login' }));
  return app;
}

const userOf = (ctx: Context) => (ctx.state.user as { id: string } | undefined)?.id ?? null;

/** The switched app: our stack on the same Redis, the recipe of docs/migrating.md. */
function newApp(client: ReturnType<typeof createClient>, oldStore: unknown): Koa {
  const app = new Koa();
  app.keys = KEYS;
  app.silent = true;
  app.use(
    session({
      master: new RedisStore({ client }),
      locker: new RedisLocker({ client }),
      migrateFrom: koaSessionCookie({ key: 'koa.sess', store: oldStore as never, user: passportUser }),
    }),
  );
  app.use(bodyParser());
  const auth = compose([plainSession({ user: passportUser }), passport.initialize(), passport.session()]);
  const routes: Record<string, Koa.Middleware<Koa.DefaultState, Context>> = {
    // The view: passport on plainSession(), requireLogin() after it (agrees with isAuthenticated()).
    'GET /account': compose([
      auth,
      requireLogin(),
      (ctx: Context) => {
        ctx.body = { user: userOf(ctx), authenticated: ctx.isAuthenticated(), sid: ctx.session.id };
      },
    ]),
    'GET /whoami': compose([
      auth,
      (ctx: Context) => {
        ctx.body = { user: userOf(ctx), authenticated: ctx.isAuthenticated(), cart: plainSessionOf(ctx).cart ?? null };
      },
    ]),
    'POST /logout': compose([
      auth,
      async (ctx: Context) => {
        await ctx.logout();
        ctx.body = 'bye';
      },
    ]),
    // The handle API, no view on these routes.
    'GET /me': async (ctx) => {
      const user = (await ctx.session.currentUser()) as unknown as string | undefined;
      ctx.body = {
        user: user ?? null,
        sessions: user === undefined ? [] : await ctx.session.sessionsOf(user as never),
        sid: ctx.session.id ?? null,
      };
    },
    'GET /api/account': compose([requireLogin(), (ctx: Context) => void (ctx.body = 'ok')]),
    'POST /admin/revoke': async (ctx) => {
      ctx.body = { revoked: (await ctx.session.revokeAll(String(ctx.query.user) as never)).length };
    },
  };
  app.use(async (ctx, next) => {
    const route = routes[`${ctx.method} ${ctx.path}`];
    return route ? route(ctx, next) : next();
  });
  return app;
}

/** A copy of `jar` (the cookies `keep` names): a second browser holding the same cookies. */
function copyOf(jar: CookieJar, keep: (name: string) => boolean = () => true): CookieJar {
  const copy = new CookieJar();
  copy.take([...jar.cookies].filter(([name]) => keep(name)).map(([name, value]) => `${name}=${value}; Path=/`));
  return copy;
}

/** A browser: its cookie jar against one base URL. */
class Browser {
  constructor(
    readonly url: string,
    readonly jar = new CookieJar(),
  ) {}
  async fetch(path: string, init: RequestInit & { form?: Record<string, string> } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.jar.header) headers.set('cookie', this.jar.header);
    let body = init.body;
    if (init.form) {
      headers.set('content-type', 'application/x-www-form-urlencoded');
      body = new URLSearchParams(init.form).toString();
    }
    const res = await fetch(this.url + path, { ...init, headers, body: body ?? null, redirect: 'manual' });
    this.jar.take(res);
    return res;
  }
  async json<T = Record<string, unknown>>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await this.fetch(path, init);
    assert.equal(res.status, 200, `${init.method ?? 'GET'} ${path} answers 200`);
    return (await res.json()) as T;
  }
  /** Only the old app's cookies (what a browser still holds from before the switch). */
  oldCookies(): CookieJar {
    return copyOf(this.jar, (name) => name.startsWith('koa.sess'));
  }
}

it("the readers' `user` option is validated at startup, naming the fix", () => {
  for (const make of [
    () => koaSessionCookie({ user: 'passport' as never }),
    () => expressSession({ store: { get() {}, destroy() {} } as never, secret: 's', user: {} as never }),
    () => genericSession({ store: { get() {}, destroy() {} }, until: new Date(), user: 1 as never }),
  ]) {
    assert.throws(
      make,
      (error: unknown) => error instanceof TypeError && /\{ user \}/.test(error.message) && /passportUser/.test(error.message),
    );
  }
  assert.doesNotThrow(() => koaSessionCookie({ user: passportUser }));
});

describe('koa-session + koa-redis + koa-passport → koa-locked-session: logged-in users stay logged in (issue 21 item 4)', { skip }, () => {
  let client: ReturnType<typeof createClient>;
  let oldStore: ReturnType<typeof redisStore>;
  let old: Awaited<ReturnType<typeof listen>>;
  let next: Awaited<ReturnType<typeof listen>>;

  before(async () => {
    client = createClient({ url: redis!.url });
    client.on('error', () => {});
    await client.connect();
    oldStore = redisStore({ url: redis!.url });
    old = await listen(oldApp(oldStore));
    next = await listen(newApp(client, oldStore));
  });
  after(async () => {
    await next?.close();
    await old?.close();
    await oldStore?.quit().catch(() => {});
    await client?.quit().catch(() => {});
    await redis?.stop();
  });

  /** A browser logged in as `name` on the old app, holding only the old app's cookies. */
  async function loggedInOnOldApp(name: string): Promise<CookieJar> {
    const browser = new Browser(old.url);
    const res = await browser.fetch('/login', { method: 'POST', form: { username: name, password: 'secret' } });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), '/account', `${name} logged in on the old app`);
    assert.ok(browser.jar.get('koa.sess') && browser.jar.get('koa.sess.sig'), 'the old app set its signed cookie');
    return browser.oldCookies();
  }

  it('two passport users stay logged in on their first request, on a view route and on a handle route; the user index lists, revokes and logs out', async () => {
    const aliceOld = await loggedInOnOldApp('alice');
    const bobOld = await loggedInOnOldApp('bob');
    const alice = new Browser(next.url, copyOf(aliceOld));
    const bob = new Browser(next.url, copyOf(bobOld));

    // alice's first request after the switch: the protected page (passport on the view).
    const account = await alice.json<{ user: string; authenticated: boolean; sid: string }>('/account');
    assert.deepEqual([account.user, account.authenticated], ['alice', true], 'passport restores alice from the moved session');
    const aliceSid = alice.jar.get('sid');
    assert.ok(aliceSid, 'our cookie is set');
    assert.deepEqual((await alice.json<{ user: string | null; sessions: string[] }>('/me')).sessions.length, 1);

    // bob's first request after the switch: a handle route, no view and no passport on it.
    const me = await bob.json<{ user: string | null; sessions: string[]; sid: string | null }>('/me');
    assert.equal(me.user, 'bob', 'currentUser() knows bob from his first request (a route without plainSession)');
    assert.equal(me.sessions.length, 1, 'sessionsOf(bob) lists the moved session from the move on');
    assert.equal((await bob.fetch('/api/account')).status, 200, 'requireLogin() on a handle route lets bob in');
    const bobAccount = await bob.json<{ user: string; authenticated: boolean; sid: string }>('/account');
    assert.deepEqual([bobAccount.user, bobAccount.authenticated], ['bob', true]);
    assert.deepEqual(me.sessions, [bobAccount.sid], 'the listed sid is the session bob is on');
    assert.equal(new Set([me.sid, bobAccount.sid]).size, 1, 'one session for bob');

    // alice's listing is the sid she is on.
    const aliceMe = await alice.json<{ sessions: string[]; sid: string }>('/me');
    assert.deepEqual(aliceMe.sessions, [account.sid]);

    // revokeAll(alice) signs her out; her old koa-session cookie does not log her back in.
    const admin = new Browser(next.url);
    assert.deepEqual(await admin.json('/admin/revoke?user=alice', { method: 'POST' }), { revoked: 1 });
    assert.equal((await alice.fetch('/account')).status, 401, 'alice is signed out');
    assert.equal((await alice.json<{ authenticated: boolean }>('/whoami')).authenticated, false);
    const replayed = new Browser(next.url, copyOf(aliceOld));
    assert.deepEqual(
      await replayed.json<{ user: string | null; authenticated: boolean }>('/whoami').then((w) => [w.user, w.authenticated]),
      [null, false],
      'the old cookie does not log alice back in',
    );
    assert.equal((await new Browser(next.url, copyOf(aliceOld)).json<{ user: string | null }>('/me')).user, null);
    assert.deepEqual((await new Browser(next.url).json<{ sessions: string[] }>('/me')).sessions, []);

    // bob logs out through passport: he stays out, with our cookie of before and with his old one.
    const before = bob.jar.header;
    assert.equal((await bob.fetch('/logout', { method: 'POST' })).status, 200);
    assert.equal((await bob.json<{ authenticated: boolean }>('/whoami')).authenticated, false);
    const ourOld = new CookieJar();
    ourOld.take(before.split('; ').map((pair) => `${pair}; Path=/`));
    const stale = await new Browser(next.url, ourOld).fetch('/api/account');
    assert.ok(stale.status === 401 || stale.status === 409, `bob's logged-in sid no longer works (got ${stale.status})`);
    assert.equal(
      (await new Browser(next.url, copyOf(bobOld)).fetch('/api/account')).status,
      401,
      "bob's old cookie does not log him back in",
    );
    assert.equal((await new Browser(next.url, copyOf(bobOld)).json<{ authenticated: boolean }>('/whoami')).authenticated, false);
  });

  it('revokeAll right after a first request on a route without the view signs the user out (the index knew them from the move)', async () => {
    const eve = new Browser(next.url, await loggedInOnOldApp('eve'));
    assert.equal((await eve.fetch('/me')).status, 200, 'her first request moves the session (a handle route: no view, no passport)');
    assert.deepEqual(
      await new Browser(next.url).json('/admin/revoke?user=eve', { method: 'POST' }),
      { revoked: 1 },
      'revokeAll finds the moved session',
    );
    assert.equal((await eve.fetch('/account')).status, 401, 'passport no longer restores eve');
  });

  it('an anonymous old session stays anonymous: its data moves, nobody is logged in or listed', async () => {
    const browser = new Browser(old.url);
    assert.equal((await browser.fetch('/cart')).status, 200);
    const carol = new Browser(next.url, browser.oldCookies());
    const me = await carol.json<{ user: string | null; sessions: string[] }>('/me');
    assert.deepEqual([me.user, me.sessions], [null, []]);
    assert.deepEqual(await carol.json('/whoami'), { user: null, authenticated: false, cart: ['book'] });
    assert.equal((await carol.fetch('/account')).status, 401);
    assert.equal((await carol.fetch('/api/account')).status, 401);
  });

  it('10 overlapping first requests of one user end on ONE session, listed once', async () => {
    const daveOld = await loggedInOnOldApp('dave');
    const paths = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? '/account' : '/me'));
    const responses = await Promise.all(paths.map((path) => new Browser(next.url, copyOf(daveOld)).fetch(path)));
    assert.deepEqual(
      responses.map((r) => r.status),
      paths.map(() => 200),
    );
    const sids = new Set(responses.map((r) => setCookies(r, 'sid').find((c) => c.value !== '')?.value));
    assert.equal(sids.size, 1, `every response sets the same sid (got ${[...sids].join(', ')})`);
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as Array<{ user: string; authenticated?: boolean }>;
    assert.deepEqual(
      bodies.map((b) => b.user),
      paths.map(() => 'dave'),
    );
    const jar = new CookieJar();
    jar.take(responses[0]!);
    const dave = new Browser(next.url, jar);
    const me = await dave.json<{ sessions: string[]; sid: string }>('/me');
    assert.deepEqual(me.sessions, [me.sid], 'sessionsOf(dave) lists exactly the one session');
    assert.deepEqual(await new Browser(next.url).json('/admin/revoke?user=dave', { method: 'POST' }), { revoked: 1 });
    assert.equal((await new Browser(next.url, copyOf(daveOld)).fetch('/api/account')).status, 401);
  });
});
