import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Koa from 'koa';
import request from 'supertest';
import { MemoryStore, requireLogin, session, type SessionHandle } from '../src/index.js';
import { cookieHeader, makeApp, sidOf } from './helpers/app.js';
import { expiresAfter, setCookies } from './helpers/cookies.js';

interface User {
  id: string;
  name: string;
}

declare module '../src/index.js' {
  interface SessionData {
    user?: User;
    cart?: string[];
  }
}

declare module 'koa' {
  interface ExtendableContext {
    auth: SessionHandle<{ user?: User }>;
  }
}

const ada: User = { id: '1', name: 'Ada' };

function authApp(options: Parameters<typeof makeApp>[0] = {}) {
  const master = new MemoryStore();
  const app = makeApp({ master, ...options }, async (ctx) => {
    switch (ctx.path) {
      case '/cart':
        await ctx.session.withLock((s) => void (s.cart = ['book']));
        break;
      case '/login':
        await ctx.session.login(ada, {
          remember: ctx.query.remember !== 'no',
          keepData: ctx.query.keep === 'yes',
          ...(ctx.query.ttl ? { ttl: Number(ctx.query.ttl) } : {}),
        });
        break;
      case '/logout':
        await ctx.session.logout();
        break;
      case '/sessions':
        ctx.body = { sessions: await ctx.session.sessionsOf(ada) };
        return;
      case '/revoke-others':
        ctx.body = { revoked: await ctx.session.revokeAll(ada, { except: ctx.session.id! }) };
        return;
      case '/private':
        await requireLogin()(ctx, async () => {
          ctx.body = { secret: (await ctx.session.currentUser())!.name };
        });
        return;
    }
    ctx.body = { id: ctx.session.id ?? null, user: (await ctx.session.currentUser()) ?? null, data: await ctx.session.get() };
  });
  return { master, server: app.callback() };
}

describe('login / logout', () => {
  it('login regenerates the sid: an attacker-planted sid is not the sid after login, and is dead', async () => {
    const { master, server } = authApp();
    // The attacker's own valid session, planted in the victim's browser.
    const planted = await request(server).get('/cart');
    const plantedSid = sidOf(planted);
    const login = await request(server).get('/login').set('Cookie', cookieHeader(planted.headers['set-cookie']));
    assert.notEqual(login.body.id, plantedSid);
    assert.deepEqual(login.body.user, ada);
    assert.deepEqual(login.body.data, { user: ada }, 'login starts from empty data by default');
    assert.equal(await master.get(plantedSid), undefined, 'the old sid is dead in the store');
    const withOld = await request(server).get('/').set('Cookie', cookieHeader(planted.headers['set-cookie']));
    // Right after the login the old sid answers 409 (a request of the same browser racing the login
    // retries with the new cookie); it never leads to the new session and sets no cookie.
    assert.equal(withOld.status, 409);
    assert.equal(withOld.headers['set-cookie'], undefined);
    assert.doesNotMatch(withOld.text, /Ada/);
  });

  it('keepData carries the anonymous session over', async () => {
    const { server } = authApp();
    const cart = await request(server).get('/cart');
    const login = await request(server).get('/login?keep=yes').set('Cookie', cookieHeader(cart.headers['set-cookie']));
    assert.deepEqual(login.body.data, { cart: ['book'], user: ada });
  });

  it('logout clears data and sid everywhere; reusing the old cookie gets a logged-out session', async () => {
    const mirror = new MemoryStore();
    const { master, server } = authApp({ mirrors: [mirror] });
    const login = await request(server).get('/login');
    const cookie = cookieHeader(login.headers['set-cookie']);
    const sid = sidOf(login);
    const out = await request(server).get('/logout').set('Cookie', cookie);
    assert.equal(out.body.user, null);
    assert.equal(await master.get(sid), undefined);
    assert.equal(await mirror.get(sid), undefined);
    const reuse = await request(server).get('/private').set('Cookie', cookie);
    assert.equal(reuse.status, 401);
  });

  it('remember: false gives a browser-session cookie (no Expires), also on later saves; remember gives Max-Age', async () => {
    const { server } = authApp();
    const remembered = await request(server).get('/login');
    assert.match(String(remembered.headers['set-cookie']), /sid=[^;]+; path=\/; expires=/);
    const browserOnly = await request(server).get('/login?remember=no');
    const setCookie = (browserOnly.headers['set-cookie'] as unknown as string[])[0]!;
    assert.doesNotMatch(setCookie, /expires|max-age/i);
    const later = await request(server).get('/cart').set('Cookie', cookieHeader(browserOnly.headers['set-cookie']));
    // The sid did not change and a browser-session cookie has no expiry to move: nothing is re-sent, so it stays one.
    assert.equal(later.status, 200);
    assert.equal(later.headers['set-cookie'], undefined, 'a later save re-sends no browser-session cookie');
  });

  it('login ttl overrides the expiry for this session only, never beyond the configured ttl', async () => {
    const { server } = authApp({ ttl: 3_600_000 });
    let before = Date.now();
    const short = await request(server).get('/login?ttl=60000');
    expiresAfter(setCookies(short, 'sid')[0]!, 60_000, before, Date.now());
    before = Date.now();
    const long = await request(server).get('/login?ttl=999999999');
    expiresAfter(setCookies(long, 'sid')[0]!, 3_600_000, before, Date.now());
  });

  it('requireLogin answers 401, lets OPTIONS through, or calls onUnauthorized', async () => {
    const app = new Koa();
    app.keys = ['k'];
    app.use(session());
    app.use(async (ctx, next) => (ctx.path === '/login' ? ctx.session.login(ada).then(() => void (ctx.body = 'in')) : next()));
    app.use(requireLogin({ onUnauthorized: (ctx) => ctx.redirect('/login') }));
    app.use((ctx) => void (ctx.body = ctx.method === 'OPTIONS' ? 'preflight' : 'secret'));
    const server = app.callback();
    assert.equal((await request(server).get('/x')).status, 302);
    assert.equal((await request(server).options('/x')).text, 'preflight');
    const login = await request(server).get('/login');
    assert.equal((await request(server).get('/x').set('Cookie', cookieHeader(login.headers['set-cookie']))).text, 'secret');

    const { server: plain } = authApp();
    const denied = await request(plain).get('/private');
    assert.equal(denied.status, 401);
  });
});

describe('log out everywhere', () => {
  it("revokeAll from one device kills the other device's session; sessionsOf lists live sessions only", async () => {
    const { master, server } = authApp({ ttl: 60_000 });
    const phone = await request(server).get('/login');
    const laptop = await request(server).get('/login');
    const tablet = await request(server).get('/login');
    const list = await request(server).get('/sessions').set('Cookie', cookieHeader(laptop.headers['set-cookie']));
    assert.deepEqual(new Set(list.body.sessions), new Set([sidOf(phone), sidOf(laptop), sidOf(tablet)]));

    // The tablet's session expires (or is destroyed behind the index's back): it drops out of the list.
    await master.destroy(sidOf(tablet));
    const afterExpiry = await request(server).get('/sessions').set('Cookie', cookieHeader(laptop.headers['set-cookie']));
    assert.deepEqual(new Set(afterExpiry.body.sessions), new Set([sidOf(phone), sidOf(laptop)]));

    const revoke = await request(server).get('/revoke-others').set('Cookie', cookieHeader(laptop.headers['set-cookie']));
    assert.deepEqual(revoke.body.revoked, [sidOf(phone)]);
    const phoneAgain = await request(server).get('/private').set('Cookie', cookieHeader(phone.headers['set-cookie']));
    assert.equal(phoneAgain.status, 401, 'the other device is logged out');
    const laptopAgain = await request(server).get('/private').set('Cookie', cookieHeader(laptop.headers['set-cookie']));
    assert.equal(laptopAgain.status, 200, 'the current device stays logged in');
  });

  it('logout removes the session from the index', async () => {
    const { server } = authApp();
    const a = await request(server).get('/login');
    const b = await request(server).get('/login');
    await request(server).get('/logout').set('Cookie', cookieHeader(a.headers['set-cookie']));
    const list = await request(server).get('/sessions').set('Cookie', cookieHeader(b.headers['set-cookie']));
    assert.deepEqual(list.body.sessions, [sidOf(b)]);
  });
});

describe('auth with two named sessions on one app', () => {
  it('ctx.auth holds the login, ctx.session the rest; logging out of one leaves the other', async () => {
    const store = new MemoryStore();
    const app = new Koa();
    app.keys = ['k'];
    app.use(session({ master: store }));
    app.use(session({ name: 'auth', master: store, prefix: 'auth:', cookie: { sameSite: 'strict' } }));
    app.use(
      requireLogin({
        name: 'auth',
        onUnauthorized: async (ctx, next) => (ctx.path === '/login' || ctx.path === '/cart' ? next() : ctx.throw(401)),
      }),
    );
    app.use(async (ctx) => {
      if (ctx.path === '/login') await ctx.auth.login(ada);
      if (ctx.path === '/cart') await ctx.session.withLock((s) => void (s.cart = ['book']));
      if (ctx.path === '/logout') await ctx.auth.logout();
      ctx.body = { user: (await ctx.auth.currentUser()) ?? null, data: await ctx.session.get() };
    });
    const server = app.callback();
    const cart = await request(server).get('/cart');
    const login = await request(server).get('/login').set('Cookie', cookieHeader(cart.headers['set-cookie']));
    assert.match(String(login.headers['set-cookie']), /auth\.sid=.*samesite=strict/);
    const cookies = [cookieHeader(cart.headers['set-cookie']), cookieHeader(login.headers['set-cookie'])].join('; ');
    const me = await request(server).get('/me').set('Cookie', cookies);
    assert.deepEqual(me.body, { user: ada, data: { cart: ['book'] } });
    const out = await request(server).get('/logout').set('Cookie', cookies);
    assert.deepEqual(out.body, { user: null, data: { cart: ['book'] } });
    assert.equal((await request(server).get('/me').set('Cookie', cookies)).status, 401);
  });
});

describe('API clients and caches', () => {
  it('the sid can travel in a signed header; the new sid comes back in the same header', async () => {
    const { master, server } = authApp({ sid: { header: 'x-session-id' } });
    const first = await request(server).get('/cart');
    const token = first.headers['x-session-id'] as string;
    assert.match(token, /^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/);
    assert.equal(first.headers['set-cookie'], undefined, 'no cookie in header mode');
    assert.ok(await master.get(token.split('.')[0]!));
    const again = await request(server).get('/').set('x-session-id', token);
    assert.deepEqual(again.body.data, { cart: ['book'] });
    assert.match(String(again.headers.vary), /x-session-id/i);
    // Forged and malformed tokens: a fresh session.
    const forged = await request(server)
      .get('/')
      .set('x-session-id', `${token.split('.')[0]}.${'A'.repeat(43)}`);
    assert.deepEqual(forged.body.data, {});
    const odd = await request(server).get('/').set('x-session-id', '../etc/passwd');
    assert.deepEqual(odd.body.data, {});
    const login = await request(server).get('/login').set('x-session-id', token);
    assert.notEqual(
      (login.headers['x-session-id'] as string).split('.')[0],
      token.split('.')[0],
      'login returns the new sid in the header',
    );
  });

  it('responses that read or set a session carry Vary: Cookie and Cache-Control: private unless the app set its own', async () => {
    const app = makeApp({}, async (ctx) => {
      if (ctx.path === '/untouched') ctx.body = 'x';
      else if (ctx.path === '/own') {
        ctx.set('Cache-Control', 'no-store');
        ctx.body = await ctx.session.get();
      } else ctx.body = await ctx.session.get();
    });
    const server = app.callback();
    const read = await request(server).get('/read');
    assert.equal(read.headers.vary, 'Cookie');
    assert.equal(read.headers['cache-control'], 'private');
    const own = await request(server).get('/own');
    assert.equal(own.headers['cache-control'], 'no-store');
    const untouched = await request(server).get('/untouched');
    assert.equal(untouched.headers.vary, undefined);
    assert.equal(untouched.headers['cache-control'], undefined);
  });

  it("an app's own Vary is kept and Cookie added to it once", async () => {
    const app = makeApp({}, async (ctx) => {
      ctx.vary(ctx.path === '/cookie' ? 'Cookie' : 'Accept-Encoding');
      ctx.body = await ctx.session.get();
    });
    const server = app.callback();
    assert.equal((await request(server).get('/')).headers.vary, 'Accept-Encoding, Cookie');
    assert.equal((await request(server).get('/cookie')).headers.vary, 'Cookie');
  });
});
