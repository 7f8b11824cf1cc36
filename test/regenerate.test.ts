/** regenerate() gives a new sid with the same data; the old sid is destroyed and its cookie stops working. */
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

describe('regenerate()', () => {
  it('regenerate gives a new sid with the same data and kills the old one', async () => {
    const { store, server } = countingApp(async (ctx) => {
      if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.name = 'ada'));
      if (ctx.path === '/regen') await ctx.session.regenerate();
      ctx.body = { id: ctx.session.id, data: await ctx.session.get() };
    });
    const first = await request(server).get('/set');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const regen = await request(server).get('/regen').set('Cookie', cookie);
    assert.notEqual(regen.body.id, first.body.id);
    assert.deepEqual(regen.body.data, { name: 'ada' });
    assert.equal(await store.inner.get(first.body.id), undefined, 'old sid destroyed');
    const old = await request(server).get('/').set('Cookie', cookie);
    assert.equal(old.status, 409, 'the old cookie no longer works: right after the move it answers 409 (retry with the new cookie)');
    assert.doesNotMatch(old.text, /ada/);
    const fresh = await request(server).get('/').set('Cookie', cookieHeader(regen.headers['set-cookie']));
    assert.deepEqual(fresh.body.data, { name: 'ada' });
  });
});
