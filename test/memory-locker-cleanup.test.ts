import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, it } from 'node:test';
import { MemoryLocker, MemoryStore } from '../src/index.js';
import { listen, makeApp } from './helpers/app.js';
import { cookieHeader } from './helpers/cookies.js';

declare module '../src/index.js' {
  interface SessionData {
    n?: number;
  }
}

describe('MemoryLocker does not grow', () => {
  it('after 10,000 sessions created and locked again, it holds zero entries', async () => {
    const locker = new MemoryLocker();
    const master = new MemoryStore();
    const app = makeApp({ master, locker }, async (ctx) => {
      ctx.body = String(await ctx.session.withLock((s) => (s.n = (s.n ?? 0) + 1)));
    });
    const { url, close } = await listen(app);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
    const get = (cookie?: string) =>
      new Promise<{ body: string; cookie: string }>((resolve, reject) => {
        const req = http.get(url, { agent, headers: cookie ? { cookie } : {} }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ body, cookie: cookieHeader(res.headers['set-cookie']) }));
        });
        req.on('error', reject);
      });
    const total = 10_000;
    let done = 0;
    const worker = async () => {
      while (done < total) {
        done++;
        const created = await get();
        const again = await get(created.cookie); // takes the lock on the existing sid
        assert.equal(again.body, '2');
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));
    agent.destroy();
    await close();
    assert.equal(master.size, total);
    assert.equal(locker.size, 0);
    await master.close();
  });
});

describe('MemoryLocker: waiters that give up leave the queue; a hung holder loses the lock', () => {
  it('2,000 waiters that time out behind a holder that never releases leave nothing queued', async () => {
    const locker = new MemoryLocker();
    const holder = await locker.acquire('k', { timeoutMs: 1000 });
    const outcomes = await Promise.allSettled(Array.from({ length: 2000 }, () => locker.acquire('k', { timeoutMs: 20 })));
    assert.equal(outcomes.filter((o) => o.status === 'rejected').length, 2000);
    assert.equal(locker.waiting, 0, 'no timed-out waiter stays queued');
    assert.equal(locker.size, 1, 'only the holder remains');
    await holder.release();
    assert.equal(locker.size, 0);
  });

  it('an aborted waiter leaves at once and never acquires later', async () => {
    const locker = new MemoryLocker();
    const holder = await locker.acquire('k', { timeoutMs: 1000 });
    const controller = new AbortController();
    const waiting = locker.acquire('k', { timeoutMs: 60_000, signal: controller.signal });
    controller.abort(new Error('client went away'));
    await assert.rejects(waiting, /client went away/);
    assert.equal(locker.waiting, 0);
    const next = locker.acquire('k', { timeoutMs: 60_000 });
    await holder.release();
    const lease = await next;
    assert.equal(lease.lost, false);
    await lease.release();
    assert.equal(locker.size, 0);
  });

  it('a holder that never releases loses the lock after maxHoldMs once someone waits; its lease reports lost', async () => {
    const locker = new MemoryLocker({ maxHoldMs: 50 });
    const hung = await locker.acquire('k', { timeoutMs: 1000 });
    const next = await locker.acquire('k', { timeoutMs: 5000 });
    assert.equal(hung.lost, true, 'the hung holder must refuse its save');
    assert.equal(next.lost, false);
    await hung.release(); // late release of a lost lease does not free the new holder's lock
    const third = locker.acquire('k', { timeoutMs: 5000 });
    let thirdGot = false;
    void third.then(() => (thirdGot = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(thirdGot, false, 'still held by the second holder');
    await next.release();
    await (await third).release();
    assert.equal(locker.size, 0);
  });

  it('rejects a bad maxHoldMs with a message naming the option', () => {
    assert.throws(() => new MemoryLocker({ maxHoldMs: 0 }), /maxHoldMs/);
  });
});
