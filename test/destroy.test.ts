/** destroy() deletes the record and clears the cookie. */
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

describe('destroy()', () => {
  it('destroy deletes the record and clears the cookie', async () => {
    const { store, server } = countingApp(async (ctx) => {
      if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.name = 'ada'));
      if (ctx.path === '/destroy') await ctx.session.destroy();
      ctx.body = { id: ctx.session.id ?? null };
    });
    const first = await request(server).get('/set');
    const res = await request(server).get('/destroy').set('Cookie', cookieHeader(first.headers['set-cookie']));
    assert.equal(res.body.id, null);
    assert.equal(await store.inner.get(first.body.id), undefined);
    assert.match(String(res.headers['set-cookie']), /sid=;.*expires=Thu, 01 Jan 1970/);
  });
});
