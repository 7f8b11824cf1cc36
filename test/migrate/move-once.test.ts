/**
 * The move of an old session into ours happens exactly once: an express-session
 * session written by the real express-session + connect-redis, then two
 * overlapping first requests to the new app — on two "processes" (two
 * RedisLockers on one Redis) — end on ONE new session holding the old data; the
 * old record is deleted once and both responses expire the old cookie.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { RedisStore as ConnectRedis } from 'connect-redis';
import express from 'express';
import expressSessionMiddleware from 'express-session';
import Koa from 'koa';
import { createClient } from 'redis';
import request from 'supertest';
import {
  expressSession,
  markerKey,
  MemoryLocker,
  MemoryStore,
  migrateRequest,
  RedisLocker,
  RedisStore,
  type Locker,
  type MigrationSource,
  type MoveOptions,
  type Store,
} from '../../src/index.js';
import { generateSid } from '../../src/sid/sid.js';
import { deferred } from '../helpers/app.js';
import { redisServer, skipReason } from '../helpers/servers.js';

/** The end of the migration window (the old sessions here carry no expiry of their own). */
const UNTIL = new Date(Date.now() + 86_400_000);
const redis = await redisServer();
const skip = redis ? false : skipReason('redis');
const client = redis ? await createClient({ url: redis.url }).connect() : undefined;
client?.on('error', () => {});
after(async () => {
  await client?.quit().catch(() => {});
  await redis?.stop();
});

const SECRET = 'old express secret';
const DATA = { views: 7, user: { id: 'u42' } };

/** A session written by the real express-session; resolves its cookie and the old Redis key. */
async function oldSession(store: ConnectRedis, prefix: string): Promise<{ cookie: string; oldKey: string }> {
  const app = express();
  app.use(expressSessionMiddleware({ store, secret: SECRET, resave: false, saveUninitialized: false }));
  app.get('/', (req, res) => {
    Object.assign(req.session, DATA);
    res.send('ok');
  });
  const res = await request(app).get('/');
  const cookie = String(res.headers['set-cookie']).split(';')[0]!;
  const sid = decodeURIComponent(cookie.slice('connect.sid='.length)).slice(2).split('.')[0]!;
  return { cookie, oldKey: prefix + sid };
}

/** Our app: every request without a session of ours migrates (the wiring the middleware will do). */
function newApp(source: MigrationSource, options: MoveOptions) {
  const app = new Koa();
  app.use(async (ctx) => {
    const moved = await migrateRequest(ctx, source, options);
    ctx.body = moved ?? { sid: null };
  });
  return app.callback();
}

describe('moveOnce: exactly once, under the lock', () => {
  it('two overlapping first requests on two processes end on one new session; the old one is retired once', { skip }, async () => {
    const oldPrefix = `sess:${randomUUID().slice(0, 8)}:`;
    const store = new ConnectRedis({ client: client!, prefix: oldPrefix });
    const { cookie, oldKey } = await oldSession(store, oldPrefix);
    assert.ok(await client!.get(oldKey));

    // Both requests must have read the old session before either creates ours: the real race.
    const bothRead = deferred();
    let reads = 0;
    const real = expressSession({ store, secret: SECRET, until: UNTIL });
    let destroys = 0;
    const source: MigrationSource = {
      ...real,
      read: async (ctx) => {
        const found = await real.read(ctx);
        if (++reads === 2) bothRead.resolve();
        return found && { ...found, retire: () => (destroys++, found.retire()) };
      },
    };
    const master: Store = new RedisStore({ client: client!, prefix: `kls${randomUUID().slice(0, 8)}:` });
    const created: Array<Record<string, unknown>> = [];
    const lockers: Locker[] = [new RedisLocker({ client: client! }), new RedisLocker({ client: client! })];
    try {
      const options = (locker: Locker): MoveOptions => ({
        locker,
        lockTimeoutMs: 10_000,
        markers: master,
        prefix: '',
        markerTtlMs: 60_000,
        create: async (data) => {
          await bothRead.promise;
          created.push(data);
          const sid = generateSid();
          await master.set(sid, JSON.stringify(data), 60_000);
          return sid;
        },
      });
      const [a, b] = await Promise.all([
        request(newApp(source, options(lockers[0]!)))
          .get('/')
          .set('Cookie', cookie),
        request(newApp(source, options(lockers[1]!)))
          .get('/')
          .set('Cookie', cookie),
      ]);
      assert.equal(created.length, 1, 'one session created');
      assert.deepEqual(created[0], DATA);
      assert.equal(a.body.sid, b.body.sid, 'both requests end on the same session');
      assert.deepEqual([a.body.created, b.body.created].sort(), [false, true]);
      assert.equal(JSON.parse((await master.get(a.body.sid))!).views, 7);
      assert.equal(destroys, 1, 'the old session is retired once');
      assert.equal(await client!.get(oldKey), null);
      for (const res of [a, b])
        assert.match(String(res.headers['set-cookie']), /connect\.sid=;.*expires=Thu, 01 Jan 1970/i, 'the old cookie is expired');
    } finally {
      await Promise.all(lockers.map((l) => l.close?.()));
    }
  });

  it('retire: false keeps the old session and cookie, and still moves only once', async () => {
    const master = new MemoryStore();
    const locker = new MemoryLocker();
    let retired = 0;
    let reads = 0;
    const source: MigrationSource = {
      name: 'fake',
      retire: false,
      read: async () => {
        reads++;
        return {
          source: 'fake',
          id: 'old-1',
          data: { a: 1 },
          retire: async () => void retired++,
          clearCookies: () => assert.fail('cookie cleared'),
        };
      },
    };
    let n = 0;
    const options: MoveOptions = {
      locker,
      lockTimeoutMs: 1000,
      markers: master,
      prefix: 'p:',
      until: UNTIL.getTime(),
      create: async () => {
        const sid = `sid-${++n}`;
        await master.set(`p:${sid}`, '{"a":1}', 60_000);
        return sid;
      },
    };
    const app = newApp(source, options);
    const results = await Promise.all(Array.from({ length: 10 }, () => request(app).get('/')));
    assert.equal(reads, 10);
    assert.deepEqual(new Set(results.map((r) => r.body.sid)), new Set(['sid-1']));
    assert.equal(results.filter((r) => r.body.created).length, 1);
    assert.equal(retired, 0);
    assert.deepEqual(JSON.parse((await master.get(markerKey('p:', { source: 'fake', id: 'old-1' })))!), { sid: 'sid-1' });
  });

  it('a request without an old session migrates nothing', async () => {
    const app = newApp(
      expressSession({
        until: UNTIL,
        store: { get: (_: string, cb: (e: null, s: null) => void) => cb(null, null), set() {}, destroy() {} },
        secret: SECRET,
      }),
      {
        locker: new MemoryLocker(),
        lockTimeoutMs: 1000,
        markers: new MemoryStore(),
        prefix: '',
        markerTtlMs: 1000,
        create: async () => assert.fail('nothing to create'),
      },
    );
    assert.equal((await request(app).get('/')).body.sid, null);
    assert.equal((await request(app).get('/').set('Cookie', 'connect.sid=s%3Aforged.sig')).body.sid, null);
  });
});
