/**
 * "Sign out everywhere" cannot be escaped: a thief whose session regenerates (or logs in
 * again) at the very moment the victim calls revokeAll() must end up logged out, old
 * cookie and new cookie alike, in every trial (issue 11, item 4).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { MongoClient } from 'mongodb';
import { createClient } from 'redis';
import request from 'supertest';
import { MemoryStore, MongoStore, RedisLocker, RedisStore, type MongoSessionDocument, type SessionOptions } from '../src/index.js';
import { cookieHeader, makeApp } from './helpers/app.js';
import { mongoServer, redisServer, skipReason } from './helpers/servers.js';

const [redis, mongo] = await Promise.all([redisServer(), mongoServer()]);
const redisClient = redis ? await createClient({ url: redis.url }).connect() : undefined;
const mongoClient = mongo ? await new MongoClient(mongo.url, { serverSelectionTimeoutMS: 5000 }).connect() : undefined;
const db = mongoClient?.db(`kls_revoke_${randomUUID().slice(0, 8)}`);
// A RedisLocker opens a subscriber connection on its first contended acquire: closed in after(), or it keeps the process alive.
const lockers: RedisLocker[] = [];
const track = (locker: RedisLocker): RedisLocker => (lockers.push(locker), locker);
after(async () => {
  await Promise.all(lockers.map((l) => l.close()));
  await redisClient?.quit().catch(() => {});
  if (mongo?.external) await db?.dropDatabase().catch(() => {});
  await mongoClient?.close();
  await Promise.all([redis?.stop(), mongo?.stop()]);
});

const unique = () => `revoke-${randomUUID().slice(0, 8)}:`;
const setups: Array<{ name: string; skip: string | false; options(): SessionOptions }> = [
  { name: 'MemoryStore + MemoryLocker', skip: false, options: () => ({ master: jittery(new MemoryStore()) }) },
  {
    name: 'RedisStore + RedisLocker',
    skip: redis ? false : skipReason('redis'),
    options: () => ({
      master: new RedisStore({ client: redisClient!, prefix: unique() }),
      locker: track(new RedisLocker({ client: redisClient!, prefix: `lock-${unique()}` })),
    }),
  },
  {
    name: 'MongoStore + MemoryLocker',
    skip: mongo ? false : skipReason('mongo'),
    options: () => ({
      master: new MongoStore({ collection: db!.collection<MongoSessionDocument>(`r_${randomUUID().slice(0, 8)}`), timeoutMs: 30_000 }),
      storeTimeout: 30_000,
    }),
  },
];

const TRIALS = 50;

/**
 * The store with every call answered after 0–3 event-loop turns, as a network would
 * jitter: in-process calls would otherwise interleave the same way in every trial.
 */
function jittery<S extends object>(inner: S): S {
  let state = 42;
  const turns = () => (state = (state * 1103515245 + 12345) & 0x7fffffff) % 4;
  return new Proxy(inner, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => unknown;
      if (prop === 'pin' || prop === 'close') return fn.bind(target);
      return async (...args: unknown[]) => {
        for (let i = turns(); i > 0; i--) await new Promise((resolve) => setImmediate(resolve));
        return fn.apply(target, args);
      };
    },
  });
}

function raceApp(options: SessionOptions) {
  return makeApp(options, async (ctx) => {
    const user = { id: String(ctx.query.u), name: 'victim' };
    switch (ctx.path) {
      case '/login':
        await ctx.session.login(user);
        break;
      case '/regenerate':
        await ctx.session.regenerate();
        break;
      case '/relogin':
        // Re-login from the session's own state (step-up, "remember me" switch): the user is read
        // under the lock, so a session revoked in the meantime has no user to log in again.
        await ctx.session.withLock(async (s) => {
          if (s.user) await ctx.session.login(s.user);
        });
        break;
      case '/revoke':
        ctx.body = { revoked: await ctx.session.revokeAll(user, { except: ctx.session.id! }) };
        return;
    }
    ctx.body = { user: (await ctx.session.currentUser()) ?? null };
  }).callback();
}

for (const { name, skip, options } of setups) {
  describe(`revokeAll racing a regenerate on ${name}`, { skip }, () => {
    it(`the thief is logged out after revokeAll returns, in ${TRIALS} of ${TRIALS} trials (regenerate and re-login)`, async () => {
      const server = raceApp(options());
      const escaped: string[] = [];
      let revokeFailures = 0;
      for (let trial = 0; trial < TRIALS; trial++) {
        const u = `u${trial}`;
        const victim = cookieHeader((await request(server).get(`/login?u=${u}`)).headers['set-cookie']);
        const thief = cookieHeader((await request(server).get(`/login?u=${u}`)).headers['set-cookie']);
        // Odd trials: the thief's session logs in again (login regenerates too).
        const move = trial % 2 === 0 ? `/regenerate?u=${u}` : `/relogin?u=${u}`;
        const [revoke, moved] = await Promise.all([
          request(server).get(`/revoke?u=${u}`).set('Cookie', victim),
          request(server).get(move).set('Cookie', thief),
        ]);
        if (revoke.status !== 200) {
          revokeFailures++;
          continue;
        }
        const cookies = [thief];
        if (moved.headers['set-cookie']) cookies.push(cookieHeader(moved.headers['set-cookie']));
        for (const cookie of cookies) {
          // 200 with no user, or 409 (the old sid of a regenerated session, briefly): logged out either way.
          const me = await request(server).get(`/?u=${u}`).set('Cookie', cookie);
          if (me.status !== 409 && (me.status !== 200 || me.body.user !== null))
            escaped.push(`trial ${trial}: ${cookie === thief ? 'old' : 'new'} cookie answered ${me.status} ${JSON.stringify(me.body)}`);
        }
        assert.equal((await request(server).get(`/?u=${u}`).set('Cookie', victim)).body.user?.id, u, 'the victim (except) stays logged in');
      }
      assert.deepEqual(escaped, [], `${escaped.length} escapes in ${TRIALS} trials`);
      assert.equal(revokeFailures, 0, 'revokeAll reported success in every trial');
    });
  });
}
