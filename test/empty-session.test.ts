/** A scope that leaves the data empty destroys the session: the record is deleted and the cookie cleared. */
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

describe('Emptying the data destroys the session', () => {
  it('emptying the data destroys the session', async () => {
    const { store, server } = countingApp(async (ctx) => {
      if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.name = 'ada'));
      else await ctx.session.withLock((s) => void delete s.name);
      ctx.body = { id: ctx.session.id ?? null };
    });
    const first = await request(server).get('/set');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const res = await request(server).get('/empty').set('Cookie', cookie);
    assert.equal(res.body.id, null);
    assert.equal(store.calls.destroy, 1);
    assert.equal(await store.inner.get(first.body.id ?? /sid=([^;]+)/.exec(cookie)![1]!), undefined);
    assert.match(String(res.headers['set-cookie']), /sid=;/, 'the cookie is cleared');
  });
});
