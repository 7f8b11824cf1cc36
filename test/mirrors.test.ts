import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { MemoryStore, StoreError, type MirrorError } from '../src/index.js';
import { CountingStore, FailingStore, cookieHeader, makeApp } from './helpers/app.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const increment = async (ctx: import('koa').Context) => {
  if (ctx.path === '/destroy') await ctx.session.destroy();
  else ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)), id: ctx.session.id };
  ctx.body ??= 'ok';
};

describe('master + mirrors', () => {
  it('writes go to the master and every mirror; reads come from the master only', async () => {
    const master = new CountingStore(new MemoryStore());
    const m1 = new CountingStore(new MemoryStore());
    const m2 = new CountingStore(new MemoryStore());
    const server = makeApp({ master, mirrors: [m1, m2] }, increment).callback();
    const first = await request(server).get('/');
    const cookie = cookieHeader(first.headers['set-cookie']);
    await Promise.all(Array.from({ length: 20 }, () => request(server).get('/').set('Cookie', cookie)));
    const id = first.body.id as string;
    const expected = JSON.stringify({ count: 21 });
    assert.equal(await master.inner.get(id), expected);
    assert.equal(await m1.inner.get(id), expected);
    assert.equal(await m2.inner.get(id), expected);
    assert.equal(m1.calls.get + m2.calls.get, 0, 'mirrors are never read');
    await request(server).get('/destroy').set('Cookie', cookie);
    assert.equal(await m1.inner.get(id), undefined);
    assert.equal(await m2.inner.get(id), undefined);
  });

  it('a failing master fails the scope with a 503 StoreError and writes no mirror', async () => {
    const mirror = new CountingStore(new MemoryStore());
    const errors: unknown[] = [];
    const app = makeApp({ master: new FailingStore('dead-master'), mirrors: [mirror] }, increment);
    app.on('error', (error) => errors.push(error));
    const res = await request(app.callback()).get('/');
    assert.equal(res.status, 503);
    assert.equal(mirror.calls.set, 0);
    assert.ok(errors[0] instanceof StoreError);
    assert.match((errors[0] as StoreError).message, /^\[dead-master\] SET failed/);
    assert.equal(res.headers['set-cookie'], undefined, 'no cookie for a session that was not saved');
  });

  it('a failing mirror never fails the request and emits session:mirror-error with the store name and sid', async () => {
    const master = new MemoryStore();
    const healthy = new MemoryStore();
    const reports: MirrorError[] = [];
    const app = makeApp({ master, mirrors: [new FailingStore('flaky'), healthy] }, increment);
    app.on('session:mirror-error', (report: MirrorError) => reports.push(report));
    const res = await request(app.callback()).get('/');
    assert.equal(res.status, 200);
    assert.equal(await healthy.get(res.body.id), JSON.stringify({ count: 1 }));
    assert.equal(reports.length, 1);
    assert.equal(reports[0]!.store, 'flaky');
    assert.equal(reports[0]!.sid, res.body.id);
    assert.equal(reports[0]!.op, 'set');
  });

  it("mirrorWrites: 'background' answers without waiting for mirrors and still writes them", async () => {
    const master = new MemoryStore();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = new MemoryStore();
    const slowMirror = {
      name: 'slow',
      get: slow.get.bind(slow),
      destroy: slow.destroy.bind(slow),
      set: async (k: string, v: string, t: number) => {
        await gate;
        await slow.set(k, v, t);
      },
    };
    const app = makeApp({ master, mirrors: [slowMirror], mirrorWrites: 'background' }, increment);
    const res = await request(app.callback()).get('/');
    assert.equal(res.status, 200, 'answered while the mirror write is still pending');
    assert.equal(await slow.get(res.body.id), undefined);
    release();
    await gate;
    await new Promise((r) => setImmediate(r));
    assert.equal(await slow.get(res.body.id), JSON.stringify({ count: 1 }));
  });
});
