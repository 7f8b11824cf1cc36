/** Leaving a scope: `await using` a lock() saves and releases at the end of the block; withLock() returns what fn returns. */
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

describe('Leaving a scope', () => {
  it('await using: leaving the block saves and releases', async () => {
    const { locker, server } = countingApp(async (ctx) => {
      {
        await using s = await ctx.session.lock();
        s.count = (s.count ?? 0) + 10;
      }
      ctx.body = { size: locker.size, snap: await ctx.session.get() };
    });
    const first = await request(server).get('/');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const second = await request(server).get('/').set('Cookie', cookie);
    assert.deepEqual(second.body, { size: 0, snap: { count: 20 } });
  });
  it('withLock returns what fn returns', async () => {
    const { server } = countingApp(async (ctx) => {
      ctx.body = { value: await ctx.session.withLock(async () => 'result') };
    });
    assert.deepEqual((await request(server).get('/')).body, { value: 'result' });
  });
});
