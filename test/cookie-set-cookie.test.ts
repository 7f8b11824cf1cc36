/**
 * CookieStore's Set-Cookie is serialized by the cached SetCookieWriter (src/cookie/bound.ts)
 * instead of ctx.cookies.set: browsers must get the very bytes ctx.cookies.set writes, a second
 * save in one request must replace the first cookie (never two cookies of one name), and a
 * destroy after a save must leave exactly the clearing cookie.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Koa from 'koa';
import request from 'supertest';
import { CookieStore, session } from '../src/index.js';
import { cookieSetAttributes } from '../src/sid/cookie-attributes.js';

const KEYS = ['a CookieStore test key, 32+ chars long'];

function appWith(store: CookieStore, handler: (ctx: Koa.Context) => Promise<void>): Koa {
  const app = new Koa();
  app.keys = ['k'];
  app.proxy = true;
  app.silent = true;
  app.use(session({ master: store }));
  app.use(async (ctx) => {
    await handler(ctx);
    ctx.body = 'ok';
  });
  return app;
}

const withoutExpires = (h: string) => h.replace(/; expires=[^;]+/, '');

describe('CookieStore Set-Cookie bytes', () => {
  for (const [title, cookie, https] of [
    ['defaults', {}, false],
    ['defaults over HTTPS', {}, true],
    [
      'domain, path, strict, partitioned',
      { domain: 'example.com', path: '/app', sameSite: 'strict', secure: true, partitioned: true },
      true,
    ],
  ] as const) {
    it(`are the ones ctx.cookies.set writes: ${title}`, async () => {
      const store = new CookieStore({ keys: KEYS, cookie });
      const app = appWith(store, (ctx) => ctx.session.withLock((s) => void ((s as { n?: number }).n = 1)));
      const req = request(app.callback()).get(cookie.path ?? '/');
      const res = await (https ? req.set('X-Forwarded-Proto', 'https') : req);
      const headers = res.headers['set-cookie'] as unknown as string[];
      assert.equal(headers.length, 1);
      const ours = headers[0]!;
      const value = ours.slice(ours.indexOf('=') + 1, ours.indexOf(';'));
      assert.match(ours, /; expires=/);
      // The same value written by ctx.cookies.set with the store's attributes and a ttl-long lifetime.
      const koa = new Koa();
      koa.proxy = true;
      koa.use((ctx) => {
        ctx.cookies.set(store.cookie.name, value, cookieSetAttributes(store.cookie, ctx, 86_400_000));
        ctx.body = 'ok';
      });
      const ref = request(koa.callback()).get('/');
      const theirs = ((await (https ? ref.set('X-Forwarded-Proto', 'https') : ref)).headers['set-cookie'] as unknown as string[])[0]!;
      assert.equal(withoutExpires(ours), withoutExpires(theirs));
    });
  }

  it('two saves in one request send one cookie, the last one; a destroy after them sends only the clearing cookie', async () => {
    const store = new CookieStore({ keys: KEYS });
    const twice = appWith(store, async (ctx) => {
      await ctx.session.withLock((s) => void ((s as { n?: number }).n = 1));
      await ctx.session.withLock((s) => void ((s as { n?: number }).n = 2));
    });
    const res = await request(twice.callback()).get('/');
    const headers = res.headers['set-cookie'] as unknown as string[];
    assert.equal(headers.length, 1);
    const cookie = headers[0]!.split(';')[0]!;
    const back = await request(
      appWith(store, async (ctx) => {
        ctx.set('X-N', String((await ctx.session.get()).n));
      }).callback(),
    )
      .get('/')
      .set('Cookie', cookie);
    assert.equal(back.headers['x-n'], '2');

    const destroyed = appWith(store, async (ctx) => {
      await ctx.session.withLock((s) => void ((s as { n?: number }).n = 1));
      await ctx.session.destroy();
    });
    const gone = (await request(destroyed.callback()).get('/')).headers['set-cookie'] as unknown as string[];
    assert.equal(gone.length, 1);
    assert.match(gone[0]!, /^session=; path=\/; expires=Thu, 01 Jan 1970 00:00:00 GMT/);
  });
});
