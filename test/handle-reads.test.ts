/**
 * No silent reads (issue 20 item 5): koa-session code reads data off `ctx.session`.
 * On the handle, `if (ctx.session.user)` was true for every anonymous request (a
 * method is truthy) and `ctx.session.views` was silently `undefined`. Every such read,
 * `JSON.stringify(ctx.session)`, `ctx.session.maxAge`, `ctx.session.save` and
 * `ctx.sessionOptions` now throw a TypeError naming our counterpart, while the
 * names runtimes probe (`then`, symbols, util.inspect) keep working.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import type Koa from 'koa';
import request from 'supertest';
import { MemoryStore } from '../src/index.js';
import { cookieHeader, makeApp } from './helpers/app.js';

/** An app whose one route runs `read` on the context and answers 200 with its result, or 500 with the thrown message. */
function probe(read: (ctx: Koa.Context) => unknown, options: Parameters<typeof makeApp>[0] = {}) {
  const app = makeApp({ master: new MemoryStore(), ...options }, async (ctx) => {
    if (ctx.path === '/login') {
      await ctx.session.login({ id: 'ada', name: 'Ada' });
      ctx.body = 'in';
      return;
    }
    try {
      ctx.body = { ok: String(await read(ctx)) };
    } catch (error) {
      ctx.status = 500;
      ctx.body = { error: error instanceof TypeError ? error.message : `not a TypeError: ${String(error)}` };
    }
  });
  return app;
}

const THROWING: Array<[string, (ctx: Koa.Context) => unknown, RegExp]> = [
  ['if (ctx.session.user)', (ctx) => (ctx.session as unknown as { user: unknown }).user ? 'let in' : 'kept out', /ctx\.session\.user is not the session data.*currentUser\(\)/],
  ['ctx.session.views', (ctx) => (ctx.session as unknown as Record<string, unknown>).views, /ctx\.session\.views is not the session data.*await ctx\.session\.get\(\).*withLock/],
  ['ctx.session.passport', (ctx) => (ctx.session as unknown as Record<string, unknown>).passport, /ctx\.session\.passport is not the session data/],
  ['delete ctx.session.views (it reads first in koa-session code)', (ctx) => { const s = ctx.session as unknown as Record<string, unknown>; if (s.views) delete s.views; }, /views is not the session data/],
  ['JSON.stringify(ctx.session)', (ctx) => JSON.stringify(ctx.session), /JSON\.stringify\(await ctx\.session\.get\(\)\)/],
  ['ctx.session.maxAge', (ctx) => (ctx.session as unknown as Record<string, unknown>).maxAge, /login\(user, \{ ttl, remember \}\).*cookie\.maxAge/],
  ['ctx.session.maxAge = 1000', (ctx) => { (ctx.session as unknown as Record<string, unknown>).maxAge = 1000; }, /login\(user, \{ ttl, remember \}\).*cookie\.maxAge/],
  ['ctx.session.save()', (ctx) => (ctx.session as unknown as { save(): void }).save(), /ctx\.session\.save is not the session data.*withLock/],
  ['ctx.sessionOptions.maxAge = 1', (ctx) => { (ctx as unknown as { sessionOptions: Record<string, unknown> }).sessionOptions.maxAge = 1; }, /sessionOptions.*session\(\{ ttl, cookie/],
];

describe('reads of data-like names on the session handle', () => {
  for (const [label, read, message] of THROWING) {
    it(`${label} throws a TypeError naming the fix`, async () => {
      const res = await request(probe(read).callback()).get('/');
      assert.equal(res.status, 500);
      assert.match(res.body.error, message);
    });
  }

  it('a logged-in request is no different: ctx.session.user still throws, currentUser() answers', async () => {
    const app = probe((ctx) => (ctx.session as unknown as { user: unknown }).user);
    const login = await request(app.callback()).get('/login');
    const res = await request(app.callback()).get('/').set('Cookie', cookieHeader(login));
    assert.equal(res.status, 500);
    assert.match(res.body.error, /currentUser/);
    const ok = await request(probe(async (ctx) => JSON.stringify(await ctx.session.currentUser())).callback()).get('/');
    assert.deepEqual(ok.body, { ok: 'undefined' });
  });

  it('the names runtimes probe keep working: await, async return, util.inspect, symbols, Object.prototype', async () => {
    const res = await request(
      probe(async (ctx) => {
        const handle = ctx.session;
        const awaited = await handle; // probes `then`
        const returned = await (async () => handle)();
        assert.equal(awaited, handle);
        assert.equal(returned, handle);
        assert.match(inspect(handle), /SessionHandle/);
        assert.equal(String(Object.prototype.toString.call(handle)), '[object Object]');
        assert.equal(typeof handle.hasOwnProperty, 'function');
        assert.equal((handle as unknown as Record<symbol, unknown>)[Symbol.toPrimitive], undefined);
        assert.equal('views' in handle, false);
        assert.equal(handle.isNew, true);
        assert.equal(handle.id, undefined);
        return (await handle.get()) && 'fine';
      }).callback(),
    ).get('/');
    assert.deepEqual(res.body, { ok: 'fine' });
  });

  it('auth.legacyUserMethod keeps user() for this release, with one DeprecationWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const app = probe(async (ctx) => JSON.stringify(await (ctx.session as unknown as { user(): Promise<unknown> }).user()), { auth: { legacyUserMethod: true } });
      const login = await request(app.callback()).get('/login');
      const first = await request(app.callback()).get('/').set('Cookie', cookieHeader(login));
      const second = await request(app.callback()).get('/').set('Cookie', cookieHeader(login));
      assert.deepEqual(first.body, { ok: '{"id":"ada","name":"Ada"}' });
      assert.deepEqual(second.body, first.body);
      await new Promise<void>((resolve) => setImmediate(resolve)); // 'warning' is emitted on the next tick
      assert.equal(warnings.filter((w) => w.name === 'DeprecationWarning' && /currentUser/.test(w.message)).length, 1);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('auth.legacyUserMethod must be a boolean', () => {
    assert.throws(() => makeApp({ auth: { legacyUserMethod: 'yes' as unknown as boolean } }, () => {}), /auth\.legacyUserMethod/);
  });
});
