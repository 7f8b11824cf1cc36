import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { MemoryStore } from '../src/index.js';
import { cookieHeader, makeApp } from './helpers/app.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const N = 200;

describe('overlapping requests on one session', () => {
  it(`${N} overlapping increments under the lock end at exactly ${N}, each response seeing a distinct value`, async () => {
    const master = new MemoryStore();
    const app = makeApp({ master }, async (ctx) => {
      ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)) };
    });
    const server = app.callback();
    const first = await request(server).get('/');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const responses = await Promise.all(Array.from({ length: N - 1 }, () => request(server).get('/').set('Cookie', cookie)));
    const seen = [first.body.count, ...responses.map((r) => r.body.count)];
    assert.ok(responses.every((r) => r.status === 200));
    assert.equal(new Set(seen).size, N, 'every response saw its own value');
    const final = await request(server).get('/').set('Cookie', cookie);
    assert.equal(final.body.count, N + 1);
    await master.close();
  });

  it('the same read-modify-write without the lock loses updates (so the lock is what prevents it)', async () => {
    const master = new MemoryStore();
    // A deliberately unlocked read-modify-write, as peer libraries do it: read, yield, write.
    const app = makeApp({ master }, async (ctx) => {
      if (ctx.path === '/seed') {
        await ctx.session.withLock((s) => (s.count = 0));
        ctx.body = 'ok';
        return;
      }
      const key = ctx.session.id!;
      const raw = await master.get(key);
      const data = JSON.parse(raw!) as { count: number };
      await new Promise((resolve) => setImmediate(resolve));
      data.count += 1;
      await master.set(key, JSON.stringify(data), 60_000);
      ctx.body = 'ok';
    });
    const server = app.callback();
    const cookie = cookieHeader((await request(server).get('/seed')).headers['set-cookie']);
    const sid = decodeURIComponent(/sid=([^;]+)/.exec(cookie)![1]!);
    await Promise.all(Array.from({ length: N }, () => request(server).get('/').set('Cookie', cookie)));
    const final = JSON.parse((await master.get(sid))!) as { count: number };
    assert.ok(final.count < N, `expected lost updates without the lock, got ${final.count} of ${N}`);
    await master.close();
  });
});
