/** Nested withLock() / lock() of one handle join the open scope instead of deadlocking, and each is saved when it ends. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { cookieHeader } from './helpers/cookies.js';
import { countingApp } from './helpers/counting-app.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
    name?: string;
  }
}

describe('Nested scopes of one handle', () => {
  it('nested scopes of one handle do not deadlock; each nested scope is saved before its promise resolves', async () => {
    const { store, server } = countingApp(
      async (ctx) => {
        ctx.body = await ctx.session.withLock(async (outer) => {
          outer.count = 1;
          const inner = await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1));
          {
            await using s = await ctx.session.lock();
            s.name = 'nested';
          }
          return { inner, outer: outer.count };
        });
      },
      { lockTimeout: 60_000 },
    );
    const res = await request(server).get('/');
    assert.deepEqual(res.body, { inner: 2, outer: 2 });
    const cookie = cookieHeader(res.headers['set-cookie']);
    // The inner withLock and the inner lock() each changed the data and were saved when they
    // ended (under the lock the outer scope still holds); the outer changed nothing after them.
    assert.equal(store.calls.set, 2);
    const snap = await request(server).get('/').set('Cookie', cookie);
    assert.deepEqual(snap.body, { inner: 2, outer: 2 });
  });
});
