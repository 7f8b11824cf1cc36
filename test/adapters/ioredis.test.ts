/**
 * RedisStore and RedisLocker on an ioredis client (single node and Cluster)
 * through fromIoredis: the store conformance suite (versioned writes included:
 * the same Lua scripts run), the locker conformance suite, and the HTTP
 * increment race with store + locker on one ioredis client (the fast path).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import redisStore from 'koa-redis';
import { createClient } from 'redis';
import { fromIoredis, isIoredis } from '../../src/redis/ioredis.js';
import { RedisLocker } from '../../src/redis/locker.js';
import { LockLostError } from '../../src/errors.js';
import { RedisStore } from '../../src/redis/store.js';
import { CLUSTER_KIND, redisCluster } from '../helpers/redis-cluster.js';
import { redisServer, skipReason } from '../helpers/servers.js';
import { lockerConformance } from '../lockers/conformance.js';
import { storeConformance } from '../stores/conformance.js';
import request from 'supertest';
import { makeApp } from '../helpers/app.js';
import { incrementRace } from './http-race.js';

const [server, cluster] = await Promise.all([redisServer(), redisCluster()]);
const skip = server ? false : skipReason('redis');
const clusterSkip = cluster ? false : skipReason(CLUSTER_KIND);

const clients: Array<Redis | Cluster> = [];
after(async () => {
  for (const client of clients) await client.quit().catch(() => client.disconnect());
  await Promise.all([server?.stop(), cluster?.stop()]);
});

async function single(): Promise<Redis> {
  const client = new Redis(server!.url, { lazyConnect: true });
  client.on('error', () => {});
  clients.push(client);
  await client.connect();
  return client;
}
async function clustered(): Promise<Cluster> {
  const nodes = cluster!.urls.map((url) => ({ host: new URL(url).hostname, port: Number(new URL(url).port) }));
  const client = new Cluster(nodes, { lazyConnect: true });
  client.on('error', () => {});
  clients.push(client);
  await client.connect();
  return client;
}

storeConformance('redis on ioredis', async () => new RedisStore({ client: fromIoredis(await single()) }), { skip });
storeConformance('redis on an ioredis Cluster', async () => new RedisStore({ client: fromIoredis(await clustered()) }), {
  skip: clusterSkip,
});

// koa-redis bundles its own ioredis 4: the client a koa-redis app already has works too.
const koaRedisStores: Array<ReturnType<typeof redisStore>> = [];
after(async () => {
  for (const store of koaRedisStores) await store.quit().catch(() => {});
});
storeConformance(
  'redis on the ioredis 4 client of koa-redis',
  async () => {
    const store = redisStore({ url: server!.url });
    koaRedisStores.push(store);
    const io = store.client as import('../../src/index.js').IoredisLike;
    if (io.status !== 'ready') await once(io as unknown as import('node:events').EventEmitter, 'ready');
    return new RedisStore({ client: fromIoredis(io) });
  },
  { skip },
);

let lockerClient: Redis | undefined;
lockerConformance('redis on ioredis', async () => new RedisLocker({ client: fromIoredis((lockerClient ??= await single())) }), {
  shared: true,
  skip,
});
let lockerCluster: Cluster | undefined;
lockerConformance(
  'redis on an ioredis Cluster',
  async () => new RedisLocker({ client: fromIoredis((lockerCluster ??= await clustered())) }),
  { shared: true, skip: clusterSkip },
);

describe('fromIoredis', () => {
  it('isIoredis tells an ioredis client from a node-redis one', { skip }, async () => {
    const io = await single();
    assert.equal(isIoredis(io), true);
    const nodeRedis = createClient({ url: server!.url });
    assert.equal(isIoredis(nodeRedis), false);
    assert.equal(isIoredis({}), false);
    assert.equal(isIoredis(null), false);
  });

  it('the same ioredis client always gives the same adapter (so store and locker share the fast path)', { skip }, async () => {
    const io = await single();
    assert.equal(fromIoredis(io), fromIoredis(io));
    assert.equal(fromIoredis(io).ioredis, io);
  });

  it('RedisStore and RedisLocker take an ioredis client as it is (adapted for you): they share the fast path', { skip }, async () => {
    const io = await single();
    const store = new RedisStore({ client: io });
    const locker = new RedisLocker({ client: io, leaseMs: 60_000 });
    try {
      assert.equal(store.client, fromIoredis(io), 'the store holds the one adapter of this client');
      const key = `raw-${randomUUID().slice(0, 8)}`;
      await store.write(key, '{"n":1}', 1, 60_000, null);
      const lease = await locker.acquire(key, { timeoutMs: 10_000, store });
      assert.ok(lease.store, 'the fast path applies (store and locker adapted the same client to the same adapter)');
      assert.deepEqual(await lease.store.read(key), { value: '{"n":1}', version: 1 });
      await lease.release();
    } finally {
      await locker.close();
    }
  });

  it('rejects what is not an ioredis client, with the fix', () => {
    assert.throws(() => fromIoredis({} as never), /Expected fromIoredis\(\) to get an ioredis client/);
  });

  it('isReady follows the connection: a quit client fails fast with a StoreError', { skip }, async () => {
    const io = await single();
    const store = new RedisStore({ client: fromIoredis(io) });
    await store.set('ready-check', '{}', 60_000);
    const ended = once(io, 'end');
    await io.quit();
    await ended;
    await assert.rejects(store.get('ready-check'), /\[redis\] GET failed: the client is not connected to Redis \(closed\)/);
  });

  it('a lazyConnect client never connected: every request is a 503 whose error says to connect it (not "closed")', { skip }, async () => {
    const io = new Redis(server!.url, { lazyConnect: true });
    io.on('error', () => {});
    clients.push(io);
    assert.equal(io.status, 'wait');
    const store = new RedisStore({ client: io });
    const locker = new RedisLocker({ client: io });
    const errors: unknown[] = [];
    const app = makeApp({ master: store, locker }, async (ctx) => {
      ctx.body = { n: await ctx.session.withLock((s) => (s.n = (s.n ?? 0) + 1)) };
    });
    app.on('error', (error: unknown) => errors.push(error));
    try {
      const hint = 'ioredis client created with lazyConnect and never connected: call await client.connect() first';
      const res = await request(app.callback()).get('/');
      assert.equal(res.status, 503);
      assert.ok(
        String((errors.at(-1) as Error)?.message).endsWith(`failed: the client is not connected to Redis (${hint})`),
        String(errors.at(-1)),
      );
      // The store's commands and the locker's acquire both say it.
      await assert.rejects(store.get('lazy'), (error: Error) =>
        error.message.endsWith(`GET failed: the client is not connected to Redis (${hint})`),
      );
      await assert.rejects(locker.acquire('lazy', { timeoutMs: 1000 }), (error: Error) =>
        error.message.endsWith(`lock acquire failed: the client is not connected to Redis (${hint})`),
      );
      assert.equal(io.status, 'wait', "the library did not connect the client behind the application's back");
      // Once the application connects it, the same store and locker work.
      await io.connect();
      assert.equal((await request(app.callback()).get('/')).status, 200);
    } finally {
      await locker.close();
    }
  });

  it('fencing: store and locker on one ioredis client take the fast path; once the token is gone a write is refused (LockLostError)', {
    skip,
  }, async () => {
    const io = await single();
    const client = fromIoredis(io);
    const store = new RedisStore({ client });
    const locker = new RedisLocker({ client, leaseMs: 60_000 });
    try {
      const key = `fence-${randomUUID().slice(0, 8)}`;
      await store.write(key, '{"n":1}', 1, 60_000, null);
      const lease = await locker.acquire(key, { timeoutMs: 10_000, store });
      assert.ok(lease.store, 'the fast path applies (the same adapter for store and locker)');
      assert.deepEqual(await lease.store.read(key), { value: '{"n":1}', version: 1 });
      // The lease ran out while this holder was paused, and a newer holder took the lock.
      await io.set(locker.lockKey(key), 'newer-holder', 'PX', 60_000);
      await assert.rejects((lease.store as typeof store).write(key, '{"n":2}', 2, 60_000, 1), LockLostError);
      assert.deepEqual(await store.read(key), { value: '{"n":1}', version: 1 }, 'nothing written');
      await lease.release();
      assert.equal(await io.get(locker.lockKey(key)), 'newer-holder', "release never deletes another holder's lock");
    } finally {
      await locker.close();
    }
  });

  it('200 overlapping increments with RedisStore + RedisLocker on one ioredis client end at exactly 200', { skip }, async () => {
    const client = fromIoredis(await single());
    const locker = new RedisLocker({ client });
    try {
      await incrementRace({ prefix: `io${randomUUID().slice(0, 8)}:`, master: new RedisStore({ client }), locker }, 200);
    } finally {
      await locker.close();
    }
  });

  it('100 overlapping increments with RedisStore + RedisLocker on an ioredis Cluster end at exactly 100', {
    skip: clusterSkip,
  }, async () => {
    const client = fromIoredis(await clustered());
    const locker = new RedisLocker({ client });
    try {
      await incrementRace({ prefix: `io${randomUUID().slice(0, 8)}:`, master: new RedisStore({ client }), locker }, 100);
    } finally {
      await locker.close();
    }
  });
});
