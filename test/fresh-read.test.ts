/** A scope reads the store again under the lock, so it sees what another request saved after this one began. */
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

describe('Fresh read under the lock', () => {
  it('reads fresh under the lock: a scope sees what another request saved after this request began', async () => {
    const { server } = countingApp(async (ctx) => {
      if (ctx.path === '/inc') {
        ctx.body = await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1));
        return;
      }
      const before = await ctx.session.get(); // unlocked snapshot, cached
      await request(server).get('/inc').set('Cookie', ctx.get('Cookie'));
      const underLock = await ctx.session.withLock((s) => s.count);
      ctx.body = { before: before.count, underLock };
    });
    const cookie = cookieHeader((await request(server).get('/inc')).headers['set-cookie']);
    const res = await request(server).get('/check').set('Cookie', cookie);
    assert.deepEqual(res.body, { before: 1, underLock: 2 });
  });
});
