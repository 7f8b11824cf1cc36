/** A scope that leaves the data as it found it writes nothing and re-sends no cookie. */
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

describe('Saving only on change', () => {
  it('saves only on change', async () => {
    const { store, server } = countingApp(async (ctx) => {
      if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.name = 'ada'));
      else await ctx.session.withLock((s) => void (s.name = 'ada')); // same value: no write
      ctx.body = 'ok';
    });
    const cookie = cookieHeader((await request(server).get('/set')).headers['set-cookie']);
    assert.equal(store.calls.set, 1);
    const again = await request(server).get('/same').set('Cookie', cookie);
    assert.equal(store.calls.set, 1);
    assert.equal(again.headers['set-cookie'], undefined, 'no cookie refresh without a save');
  });
});
