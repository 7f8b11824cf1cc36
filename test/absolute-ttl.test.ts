/** absoluteTtl ends a session that long after its creation however active it is; ttl stays the idle timeout. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { cookieHeader } from './helpers/cookies.js';
import { countingApp } from './helpers/counting-app.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

describe('absoluteTtl', () => {
  it('absoluteTtl ends a session that long after creation however active it is; ttl stays the idle timeout', async () => {
    const { mock } = await import('node:test');
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    try {
      const expired: string[] = [];
      const { store, server, app } = (() => {
        const r = countingApp(
          async (ctx) => {
            ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)), id: ctx.session.id };
          },
          { absoluteTtl: 10_000, ttl: 60_000 },
        );
        return r;
      })();
      app.on('session:expired', () => expired.push('x'));
      const first = await request(server).get('/');
      const cookie = cookieHeader(first.headers['set-cookie']);
      assert.match(
        String(first.headers['set-cookie']),
        new RegExp(`expires=${new Date(1_000_000 + 10_000).toUTCString()}`),
        'the cookie ends with the absolute timeout',
      );
      mock.timers.tick(6000);
      assert.equal((await request(server).get('/').set('Cookie', cookie)).body.count, 2, 'still alive after 6 s of activity');
      mock.timers.tick(5000);
      const late = await request(server).get('/').set('Cookie', cookie);
      assert.equal(late.body.count, 1, 'past the absolute timeout: a fresh session');
      assert.notEqual(late.body.id, first.body.id);
      assert.equal(await store.inner.get(first.body.id), undefined, 'the old record is destroyed');
      assert.deepEqual(expired, ['x']);
    } finally {
      mock.timers.reset();
    }
  });
});
