import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { LockTimeoutError, MemoryLocker, MemoryStore } from '../src/index.js';
import { cookieHeader, deferred, makeApp, sidOf } from './helpers/app.js';

declare module '../src/index.js' {
  interface SessionData {
    holder?: string;
  }
}

describe('bounded lock waits', () => {
  it('a holder that hangs longer than lockTimeout makes the waiter fail with 503; the holder still saves', async () => {
    const master = new MemoryStore();
    const locker = new MemoryLocker();
    const holding = deferred();
    const finishHolder = deferred();
    const errors: unknown[] = [];
    const app = makeApp({ master, locker, lockTimeout: 50 }, async (ctx) => {
      if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.holder = 'none'));
      if (ctx.path === '/hold') {
        await ctx.session.withLock(async (s) => {
          holding.resolve();
          await finishHolder.promise;
          s.holder = 'saved';
        });
      }
      if (ctx.path === '/wait') {
        try {
          await ctx.session.withLock((s) => void (s.holder = 'waiter'));
        } catch (error) {
          errors.push(error);
          throw error;
        }
      }
      ctx.body = await ctx.session.get();
    });
    const server = app.callback();
    const first = await request(server).get('/set');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const hold = request(server)
      .get('/hold')
      .set('Cookie', cookie)
      .then((r) => r);
    await holding.promise;
    const waiter = await request(server).get('/wait').set('Cookie', cookie);
    assert.equal(waiter.status, 503);
    assert.equal(waiter.headers['retry-after'], '1');
    assert.ok(errors[0] instanceof LockTimeoutError);
    assert.equal((errors[0] as LockTimeoutError).code, 'ERR_SESSION_LOCK_TIMEOUT');
    finishHolder.resolve();
    const held = await hold;
    assert.deepEqual(held.body, { holder: 'saved' });
    assert.deepEqual(JSON.parse((await master.get(sidOf(first)))!), { holder: 'saved' });
    assert.equal(locker.size, 0, 'the timed-out waiter left no entry behind');
  });
});
