/** The session is lazy: a route that never touches it costs nothing, and a new session that saves nothing leaves no trace. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { countingApp } from './helpers/counting-app.js';

describe('Lazy session: nothing happens until a route uses it', () => {
  it('a route that never touches the session makes no store call and sets no cookie', async () => {
    const { store, server } = countingApp(async (ctx) => {
      ctx.body = 'hello';
    });
    const res = await request(server).get('/');
    assert.equal(res.status, 200);
    assert.equal(res.headers['set-cookie'], undefined);
    assert.equal(store.total, 0);
  });
  it('a new session that saves nothing gets no cookie and no store write', async () => {
    const { store, server } = countingApp(async (ctx) => {
      const snapshot = await ctx.session.get();
      await ctx.session.withLock(() => undefined);
      ctx.body = snapshot;
    });
    const res = await request(server).get('/');
    assert.deepEqual(res.body, {});
    assert.equal(res.headers['set-cookie'], undefined);
    assert.equal(store.calls.set, 0);
  });
});
