/**
 * Issue 11, item 1: a master write abandoned at `storeTimeout` must never land
 * later over newer data. The save of one increment is held in the network (a
 * proxy holds its bytes; MemoryStore: an in-process hold) until it times out
 * and the request answers 503; the app's client gives that connection up,
 * three more increments answer 200; then the held write reaches the server.
 * The next increment must continue from the acknowledged ones (no
 * acknowledged update lost, no going back), and a logout that answered 200
 * must stay a logout. Run on every master store, with MemoryLocker and with
 * RedisLocker on its own client (never sharing the store's).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import request from 'supertest';
import type { Locker } from '../src/index.js';
import { cookieHeader, makeApp, sidOf } from './helpers/app.js';
import { allServers, directRedisLocker, skipFor, stallable, storeTimeoutFor, untilAnswers, type Kind } from './helpers/stall-backends.js';
import { liveValue } from './helpers/stall.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
    mark?: string;
  }
}

const { servers, cleanup } = await allServers();
const { redis, memcached, mongo } = servers;

const setups: Array<{ kind: Kind; locker: 'memory' | 'redis' }> = [
  { kind: 'memory', locker: 'memory' },
  { kind: 'redis', locker: 'memory' },
  { kind: 'redis', locker: 'redis' },
  { kind: 'memcached', locker: 'memory' },
  { kind: 'memcached', locker: 'redis' },
  { kind: 'mongo', locker: 'memory' },
  { kind: 'mongo', locker: 'redis' },
];

async function setup(kind: Kind, lockerKind: 'memory' | 'redis') {
  const st = await stallable(servers, kind, cleanup);
  const locker: Locker | undefined = lockerKind === 'redis' ? await directRedisLocker(servers, cleanup) : undefined;
  const app = makeApp(
    { master: st.store, ...(locker ? { locker } : {}), storeTimeout: storeTimeoutFor(kind), lockTimeout: 20_000 },
    async (ctx) => {
      if (ctx.path === '/inc') {
        const mark = typeof ctx.query.mark === 'string' ? ctx.query.mark : undefined;
        const count = await ctx.session.withLock((s) => {
          s.count = (s.count ?? 0) + 1;
          if (mark) s.mark = mark;
          return s.count;
        });
        ctx.body = { count };
      } else if (ctx.path === '/login') {
        await ctx.session.login({ id: 'u1', name: 'Ada' });
        ctx.body = 'ok';
      } else if (ctx.path === '/logout') {
        await ctx.session.logout();
        ctx.body = 'ok';
      } else if (ctx.path === '/me') {
        ctx.body = { user: (await ctx.session.currentUser()) ?? null };
      }
    },
  );
  return { st, server: app.callback() };
}

for (const { kind, locker } of setups) {
  const skip = skipFor(servers, kind) || (locker === 'redis' && skipFor(servers, 'redis-locker'));
  describe(`${kind} master + ${locker === 'redis' ? 'RedisLocker (its own client)' : 'MemoryLocker'}: a save abandoned at storeTimeout`, {
    skip,
  }, () => {
    it('that lands late never erases the increments acknowledged after it', async () => {
      const { st, server } = await setup(kind, locker);
      const first = await request(server).get('/inc');
      assert.equal(first.status, 200);
      assert.equal(first.body.count, 1);
      const cookie = cookieHeader(first.headers['set-cookie']);
      const sid = sidOf(first);

      const marker = `STALL${randomUUID().replaceAll('-', '')}`;
      const stall = st.stallNextWrite(marker);
      const stalled = await request(server).get(`/inc?mark=${marker}`).set('Cookie', cookie);
      await stall.caught;
      assert.equal(stalled.status, 503, 'the save that timed out answers 503');
      stall.abandon();
      await untilAnswers(st.store);

      const acknowledged: number[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await request(server).get('/inc').set('Cookie', cookie);
        assert.equal(res.status, 200, 'later increments are served');
        acknowledged.push(res.body.count);
      }
      assert.deepEqual(acknowledged, [2, 3, 4], 'the held write had not landed: the increments continue from 1');

      await stall.deliver(); // the abandoned write reaches the server now

      const next = await request(server).get('/inc').set('Cookie', cookie);
      assert.equal(next.status, 200);
      assert.equal(
        next.body.count,
        5,
        `the late write must not roll the count back (answered ${next.body.count} after 2, 3, 4 were acknowledged)`,
      );
      const stored = await liveValue(st.store, sid);
      assert.ok(stored !== undefined && !stored.includes(marker), 'the record never takes the abandoned write');
    });

    it('that lands late never logs a logged-out cookie back in', async () => {
      const { st, server } = await setup(kind, locker);
      const login = await request(server).post('/login');
      assert.equal(login.status, 200);
      const cookie = cookieHeader(login.headers['set-cookie']);
      const sid = sidOf(login);

      const marker = `STALL${randomUUID().replaceAll('-', '')}`;
      const stall = st.stallNextWrite(marker);
      const stalled = await request(server).get(`/inc?mark=${marker}`).set('Cookie', cookie);
      await stall.caught;
      assert.equal(stalled.status, 503);
      stall.abandon();
      await untilAnswers(st.store);

      const logout = await request(server).post('/logout').set('Cookie', cookie);
      assert.equal(logout.status, 200, 'the logout is acknowledged');

      await stall.deliver();

      const me = await request(server).get('/me').set('Cookie', cookie);
      assert.equal(me.status, 200);
      assert.equal(me.body.user, null, 'the old cookie stays logged out after the late write');
      assert.equal(await liveValue(st.store, sid), undefined, 'the master holds no record for the logged-out sid');
    });
  });
}
