/** touch() extends the store and cookie expiry without rewriting the data. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { cookieHeader } from './helpers/cookies.js';
import { countingApp } from './helpers/counting-app.js';

declare module '../src/index.js' {
  interface SessionData {
    name?: string;
  }
}

describe('touch()', () => {
  it('touch extends the expiry without changing data', async () => {
    const { store, server } = countingApp(
      async (ctx) => {
        if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.name = 'ada'));
        if (ctx.path === '/touch') await ctx.session.touch();
        ctx.body = 'ok';
      },
      { ttl: 60_000 },
    );
    const cookie = cookieHeader((await request(server).get('/set')).headers['set-cookie']);
    const res = await request(server).get('/touch').set('Cookie', cookie);
    assert.equal(store.calls.touch, 1);
    assert.equal(store.calls.set, 1);
    assert.match(String(res.headers['set-cookie']), /sid=[^;]+; path=\/; expires=/, 'the cookie expiry is renewed too');
  });
});
