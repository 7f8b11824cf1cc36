/** rolling: true extends the store and cookie expiry on every request that uses the session. */
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

describe('rolling: true', () => {
  it('rolling: every request that uses the session extends store and cookie expiry', async () => {
    const { store, server } = countingApp(
      async (ctx) => {
        if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.name = 'ada'));
        else await ctx.session.get();
        ctx.body = 'ok';
      },
      { rolling: true },
    );
    const cookie = cookieHeader((await request(server).get('/set')).headers['set-cookie']);
    const res = await request(server).get('/read').set('Cookie', cookie);
    assert.equal(store.calls.touch, 1);
    assert.ok(res.headers['set-cookie'], 'the cookie is re-sent');
  });
});
