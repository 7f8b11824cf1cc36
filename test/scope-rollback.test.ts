/** A scope that throws saves nothing and releases the lock; a nested scope that throws rolls back only its own changes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { cookieHeader } from './helpers/cookies.js';
import { countingApp } from './helpers/counting-app.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

describe('A scope that throws saves nothing', () => {
  it('a scope that throws saves nothing, releases the lock, and the next request gets it at once', async () => {
    const { store, locker, server } = countingApp(
      async (ctx) => {
        if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.count = 1));
        if (ctx.path === '/throw') {
          await ctx.session.withLock((s) => {
            s.count = 99;
            throw new Error('boom');
          });
        }
        ctx.body = await ctx.session.get();
      },
      { lockTimeout: 60_000 },
    );
    const cookie = cookieHeader((await request(server).get('/set')).headers['set-cookie']);
    const failed = await request(server).get('/throw').set('Cookie', cookie);
    assert.equal(failed.status, 500);
    assert.equal(locker.size, 0, 'no lock is held after the failed scope');
    const next = await request(server).get('/read').set('Cookie', cookie);
    assert.deepEqual(next.body, { count: 1 });
    assert.equal(store.calls.set, 1);
  });
  it('a nested scope that throws rolls back only its own changes', async () => {
    const { server } = countingApp(async (ctx) => {
      await ctx.session.withLock(async (s) => {
        s.count = 1;
        await ctx.session
          .withLock((inner) => {
            inner.count = 50;
            throw new Error('inner');
          })
          .catch(() => undefined);
      });
      ctx.body = await ctx.session.get();
    });
    const res = await request(server).get('/');
    assert.deepEqual(res.body, { count: 1 });
  });
});

/**
 * One request, two parallel withLock calls: the first sets `count` to 1 and is
 * saved (its caller told so); the second, joined, waits for that, then makes
 * `change` and throws.
 */
function savedThenThrowApp(change: (s: Record<string, unknown>) => void) {
  return countingApp(async (ctx) => {
    if (ctx.path === '/read') {
      ctx.body = await ctx.session.get();
      return;
    }
    let firstSaved!: () => void;
    const saved = new Promise<void>((resolve) => (firstSaved = resolve));
    const first = ctx.session.withLock((s) => void (s.count = 1)).then(firstSaved);
    const second = ctx.session.withLock(async (s) => {
      await saved;
      change(s as Record<string, unknown>);
      throw new Error('second');
    });
    await first;
    await second.catch(() => undefined);
    ctx.body = await ctx.session.get();
  });
}

describe('A joined scope that throws never undoes a change another scope of the request saved', () => {
  it('parallel withLock calls: the first saves and resolves, the second then changes the same key and throws: the saved value stays', async () => {
    const { server } = savedThenThrowApp((s) => (s.count = 99));
    const res = await request(server).get('/');
    assert.deepEqual(res.body, { count: 1 });
    const stored = await request(server).get('/read').set('Cookie', cookieHeader(res.headers['set-cookie']));
    assert.deepEqual(stored.body, { count: 1 }, 'the stored record keeps the acknowledged value');
  });

  it('a key the first call did not hand in is still rolled back to what it was when the second joined', async () => {
    const { server } = savedThenThrowApp((s) => (s.other = 'x'));
    const res = await request(server).get('/');
    assert.deepEqual(res.body, { count: 1 });
    const stored = await request(server).get('/read').set('Cookie', cookieHeader(res.headers['set-cookie']));
    assert.deepEqual(stored.body, { count: 1 });
  });
});
