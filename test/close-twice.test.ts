import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Koa from 'koa';
import request from 'supertest';
import { session } from '../src/index.js';
import { Lifecycle } from '../src/core/lifecycle.js';

describe('close() called more than once (SIGTERM and SIGINT both wired to it)', () => {
  it('Lifecycle: every close() call settles once the scopes in flight end', async () => {
    const life = new Lifecycle();
    life.enter();
    const settled: number[] = [];
    const calls = [1, 2, 3].map((i) => life.close().then(() => settled.push(i)));
    await Promise.resolve();
    assert.deepEqual(settled, [], 'nobody settles while a scope is in flight');
    life.leave();
    await Promise.all(calls);
    assert.deepEqual(settled.sort(), [1, 2, 3]);
  });

  it('middleware.close(): two calls while a scope is open both resolve, and the locker closes once', async () => {
    let lockerCloses = 0;
    const { MemoryLocker } = await import('../src/index.js');
    const inner = new MemoryLocker();
    const locker = {
      name: inner.name,
      acquire: inner.acquire.bind(inner),
      close: async () => void lockerCloses++,
    };
    const mw = session({ locker });
    const app = new Koa();
    app.keys = ['k'];
    app.use(mw);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    app.use(async (ctx) => {
      ctx.body = await ctx.session.withLock(async (s) => {
        entered();
        await gate;
        return (s.n = 1);
      });
    });
    const pending = request(app.callback())
      .get('/')
      .then((r) => r.status);
    await inside;
    const first = mw.close();
    const second = mw.close();
    release();
    await Promise.all([first, second]);
    assert.equal(await pending, 200, 'the scope in flight finished its save');
    assert.equal(lockerCloses, 1);
  });
});
