import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { MemoryLocker, MemoryStore } from '../src/index.js';
import { cookieHeader, deferred, makeApp } from './helpers/app.js';

declare module '../src/index.js' {
  interface SessionData {
    name?: string;
    late?: boolean;
  }
}

describe('no resurrection', () => {
  it('a request waiting for the lock while another destroys the session writes to a new sid; the old one stays dead', async () => {
    const master = new MemoryStore();
    const locker = new MemoryLocker();
    const aHasLock = deferred();
    const releaseA = deferred();
    const expired: string[] = [];
    const app = makeApp({ master, locker, lockTimeout: 60_000 }, async (ctx) => {
      if (ctx.path === '/set') {
        await ctx.session.withLock((s) => void (s.name = 'ada'));
      } else if (ctx.path === '/a') {
        // A: holds the lock on sid X and destroys the session.
        await ctx.session.withLock(async (s) => {
          aHasLock.resolve();
          await releaseA.promise;
          delete s.name;
        });
      } else if (ctx.path === '/b') {
        await ctx.session.withLock((s) => void (s.late = true));
      }
      ctx.body = { id: ctx.session.id ?? null, isNew: ctx.session.isNew };
    });
    app.on('session:expired', () => expired.push('expired'));
    const server = app.callback();
    const first = await request(server).get('/set');
    const x = first.body.id as string;
    const cookie = cookieHeader(first.headers['set-cookie']);

    const a = request(server)
      .get('/a')
      .set('Cookie', cookie)
      .then((r) => r);
    await aHasLock.promise;
    const b = request(server)
      .get('/b')
      .set('Cookie', cookie)
      .then((r) => r);
    // B is queued on X's lock (A holds it); let A finish its destroy.
    while (locker.size === 0) await new Promise((r) => setImmediate(r));
    releaseA.resolve();
    const [ra, rb] = await Promise.all([a, b]);

    assert.equal(ra.body.id, null, 'A destroyed the session');
    assert.equal(await master.get(x), undefined, 'X stays dead');
    assert.ok(rb.body.id, 'B saved under a sid');
    assert.notEqual(rb.body.id, x, 'B wrote to a new sid, not X');
    assert.deepEqual(JSON.parse((await master.get(rb.body.id))!), { late: true }, 'B worked on a fresh session');
    assert.match(String(rb.headers['set-cookie']), new RegExp(`sid=${rb.body.id}`), 'B got a new cookie');
    assert.equal(rb.body.isNew, true);
    assert.deepEqual(expired, ['expired']);
  });

  it('a client-chosen sid is never adopted', async () => {
    const master = new MemoryStore();
    const app = makeApp({ master, cookie: { signed: false } }, async (ctx) => {
      await ctx.session.withLock((s) => void (s.name = 'mallory'));
      ctx.body = { id: ctx.session.id };
    });
    const chosen = 'A'.repeat(43);
    const res = await request(app.callback()).get('/').set('Cookie', `sid=${chosen}`);
    assert.notEqual(res.body.id, chosen);
    assert.equal(await master.get(chosen), undefined);
  });
});
