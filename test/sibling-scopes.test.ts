/**
 * Issue 11, item 6: two `withLock` scopes of one request running side by side
 * (the second joins the first's lock instead of deadlocking on it).
 *
 * - A sibling that throws rolls back only its own change: the other sibling's
 *   successful change is saved, whichever of the two opened the scope.
 * - Every `withLock` promise resolves only after a save containing its change
 *   has landed in the master: a recording wrapper around the master logs each
 *   write as it lands, the route logs each promise as it resolves, and the
 *   test checks the order of those events (never timing).
 * MemoryStore with the recording wrapper; the final states also on RedisStore
 * + RedisLocker on one client (the fenced fast path, where the scope's last
 * write also releases the lock).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { createClient } from 'redis';
import request from 'supertest';
import { MemoryStore, RedisLocker, RedisStore, type Locker, type SessionHandle, type Store } from '../src/index.js';
import { cookieHeader, deferred, makeApp, sidOf } from './helpers/app.js';
import { redisServer, skipReason } from './helpers/servers.js';
import { liveValue, wrapStore } from './helpers/stall.js';

const redis = await redisServer();
const redisClient = redis ? await createClient({ url: redis.url }).connect() : undefined;
after(async () => {
  redisClient?.destroy();
  await redis?.stop();
});

interface Data {
  base?: number;
  a?: number;
  b?: number;
}

type Event = { type: 'landed'; value: string | undefined } | { type: 'resolved'; who: 'a' | 'b' };

/** The two siblings of each case; `a` opens the scope, `b` joins it. */
type Siblings = (s: SessionHandle<Data>) => [Promise<unknown>, Promise<unknown>];

const cases: Record<string, { siblings: Siblings; want: Data; succeeded: Array<'a' | 'b'> }> = {
  'the opener throws after the joiner changed the data: the joiner keeps its change': {
    siblings: (s) => {
      const joinerChanged = deferred();
      return [
        s.withLock(async (d) => {
          d.a = 1;
          await joinerChanged.promise;
          throw new Error('a failed');
        }),
        s.withLock((d) => {
          d.b = 1;
          joinerChanged.resolve();
        }),
      ];
    },
    want: { base: 1, b: 1 },
    succeeded: ['b'],
  },
  'the joiner throws after the opener changed the data: the opener keeps its change': {
    siblings: (s) => {
      const joined = deferred();
      const openerChanged = deferred();
      return [
        s.withLock(async (d) => {
          await joined.promise;
          d.a = 1;
          openerChanged.resolve();
        }),
        s.withLock(async (d) => {
          joined.resolve();
          d.b = 1;
          await openerChanged.promise;
          throw new Error('b failed');
        }),
      ];
    },
    want: { base: 1, a: 1 },
    succeeded: ['a'],
  },
  'both succeed: both changes are saved': {
    siblings: (s) => [
      s.withLock((d) => void (d.a = 1)),
      s.withLock(async (d) => {
        // The joiner is still busy when the opener is done: the opener's
        // promise must still wait for a save containing its change.
        await new Promise((resolve) => setImmediate(resolve));
        d.b = 1;
      }),
    ],
    want: { base: 1, a: 1, b: 1 },
    succeeded: ['a', 'b'],
  },
};

/** An app whose `/` route runs the siblings of `name`; `events` gets each sibling's resolution. */
function siblingsApp(master: Store, locker: Locker | undefined, name: string, events: Event[]) {
  const { siblings } = cases[name]!;
  return makeApp({ master, ...(locker ? { locker } : {}) }, async (ctx) => {
    const s = ctx.session as unknown as SessionHandle<Data>;
    if (ctx.path === '/init') {
      await s.withLock((d) => void (d.base = 1));
      ctx.body = 'ok';
      return;
    }
    const [a, b] = siblings(s);
    const settled = await Promise.allSettled([
      a.then(() => void events.push({ type: 'resolved', who: 'a' })),
      b.then(() => void events.push({ type: 'resolved', who: 'b' })),
    ]);
    ctx.body = settled.map((r) => r.status);
  }).callback();
}

describe('two withLock scopes in one request, MemoryStore', () => {
  for (const [name, { want, succeeded }] of Object.entries(cases)) {
    it(name, async () => {
      const inner = new MemoryStore();
      const events: Event[] = [];
      const master = wrapStore(inner, async (call, run) => {
        const result = await run();
        events.push({ type: 'landed', value: call.value });
        return result;
      });
      const server = siblingsApp(master, undefined, name, events);
      const init = await request(server).get('/init');
      const sid = sidOf(init);
      events.length = 0;
      const res = await request(server).get('/').set('Cookie', cookieHeader(init.headers['set-cookie']));
      assert.equal(res.status, 200);
      assert.deepEqual(
        res.body,
        ['a', 'b'].map((who) => (succeeded.includes(who as 'a' | 'b') ? 'fulfilled' : 'rejected')),
      );

      assert.deepEqual(JSON.parse((await liveValue(inner, sid))!), want, 'the saved data keeps exactly the successful changes');
      for (const who of succeeded) {
        const resolvedAt = events.findIndex((e) => e.type === 'resolved' && e.who === who);
        const savedAt = events.findIndex((e) => e.type === 'landed' && e.value !== undefined && JSON.parse(e.value)[who] === 1);
        assert.ok(
          savedAt !== -1 && savedAt < resolvedAt,
          `withLock ${who} resolved only after a save containing its change landed (events: ${JSON.stringify(events)})`,
        );
      }
    });
  }
});

describe('two withLock scopes in one request, RedisStore + RedisLocker (one client)', { skip: redis ? false : skipReason('redis') }, () => {
  for (const [name, { want }] of Object.entries(cases)) {
    it(name, async () => {
      const prefix = `sib-${randomUUID().slice(0, 8)}:`;
      const master = new RedisStore({ client: redisClient!, prefix });
      const locker = new RedisLocker({ client: redisClient!, prefix: `lock-${prefix}` });
      try {
        const server = siblingsApp(master, locker, name, []);
        const init = await request(server).get('/init');
        const res = await request(server).get('/').set('Cookie', cookieHeader(init.headers['set-cookie']));
        assert.equal(res.status, 200);
        assert.deepEqual(JSON.parse((await liveValue(master, sidOf(init)))!), want, 'the saved data keeps exactly the successful changes');
        // The lock is free again: a later scope of the session gets it at once.
        const next = await request(server).get('/init').set('Cookie', cookieHeader(init.headers['set-cookie']));
        assert.equal(next.status, 200);
      } finally {
        await locker.close();
      }
    });
  }
});
