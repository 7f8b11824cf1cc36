import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Koa from 'koa';
import request from 'supertest';
import { CookieStore, session, type SessionHandle } from '../src/index.js';
import { CookieJar } from './helpers/cookies.js';

interface CartData {
  items?: string[];
}

declare module 'koa' {
  interface ExtendableContext {
    cart: SessionHandle<CartData>;
  }
}

declare module '../src/index.js' {
  interface SessionData {
    who?: string;
  }
}

const MAIN_KEY = 'm'.repeat(32);
const CART_KEY = 'c'.repeat(32);

function cartApp(main: CookieStore, cart: CookieStore, cartOptions: Parameters<typeof session>[0] = {}) {
  const app = new Koa();
  app.silent = true;
  const errors: Error[] = [];
  const invalid: string[] = [];
  app.on('error', (e: Error) => errors.push(e));
  app.on('session:invalid', (e: { reason: string }) => invalid.push(e.reason));
  app.use(session({ master: main }));
  app.use(session({ name: 'cart', master: cart, ...cartOptions }));
  app.use(async (ctx) => {
    if (ctx.path === '/login') await ctx.session.withLock((s) => void (s.who = 'ada'));
    if (ctx.path === '/add') await ctx.cart.withLock((c) => void (c.items = [...(c.items ?? []), String(ctx.query.item)]));
    ctx.body = { user: (await ctx.session.get()).who ?? null, cart: (await ctx.cart.get()).items ?? [] };
  });
  return { server: app.callback(), errors, invalid };
}

describe('named sessions on their own CookieStores', () => {
  it('default CookieStores: the cart gets its own cookie (cart.session); cart writes never log the main user out', async () => {
    const { server, invalid, errors } = cartApp(new CookieStore({ keys: [MAIN_KEY] }), new CookieStore({ keys: [CART_KEY] }));
    const jar = new CookieJar();
    jar.take(await request(server).get('/login'));
    for (const item of ['apple', 'pear', 'fig']) {
      const res = jar.take(await request(server).get(`/add?item=${item}`).set('Cookie', jar.header));
      assert.equal(res.status, 200, String(errors[0]?.stack));
      assert.equal(res.body.user, 'ada', `still logged in after adding ${item}`);
    }
    const last = await request(server).get('/').set('Cookie', jar.header);
    assert.deepEqual(last.body, { user: 'ada', cart: ['apple', 'pear', 'fig'] });
    assert.deepEqual([...jar.cookies.keys()].sort(), ['cart.session', 'session']);
    assert.deepEqual(invalid, []);
  });

  it("session({ cookie: { name } }) names a CookieStore's cookie", async () => {
    const { server } = cartApp(new CookieStore({ keys: [MAIN_KEY] }), new CookieStore({ keys: [CART_KEY] }), {
      cookie: { name: 'basket' },
    });
    const res = await request(server).get('/add?item=x');
    assert.match(String(res.headers['set-cookie']), /(^|,)basket=/);
  });

  it('two sessions of one app on the same cookie name fail at the first request with the fix', async () => {
    const same = { cookie: { name: 'shared' } };
    const { server, errors } = cartApp(new CookieStore({ keys: [MAIN_KEY], ...same }), new CookieStore({ keys: [CART_KEY], ...same }));
    for (let i = 0; i < 2; i++) assert.equal((await request(server).get('/')).status, 500);
    assert.equal(errors.length, 2, 'every request fails, not only the first');
    assert.match(errors[0]!.message, /sessions "session" and "cart" both use the cookie "shared".*cookie: \{ name \}/);
  });

  it('one CookieStore given to two session()s fails at startup', () => {
    const store = new CookieStore({ keys: [MAIN_KEY] });
    session({ master: store });
    assert.throws(() => session({ name: 'cart', master: store }), /already the master of session "session".*its own CookieStore/);
  });
});
