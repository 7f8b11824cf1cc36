import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Koa from 'koa';
import request from 'supertest';
import { CookieStore, session } from '../src/index.js';
import { revocationBytes } from '../src/cookie/revocations.js';
import { setCookies } from './helpers/cookies.js';

declare module '../src/index.js' {
  interface SessionData {
    who?: string;
  }
}

const KEY = 'k'.repeat(32);
const HOUR = 3_600_000;

function setup(store: CookieStore) {
  const app = new Koa();
  app.use(session({ master: store, ttl: 24 * HOUR }));
  app.use(async (ctx) => {
    if (ctx.path === '/login') await ctx.session.withLock((s) => void (s.who = String(ctx.query.who ?? 'ada')));
    if (ctx.path === '/logout') await ctx.session.destroy();
    ctx.body = { who: (await ctx.session.get()).who ?? null };
  });
  return app.callback();
}

const cookieOf = (res: request.Response): string => {
  const [first] = setCookies(res);
  return first ? `${first.name}=${first.value}` : '';
};

describe('CookieStore: a logged-out cookie stays dead in this process', () => {
  it('1,500 new anonymous sessions and the end of the recent-writes window do not bring it back; its seal expiry does end the memory', async () => {
    let clock = 1_000_000;
    const store = new CookieStore({ keys: [KEY], now: () => clock });
    const server = setup(store);
    const stolen = cookieOf(await request(server).get('/login'));
    assert.deepEqual((await request(server).get('/').set('Cookie', stolen)).body, { who: 'ada' });
    await request(server).get('/logout').set('Cookie', stolen);
    assert.deepEqual((await request(server).get('/').set('Cookie', stolen)).body, { who: null }, 'dead right after logout');

    for (let i = 0; i < 1_500; i++) await request(server).get('/login?who=anon');
    assert.deepEqual(
      (await request(server).get('/').set('Cookie', stolen)).body,
      { who: null },
      'anonymous traffic does not push the logout out',
    );

    clock += 2 * 60_000; // past recentWrites.windowMs
    assert.deepEqual(
      (await request(server).get('/').set('Cookie', stolen)).body,
      { who: null },
      'still dead after the recent-writes window',
    );

    clock += 23 * HOUR; // past the seal's own expiry: the cookie no longer opens anyway
    assert.deepEqual((await request(server).get('/').set('Cookie', stolen)).body, { who: null });
    await request(server).get('/login'); // the store drops expired revocations as it goes
  });

  it('the documented bound is exact: maxBytes holds floor(maxBytes / revocationBytes(sid)) logouts, oldest forgotten first', async () => {
    const perEntry = revocationBytes('x'.repeat(43));
    assert.equal(perEntry, 166, 'README/SECURITY.md: 166 bytes per revocation with a default sid');
    assert.equal(Math.floor(1_048_576 / perEntry), 6_316, 'README/SECURITY.md: 6,316 logouts in the default 1 MiB');
    const store = new CookieStore({ keys: [KEY], revocations: { maxBytes: 3 * perEntry } });
    const server = setup(store);
    const cookies: string[] = [];
    for (let i = 0; i < 4; i++) {
      const c = cookieOf(await request(server).get(`/login?who=u${i}`));
      cookies.push(c);
      await request(server).get('/logout').set('Cookie', c);
    }
    // The recent-writes window would still remember all four; a fresh store view shows the revocations alone.
    for (let i = 0; i < 1_000; i++) await request(server).get('/login?who=anon'); // flush the recent-writes window (max 1000)
    const who = await Promise.all(cookies.map(async (c) => (await request(server).get('/').set('Cookie', c)).body.who));
    assert.deepEqual(who, ['u0', null, null, null], 'the three newest logouts are remembered; the oldest opens again');
  });
});
