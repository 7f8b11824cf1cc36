/**
 * The HTTP-level guarantees on every real store: overlapping increments on one
 * session end at exactly N with each store as master; mirrors on real servers
 * end with the master's data; a hand-written bad record is a fresh session; a
 * dead server is a 503 with nothing half-written, and the app recovers when it
 * comes back.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MongoClient } from 'mongodb';
import { createClient } from 'redis';
import request from 'supertest';
import { MemcachedStore, MemoryStore, MongoStore, RedisStore, StoreError, type MongoSessionDocument, type Store } from '../src/index.js';
import { cookieHeader, makeApp, sidOf } from './helpers/app.js';
import { memcachedServer, mongoServer, redisServer, skipReason, tcpProxy, type TestServer } from './helpers/servers.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const [redis, memcached, mongo] = await Promise.all([redisServer(), memcachedServer(), mongoServer()]);
const redisClient = redis ? await createClient({ url: redis.url }).connect() : undefined;
const mongoClient = mongo ? await new MongoClient(mongo.url, { serverSelectionTimeoutMS: 5000 }).connect() : undefined;
const db = mongoClient?.db(`kls_http_${randomUUID().slice(0, 8)}`);
const closers: Array<() => Promise<unknown>> = [];

after(async () => {
  for (const close of closers) await close().catch(() => {});
  await redisClient?.quit().catch(() => {});
  if (mongo?.external) await db?.dropDatabase().catch(() => {});
  await mongoClient?.close();
  await Promise.all([redis?.stop(), memcached?.stop(), mongo?.stop()]);
});

const factories: Array<{ name: string; skip: string | false; make(): Store }> = [
  { name: 'memory', skip: false, make: () => new MemoryStore() },
  {
    name: 'redis',
    skip: redis ? false : skipReason('redis'),
    make: () => new RedisStore({ client: redisClient!, prefix: `http-${randomUUID().slice(0, 8)}:` }),
  },
  {
    name: 'memcached',
    skip: memcached ? false : skipReason('memcached'),
    make: () => {
      const store = new MemcachedStore({ servers: memcached!.url, prefix: `http-${randomUUID().slice(0, 8)}:` });
      closers.push(() => store.close());
      return store;
    },
  },
  {
    name: 'mongo',
    skip: mongo ? false : skipReason('mongo'),
    // FerretDB on SQLite serializes writes: generous bounds, the behaviour under test is correctness.
    make: () => new MongoStore({ collection: db!.collection<MongoSessionDocument>(`s_${randomUUID().slice(0, 8)}`), timeoutMs: 30_000 }),
  },
];

const N = 200;
const increment = async (ctx: import('koa').Context) => {
  ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)), id: ctx.session.id ?? null };
};

for (const { name, skip, make } of factories) {
  describe(`${name} as master`, { skip }, () => {
    it(`${N} overlapping increments on one session end at exactly ${N}, each response distinct`, async () => {
      const master = make();
      const server = makeApp({ master, lockTimeout: 120_000, storeTimeout: 30_000 }, increment).callback();
      const first = await request(server).get('/');
      const cookie = cookieHeader(first.headers['set-cookie']);
      const rest = await Promise.all(Array.from({ length: N - 1 }, () => request(server).get('/').set('Cookie', cookie)));
      assert.ok(
        rest.every((r) => r.status === 200),
        `all 200, got ${[...new Set(rest.map((r) => r.status))].join(',')}`,
      );
      const counts = [first.body.count, ...rest.map((r) => r.body.count)];
      assert.equal(new Set(counts).size, N);
      assert.equal(JSON.parse((await master.get(sidOf(first)))!).count, N);
    });
  });
}

describe('Redis master with Mongo and Memcached mirrors', {
  skip: redis && mongo && memcached ? false : skipReason(!redis ? 'redis' : !mongo ? 'mongo' : 'memcached'),
}, () => {
  it(`${N} overlapping increments: each mirror ends with the same data as the master; destroy reaches them all`, async () => {
    const [master, mongoMirror, memcachedMirror] = [factories[1]!.make(), factories[3]!.make(), factories[2]!.make()];
    const server = makeApp({ master, mirrors: [mongoMirror, memcachedMirror], lockTimeout: 120_000, storeTimeout: 30_000 }, async (ctx) => {
      if (ctx.path === '/destroy') await ctx.session.destroy();
      else await increment(ctx);
      ctx.body ??= 'ok';
    }).callback();
    const first = await request(server).get('/');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const sid = sidOf(first);
    const rest = await Promise.all(Array.from({ length: N - 1 }, () => request(server).get('/').set('Cookie', cookie)));
    assert.ok(rest.every((r) => r.status === 200));
    const expected = JSON.stringify({ count: N });
    assert.equal(await master.get(sid), expected);
    assert.equal(await mongoMirror.get(sid), expected, 'mongo mirror');
    assert.equal(await memcachedMirror.get(sid), expected, 'memcached mirror');
    await request(server).get('/destroy').set('Cookie', cookie);
    for (const store of [master, mongoMirror, memcachedMirror]) assert.equal(await store.get(sid), undefined, `${store.name} destroyed`);
  });
});

for (const { name, skip, make } of factories.filter((f) => f.name === 'redis' || f.name === 'mongo')) {
  describe(`${name}: a record that is not valid serialized data`, { skip }, () => {
    it('written by hand into the server, it is no session plus session:invalid, never a crash', async () => {
      const master = make();
      const invalid: string[] = [];
      const app = makeApp({ master }, increment);
      app.on('session:invalid', (e: { reason: string }) => invalid.push(e.reason));
      const server = app.callback();
      const first = await request(server).get('/');
      const sid = sidOf(first);
      if (name === 'redis') await redisClient!.set((master as RedisStore).keyFor(sid), '{not json', { PX: 60_000 });
      else await (master as MongoStore).collection.updateOne({ _id: sid }, { $set: { value: '\u0000garbage' } });
      const res = await request(server).get('/').set('Cookie', cookieHeader(first.headers['set-cookie']));
      assert.equal(res.status, 200);
      assert.equal(res.body.count, 1, 'a fresh session');
      assert.notEqual(res.body.id, sid);
      assert.deepEqual(invalid, ['bad-record']);
    });
  });
}

describe('a server that is down at request time', () => {
  const cases: Array<{ name: string; server: TestServer | undefined; store(url: string): Promise<Store> }> = [
    {
      name: 'redis',
      server: redis,
      store: async (port) => {
        const client = await createClient({
          url: `redis://127.0.0.1:${port}`,
          disableOfflineQueue: true,
          socket: { reconnectStrategy: () => 50 },
        })
          .on('error', () => {})
          .connect();
        closers.push(async () => client.destroy()); // a store never closes a client it was given
        return new RedisStore({ client });
      },
    },
    { name: 'memcached', server: memcached, store: async (port) => new MemcachedStore({ servers: `127.0.0.1:${port}`, timeoutMs: 500 }) },
    {
      name: 'mongo',
      server: mongo,
      store: async (port) =>
        MongoStore.connect({
          url: `mongodb://127.0.0.1:${port}/`,
          dbName: `kls_down_${randomUUID().slice(0, 8)}`,
          timeoutMs: 1000,
          clientOptions: { serverSelectionTimeoutMS: 1000 },
        }),
    },
  ];
  for (const { name, server, store: makeStore } of cases) {
    it(`${name}: 503 StoreError, nothing half-written; back up, the next request works without an app restart`, {
      skip: server ? false : skipReason(name),
    }, async () => {
      const target = Number(new URL(name === 'memcached' ? `tcp://${server!.url}` : server!.url).port);
      const proxy = await tcpProxy(target);
      const master = await makeStore(String(proxy.port));
      closers.push(async () => (master as { close?: () => Promise<void> }).close?.());
      closers.push(() => proxy.close());
      const errors: unknown[] = [];
      const app = makeApp({ master, storeTimeout: 1500 }, increment);
      app.on('error', (e) => errors.push(e));
      const http = app.callback();
      const first = await request(http).get('/');
      assert.equal(first.status, 200);
      const cookie = cookieHeader(first.headers['set-cookie']);
      const sid = sidOf(first);

      proxy.blackhole(); // the server stops answering
      proxy.cut();
      const down = await request(http).get('/').set('Cookie', cookie);
      assert.equal(down.status, 503);
      assert.ok(
        errors.some((e) => e instanceof StoreError),
        'a StoreError reached Koa',
      );
      const fresh = await request(http).get('/');
      assert.equal(fresh.status, 503);
      assert.equal(fresh.headers['set-cookie'], undefined, 'no cookie for a session that was not saved');

      proxy.pass(); // back up
      let back = await request(http).get('/').set('Cookie', cookie);
      for (let i = 0; i < 20 && back.status === 503; i++) back = await request(http).get('/').set('Cookie', cookie); // reconnect
      assert.equal(back.status, 200);
      assert.equal(back.body.count, 2, 'the failed request applied nothing; the session goes on');
      assert.equal(back.body.id, sid);
    });
  }
});
