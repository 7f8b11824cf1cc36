import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Koa from 'koa';
import request from 'supertest';
import { MemoryStore, session, type SessionHandle } from '../src/index.js';
import { cookieHeader } from './helpers/app.js';

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
    visits?: number;
  }
}

describe('several named sessions on one app', () => {
  it('ctx.session and ctx.cart live in separate cookies and records', async () => {
    const shared = new MemoryStore();
    const app = new Koa();
    app.keys = ['k'];
    app.use(session({ master: shared }));
    app.use(session({ name: 'cart', master: shared, prefix: 'cart:' }));
    app.use(async (ctx) => {
      await ctx.session.withLock((s) => void (s.visits = (s.visits ?? 0) + 1));
      await ctx.cart.withLock((c) => void (c.items = [...(c.items ?? []), ctx.path]));
      ctx.body = { session: await ctx.session.get(), cart: await ctx.cart.get(), ids: [ctx.session.id, ctx.cart.id] };
    });
    const server = app.callback();
    const first = await request(server).get('/a');
    const setCookie = String(first.headers['set-cookie']);
    assert.match(setCookie, /(^|,)sid=/);
    assert.match(setCookie, /cart\.sid=/);
    const second = await request(server).get('/b').set('Cookie', cookieHeader(first.headers['set-cookie']));
    assert.deepEqual(second.body.session, { visits: 2 });
    assert.deepEqual(second.body.cart, { items: ['/a', '/b'] });
    assert.notEqual(second.body.ids[0], second.body.ids[1]);
    assert.ok(await shared.get(`cart:${second.body.ids[1]}`), 'the prefix separates the records');
  });

  it('two session() middlewares with the same name on one app fail with a clear error', async () => {
    const app = new Koa();
    app.keys = ['k'];
    app.silent = true;
    app.use(session());
    app.use(session());
    app.use((ctx) => void (ctx.body = 'x'));
    const res = await request(app.callback()).get('/');
    assert.equal(res.status, 500);
  });
});
