/**
 * The per-user session index stays bounded and cannot be lost silently (issue 11,
 * items 10 and 16): many logins of one user keep it at `auth.maxSessionsPerUser`
 * entries, no login fails because of it (memcached with a small item size
 * limit), and on MemoryStore its LRU never evicts the index of live sessions.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { createClient } from 'redis';
import request from 'supertest';
import { MemcachedStore, MemoryLocker, MemoryStore, RedisLocker, RedisStore, type SessionOptions, type Store } from '../src/index.js';
import { UserIndex } from '../src/auth/user-index.js';
import { cookieHeader, makeApp } from './helpers/app.js';
import { memcachedServer, redisServer, skipReason } from './helpers/servers.js';

// memcached with an 8 KB item limit: the unbounded index passed it after ~170 logins of one user.
const [redis, memcached] = await Promise.all([
  redisServer(),
  memcachedServer({ useEnv: false, extraArgs: ['-I', '8k', '-o', 'slab_chunk_max=4096'] }),
]);
const redisClient = redis ? await createClient({ url: redis.url }).connect() : undefined;
const memcachedStores: MemcachedStore[] = [];
// A RedisLocker opens a subscriber connection on its first contended acquire: closed here, or it keeps the process alive.
const redisLockers: RedisLocker[] = [];
after(async () => {
  await Promise.all(memcachedStores.map((s) => s.close()));
  await Promise.all(redisLockers.map((l) => l.close()));
  await redisClient?.quit().catch(() => {});
  await Promise.all([redis?.stop(), memcached?.stop()]);
});

const PREFIX = 'p:';
const ada = { id: 'ada', name: 'Ada' };
const indexKey = (uid: string) => new UserIndex(new MemoryLocker(), 1000, PREFIX).keyOf(uid);

function authApp(options: SessionOptions) {
  return makeApp({ prefix: PREFIX, ...options }, async (ctx) => {
    if (ctx.path === '/login') await ctx.session.login(ada);
    if (ctx.path === '/anon') await ctx.session.withLock((s) => void ((s as Record<string, unknown>).n = 1));
    if (ctx.path === '/others') {
      ctx.body = { revoked: await ctx.session.revokeAll(ada, { except: ctx.session.id! }) };
      return;
    }
    ctx.body = { user: (await ctx.session.currentUser()) ?? null };
  }).callback();
}

const setups: Array<{ name: string; skip: string | false; master(): Store; locker?(): NonNullable<SessionOptions['locker']> }> = [
  { name: 'MemoryStore', skip: false, master: () => new MemoryStore() },
  {
    name: 'RedisStore + RedisLocker',
    skip: redis ? false : skipReason('redis'),
    master: () => new RedisStore({ client: redisClient!, prefix: `b-${randomUUID().slice(0, 8)}:` }),
    locker: () => {
      const locker = new RedisLocker({ client: redisClient!, prefix: `lock-${randomUUID().slice(0, 8)}:` });
      redisLockers.push(locker);
      return locker;
    },
  },
  {
    name: 'MemcachedStore (-I 8k)',
    skip: memcached ? false : skipReason('memcached'),
    master: () => {
      const store = new MemcachedStore({ servers: memcached!.url, prefix: `b-${randomUUID().slice(0, 8)}:` });
      memcachedStores.push(store);
      return store;
    },
  },
];

const LOGINS = 8000;
const BATCH = 20;

for (const { name, skip, master: makeMaster, locker } of setups) {
  describe(`user index bounds on ${name}`, { skip }, () => {
    it(`${LOGINS} logins of one user: every login succeeds, the index stays at maxSessionsPerUser, the oldest sessions are destroyed`, async (t) => {
      const master = makeMaster();
      const options: SessionOptions = { master, auth: { maxSessionsPerUser: 100 } };
      if (locker) options.locker = locker();
      const server = authApp(options);
      const first = cookieHeader((await request(server).get('/login')).headers['set-cookie']);
      const statuses = new Map<number, number>();
      let largest = 0;
      let last = '';
      for (let done = 1; done < LOGINS; done += BATCH) {
        const answers = await Promise.all(Array.from({ length: Math.min(BATCH, LOGINS - done) }, () => request(server).get('/login')));
        for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        last = cookieHeader(answers.at(-1)!.headers['set-cookie']);
        largest = Math.max(largest, (await master.get(indexKey('ada')))?.length ?? 0);
      }
      assert.deepEqual([...statuses], [[200, LOGINS - 1]], 'no login failed');
      t.diagnostic(`index record: largest ${largest} bytes during ${LOGINS} logins`);
      const entries = JSON.parse((await master.get(indexKey('ada')))!) as string[];
      // Concurrent logins may each see the same oldest entries past the cap: at most one batch over it.
      assert.ok(entries.length <= 100 + BATCH - 1, `the index holds ${entries.length} entries`);
      assert.ok(largest <= (100 + BATCH) * 46 + 2, `the index record reached ${largest} bytes`);
      assert.equal((await request(server).get('/').set('Cookie', first)).body.user, null, 'the oldest session was destroyed by the cap');
      assert.deepEqual((await request(server).get('/').set('Cookie', last)).body.user, ada, 'the newest session is logged in');
      // Every live session is listed: revoking from the newest one leaves no other logged in.
      const revoked = await request(server).get('/others').set('Cookie', last);
      assert.equal(revoked.status, 200);
      assert.equal(revoked.body.revoked.length, entries.length - 1);
    });
  });
}

describe('user index and MemoryStore eviction', () => {
  it('a flood of anonymous sessions past `max` never evicts the index of live sessions: revokeAll still logs the thief out', async () => {
    const master = new MemoryStore({ max: 2000 });
    const server = authApp({ master });
    const victim = cookieHeader((await request(server).get('/login')).headers['set-cookie']);
    const thief = cookieHeader((await request(server).get('/login')).headers['set-cookie']);
    for (let i = 0; i < 2668; i += 50) {
      await Promise.all(Array.from({ length: 50 }, () => request(server).get('/anon')));
      // Both logged-in sessions stay in use (recently used: LRU keeps them).
      assert.deepEqual((await request(server).get('/').set('Cookie', thief)).body.user, ada);
      assert.deepEqual((await request(server).get('/').set('Cookie', victim)).body.user, ada);
    }
    assert.equal(master.size, 2000, 'the store is full: anonymous sessions were evicted');
    const revoked = await request(server).get('/others').set('Cookie', victim);
    assert.equal(revoked.status, 200);
    assert.equal(revoked.body.revoked.length, 1, 'the thief was listed');
    assert.equal((await request(server).get('/').set('Cookie', thief)).body.user, null, 'the thief is logged out');
  });

  it('an index lost some other way (Redis allkeys-lru, memcached LRU) is detected: revokeAll from a listed session fails loudly instead of reporting success', async () => {
    const master = new MemoryStore();
    const server = authApp({ master });
    const victim = cookieHeader((await request(server).get('/login')).headers['set-cookie']);
    await request(server).get('/login');
    await master.destroy(indexKey('ada')); // what an evicting store does
    const revoke = await request(server).get('/others').set('Cookie', victim);
    assert.equal(revoke.status, 500, 'no success reported over a lost index');
  });
});

describe('user index failures', () => {
  it('a login whose index entry cannot be written fails with 503 and changes nothing: no unlisted (unrevocable) session, the old session intact', async () => {
    const inner = new MemoryStore();
    let failIndex = false;
    // The master refusing writes of index records only (a full memcached slab, a lock that timed out…).
    const master = new Proxy(inner, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        const fn = (value as (...args: unknown[]) => unknown).bind(target);
        if (prop !== 'set') return fn;
        return async (key: string, ...rest: unknown[]) => {
          if (failIndex && key.includes('idx:')) throw new Error('SERVER_ERROR out of memory storing object');
          return fn(key, ...rest);
        };
      },
    });
    const server = authApp({ master });
    const anon = cookieHeader((await request(server).get('/anon')).headers['set-cookie']);
    const before = inner.size;
    failIndex = true;
    const login = await request(server).get('/login').set('Cookie', anon);
    assert.equal(login.status, 503);
    assert.equal(login.headers['set-cookie'], undefined, 'no new cookie');
    assert.equal(inner.size, before, 'no new session record is left behind');
    failIndex = false;
    const again = await request(server).get('/').set('Cookie', anon);
    assert.equal(again.status, 200);
    assert.equal(again.body.user, null, 'the old, anonymous session is still there, not logged in');
    assert.equal((await request(server).get('/login').set('Cookie', anon)).status, 200, 'a retry logs in');
  });

  it('auth.maxSessionsPerUser must be a positive integer', () => {
    assert.throws(
      () => makeApp({ auth: { maxSessionsPerUser: 0 } }, () => {}),
      /Expected `auth.maxSessionsPerUser` to be a positive integer, got `0`/,
    );
  });
});
