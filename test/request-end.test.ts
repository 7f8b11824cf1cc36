/**
 * What happens to scopes at the edges of a request: a `lock()` never disposed
 * (it must not hold the session's lock for good), a scope started after the
 * response was sent, and `get()` on a session destroyed meanwhile with
 * `rolling` on.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import request from 'supertest';
import { MemoryLocker, MemoryStore, SessionError } from '../src/index.js';
import { cookieHeader, makeApp } from './helpers/app.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
    afterResponse?: string;
  }
}

describe('a lock() that is never disposed', () => {
  function leakyApp() {
    const store = new MemoryStore();
    const locker = new MemoryLocker();
    const app = makeApp({ master: store, locker, lockTimeout: 2000 }, async (ctx) => {
      if (ctx.path === '/leak' || ctx.path === '/leak-throw') {
        const s = await ctx.session.lock(); // no `await using`: never disposed
        s.count = (s.count ?? 0) + 1;
        if (ctx.path === '/leak-throw') throw new Error('handler failed');
        ctx.body = { count: s.count };
        return;
      }
      ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)) };
    });
    return { store, locker, server: app.callback() };
  }

  it('is ended with its request: later requests of the session are not blocked, and the change is saved', async () => {
    const { locker, server } = leakyApp();
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const first = await request(server).get('/inc');
      const cookie = cookieHeader(first.headers['set-cookie']);
      const leak = await request(server).get('/leak').set('Cookie', cookie);
      assert.equal(leak.status, 200);
      assert.equal(locker.size, 0, 'no lock is left held');
      const next = await request(server).get('/inc').set('Cookie', cookie);
      assert.equal(next.status, 200, 'not blocked until lockTimeout');
      assert.deepEqual(next.body, { count: 3 }, 'the undisposed scope was saved after its request succeeded');
      await request(server).get('/leak').set('Cookie', cookie);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(
        warnings.filter((w) => (w as { code?: string }).code === 'KOA_LOCKED_SESSION_UNDISPOSED_LOCK').length <= 1,
        true,
        'reported once per process',
      );
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('after a request that threw, it is discarded and released', async () => {
    const { locker, server } = leakyApp();
    const cookie = cookieHeader((await request(server).get('/inc')).headers['set-cookie']);
    const failed = await request(server).get('/leak-throw').set('Cookie', cookie);
    assert.equal(failed.status, 500);
    assert.equal(locker.size, 0);
    const next = await request(server).get('/inc').set('Cookie', cookie);
    assert.equal(next.status, 200);
    assert.deepEqual(next.body, { count: 2 }, 'the failed request changed nothing');
  });

  it('20 leaky requests in a row never pile up waiters', async () => {
    const { locker, server } = leakyApp();
    const cookie = cookieHeader((await request(server).get('/inc')).headers['set-cookie']);
    for (let i = 0; i < 20; i++) assert.equal((await request(server).get('/leak').set('Cookie', cookie)).status, 200);
    assert.equal(locker.size, 0);
    assert.deepEqual((await request(server).get('/inc').set('Cookie', cookie)).body, { count: 22 });
  });
});

describe('a scope started after the response was sent', () => {
  function lateApp() {
    const store = new MemoryStore();
    const outcomes: Array<Promise<{ error?: unknown }>> = [];
    const app = makeApp({ master: store }, async (ctx) => {
      if (ctx.path === '/inc') {
        ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)), id: ctx.session.id };
        return;
      }
      ctx.body = 'sent';
      // Deliberately not awaited: runs once the response is out.
      outcomes.push(
        once(ctx.res, 'finish')
          .then(() => ctx.session.withLock((s) => void (s.afterResponse = 'yes')))
          .then(
            () => ({}),
            (error: unknown) => ({ error }),
          ),
      );
    });
    return { store, outcomes, server: app.callback() };
  }

  it('on an existing session it still saves (the cookie already sent stays valid)', async () => {
    const { store, outcomes, server } = lateApp();
    const first = await request(server).get('/inc');
    const res = await request(server).get('/late').set('Cookie', cookieHeader(first.headers['set-cookie']));
    assert.equal(res.status, 200);
    assert.deepEqual(await outcomes[0], {});
    assert.deepEqual(JSON.parse((await store.get(first.body.id))!), { count: 1, afterResponse: 'yes' });
  });

  it('on a new session it is refused with a SessionError naming the fix, and writes nothing', async () => {
    const { store, outcomes, server } = lateApp();
    const res = await request(server).get('/late');
    assert.equal(res.status, 200);
    const { error } = await outcomes[0]!;
    assert.ok(error instanceof SessionError, `expected a SessionError, got ${String(error)}`);
    assert.match(error.message, /response was already sent/);
    assert.equal(store.size, 0);
  });
});

describe('rolling cookies and a session destroyed meanwhile', () => {
  it('get() on a destroyed session makes the request anonymous and does not re-send a cookie for the dead sid', async () => {
    const store = new MemoryStore();
    const app = makeApp({ master: store, rolling: true }, async (ctx) => {
      if (ctx.path === '/inc') await ctx.session.withLock((s) => void (s.count = (s.count ?? 0) + 1));
      const data = await ctx.session.get();
      ctx.body = { isNew: ctx.session.isNew, data };
    });
    const server = app.callback();
    const first = await request(server).get('/inc');
    const cookie = cookieHeader(first.headers['set-cookie']);
    store.clear(); // destroyed elsewhere (logout on another device, an operator, expiry)
    const res = await request(server).get('/read').set('Cookie', cookie);
    assert.deepEqual(res.body, { isNew: true, data: {} });
    const setCookie = String(res.headers['set-cookie'] ?? '');
    assert.doesNotMatch(setCookie, /max-age=\d{3,}/i, 'no long-lived cookie for a dead sid');
    assert.match(setCookie, /sid=;.*expires=Thu, 01 Jan 1970/, 'the stale cookie is cleared');
  });
});
