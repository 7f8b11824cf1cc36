/**
 * Issue 11, item 5: `login()` (and `regenerate()`) racing with the same
 * browser's parallel requests. One browser sends 20 increments with its
 * anonymous cookie while a login moves the session to a new sid; some
 * increments get the lock before the login, the rest after it (a recording
 * wrapper around the real locker tells the test when each request is queued,
 * so the order is set up by events, not timing).
 *
 * - Every increment either lands in the session (before the login, carried
 *   over by `keepData`, or after it on the new sid) or answers 409
 *   `ERR_SESSION_MOVED` with no Set-Cookie; never a 200 that wrote into a fresh
 *   anonymous session.
 * - The browser's cookie, after applying every Set-Cookie in the order the
 *   responses arrived, still points at the logged-in session.
 * - Retrying the 409s with that cookie brings the count to exactly 20.
 * - Session fixation: the old sid never leads to the new session.
 * Runs on MemoryStore + MemoryLocker and RedisStore + RedisLocker (one client).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type Koa from 'koa';
import { createClient } from 'redis';
import request from 'supertest';
import { MemoryLocker, MemoryStore, RedisLocker, RedisStore, type AcquireOptions, type Locker, type Store } from '../src/index.js';
import { deferred, listen, makeApp, sidOf } from './helpers/app.js';
import { redisServer, skipReason } from './helpers/servers.js';
import { CookieJar } from './helpers/cookies.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
    seen?: boolean;
  }
}

const redis = await redisServer();
const redisClient = redis ? await createClient({ url: redis.url }).connect() : undefined;
// A RedisLocker opens a subscriber connection on its first contended acquire: closed in after(), or it keeps the process alive.
const lockers: RedisLocker[] = [];
const track = (locker: RedisLocker): RedisLocker => (lockers.push(locker), locker);
after(async () => {
  await Promise.all(lockers.map((l) => l.close()));
  redisClient?.destroy();
  await redis?.stop();
});

const INCREMENTS = 20;
const BEFORE = 5; // queued for the lock ahead of the login; the other 15 behind it

/** The real locker, telling `onAcquire` the key of each acquire call as it is made. */
function spyLocker(inner: Locker, onAcquire: (key: string) => void): Locker {
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'acquire') {
        return (key: string, options: AcquireOptions) => {
          onAcquire(key);
          return target.acquire(key, options);
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

type Setup = { name: string; skip: string | false; make(): { master: Store; locker: Locker } };
const setups: Setup[] = [
  { name: 'MemoryStore + MemoryLocker', skip: false, make: () => ({ master: new MemoryStore(), locker: new MemoryLocker() }) },
  {
    name: 'RedisStore + RedisLocker (one client)',
    skip: redis ? false : skipReason('redis'),
    make: () => {
      const prefix = `race-${randomUUID().slice(0, 8)}:`;
      return {
        master: new RedisStore({ client: redisClient!, prefix }),
        locker: track(new RedisLocker({ client: redisClient!, prefix: `lock-${prefix}` })),
      };
    },
  },
];

async function race(setup: Setup, move: 'login' | 'regenerate') {
  const { master, locker: inner } = setup.make();
  let watched: string | undefined;
  let queued = 0;
  const waiters: Array<{ count: number; resolve(): void }> = [];
  const locker = spyLocker(inner, (key) => {
    if (key !== watched) return;
    queued++;
    for (const w of waiters.filter((w) => queued >= w.count)) w.resolve();
  });
  const queuedAtLeast = (count: number) => new Promise<void>((resolve) => (queued >= count ? resolve() : waiters.push({ count, resolve })));

  const held = deferred();
  const gate = deferred();
  const errors: Array<{ code?: unknown }> = [];
  // handoff off: the order is set up by counting the locker's acquire calls, and with
  // handoff a request of this process queues in-process before it calls the locker.
  const app: Koa = makeApp({ master, locker, lockTimeout: 20_000, handoff: false }, async (ctx) => {
    const s = ctx.session;
    if (ctx.path === '/hello') {
      await s.withLock((d) => void (d.seen = true));
    } else if (ctx.path === '/hold') {
      await s.withLock(async () => {
        held.resolve();
        await gate.promise;
      });
    } else if (ctx.path === '/inc') {
      await s.withLock((d) => void (d.count = (d.count ?? 0) + 1));
    } else if (ctx.path === '/login') {
      await s.login({ id: 'u1', name: 'Ada' }, { keepData: true });
    } else if (ctx.path === '/regenerate') {
      await s.regenerate();
    }
    const snapshot = await s.get();
    ctx.body = { id: s.id ?? null, user: snapshot.user ?? null, count: snapshot.count ?? null };
  });
  app.on('error', (error: { code?: unknown }) => errors.push(error));
  const srv = await listen(app);

  try {
    const jar = new CookieJar();
    const hello = await request(srv.url).get('/hello');
    jar.take(hello.headers['set-cookie']);
    const oldSid = sidOf(hello);
    const oldCookie = jar.header;
    watched = oldSid;

    // The order in which the requests wait for the lock: hold, 5 increments, the login, 15 increments.
    const arrived: request.Response[] = [];
    const send = (path: string, method: 'get' | 'post' = 'get') =>
      request(srv.url)
        [method](path)
        .set('Cookie', oldCookie)
        .then((res) => {
          arrived.push(res);
          return res;
        });
    const hold = send('/hold');
    await held.promise;
    const incs: Array<Promise<request.Response>> = [];
    for (let i = 0; i < BEFORE; i++) incs.push(send('/inc'));
    await queuedAtLeast(1 + BEFORE);
    const moving = send(`/${move}`, 'post');
    await queuedAtLeast(2 + BEFORE);
    for (let i = BEFORE; i < INCREMENTS; i++) incs.push(send('/inc'));
    await queuedAtLeast(2 + INCREMENTS);
    gate.resolve();
    const [moved, results] = await Promise.all([moving, Promise.all(incs), hold]);

    assert.equal(moved.status, 200, `${move} succeeded`);
    const newSid = sidOf(moved);
    assert.notEqual(newSid, oldSid, `${move} moved the session to a new sid`);
    if (move === 'login') assert.deepEqual(moved.body.user, { id: 'u1', name: 'Ada' });

    const statuses = results.map((r) => r.status);
    assert.ok(
      statuses.every((s) => s === 200 || s === 409),
      `only 200 or 409, got ${statuses.join(',')}`,
    );
    const fresh = results.filter((r) => r.status === 200 && r.body.id !== oldSid && r.body.id !== newSid);
    assert.equal(fresh.length, 0, `${fresh.length} increments answered 200 after writing into a fresh anonymous session`);
    const conflicts = results.filter((r) => r.status === 409);
    assert.ok(conflicts.length > 0, 'the increments queued behind the move were told the session moved');
    for (const r of conflicts) assert.equal(r.headers['set-cookie'], undefined, 'a 409 sets no cookie');
    assert.deepEqual(
      errors.map((e) => e.code),
      conflicts.map(() => 'ERR_SESSION_MOVED'),
    );

    for (const res of arrived) jar.take(res.headers['set-cookie']);
    const now = await request(srv.url).get('/me').set('Cookie', jar.header);
    assert.equal(now.body.id, newSid, `after every response, the browser's cookie points at the session ${move} moved to`);
    if (move === 'login') assert.deepEqual(now.body.user, { id: 'u1', name: 'Ada' }, 'the browser is still logged in');

    for (const _ of conflicts) {
      const retry = await request(srv.url).get('/inc').set('Cookie', jar.header);
      assert.equal(retry.status, 200);
      assert.equal(retry.body.id, newSid);
      jar.take(retry.headers['set-cookie']);
    }
    const final = await request(srv.url).get('/me').set('Cookie', jar.header);
    assert.equal(final.body.count, INCREMENTS, 'no increment lost, none counted twice');

    // Within the moment the old sid is marked "moved" it answers 409; after it, a fresh session. Never the new one.
    const old = await request(srv.url).get('/me').set('Cookie', oldCookie);
    assert.ok(old.status === 409 || old.status === 200, `the old cookie answers 409 or a fresh session, got ${old.status}`);
    if (old.status === 200) {
      assert.notEqual(old.body.id, newSid, 'the old sid never leads to the new session');
      assert.equal(old.body.user, null);
      assert.equal(old.body.count, null);
    }
    assert.ok(!String(old.headers['set-cookie'] ?? '').includes(newSid), 'the old cookie is never given the new sid');
  } finally {
    await srv.close();
    await inner.close?.();
  }
}

for (const setup of setups) {
  describe(`parallel requests of one browser around a session move, ${setup.name}`, { skip: setup.skip }, () => {
    it(`login(): ${INCREMENTS} increments each land in the logged-in session or answer 409; the browser stays logged in`, () =>
      race(setup, 'login'));
    it(`regenerate(): ${INCREMENTS} increments each land in the session or answer 409; the browser keeps the new sid`, () =>
      race(setup, 'regenerate'));
  });
}
