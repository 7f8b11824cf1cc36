/** get() returns a read-only snapshot (writing to it throws, even nested), read from the store at most once per request. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import type { SessionError } from '../src/index.js';
import { cookieHeader } from './helpers/cookies.js';
import { countingApp } from './helpers/counting-app.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
    nested?: { list: number[] };
  }
}

describe('get(): a read-only snapshot, read once per request', () => {
  it('get() is a read-only snapshot: writing to it throws, even nested', async () => {
    const { server } = countingApp(async (ctx) => {
      if (ctx.path === '/set') {
        await ctx.session.withLock((s) => void (s.nested = { list: [1] }));
        ctx.body = 'ok';
        return;
      }
      const snap = await ctx.session.get();
      const errors: string[] = [];
      for (const write of [
        () => ((snap as { count?: number }).count = 1),
        () => (snap.nested as { list: number[] }).list.push(2),
        () => delete (snap as { nested?: unknown }).nested,
      ]) {
        try {
          write();
        } catch (error) {
          errors.push((error as SessionError).message);
        }
      }
      ctx.body = { errors, snap };
    });
    const cookie = cookieHeader((await request(server).get('/set')).headers['set-cookie']);
    const res = await request(server).get('/').set('Cookie', cookie);
    assert.equal(res.body.errors.length, 3);
    assert.match(res.body.errors[0], /read-only snapshot.*withLock/);
    assert.deepEqual(res.body.snap, { nested: { list: [1] } });
  });
  it('get() reads the master at most once per request', async () => {
    const { store, server } = countingApp(async (ctx) => {
      if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.count = 1));
      else await Promise.all([ctx.session.get(), ctx.session.get(), ctx.session.get()]);
      ctx.body = 'ok';
    });
    const cookie = cookieHeader((await request(server).get('/set')).headers['set-cookie']);
    const before = store.calls.get;
    await request(server).get('/').set('Cookie', cookie);
    assert.equal(store.calls.get - before, 1);
    assert.equal(store.calls.set, 1);
  });
});
