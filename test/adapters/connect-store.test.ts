/**
 * fromConnectStore on real express-session stores: connect-redis on a real
 * redis-server and connect-mongo on FerretDB. The store conformance suite, our
 * record kept apart from the peer's own sessions, and the HTTP increment race.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { RedisStore as ConnectRedis } from 'connect-redis';
import { MongoStore as ConnectMongo } from 'connect-mongo';
import { MongoClient } from 'mongodb';
import { createClient } from 'redis';
import { fromConnectStore } from '../../src/adapters/connect-store.js';
import { StoreError } from '../../src/errors.js';
import { mongoServer, redisServer, skipReason } from '../helpers/servers.js';
import { storeConformance } from '../stores/conformance.js';
import { incrementRace } from './http-race.js';

const [redis, mongo] = await Promise.all([redisServer(), mongoServer()]);
const redisClient = redis ? await createClient({ url: redis.url }).connect() : undefined;
redisClient?.on('error', () => {});
const mongoClient = mongo ? await new MongoClient(mongo.url, { serverSelectionTimeoutMS: 5000 }).connect() : undefined;
const dbName = `kls_connect_${randomUUID().slice(0, 8)}`;
const connectMongos: ConnectMongo[] = [];

after(async () => {
  await redisClient?.quit().catch(() => {});
  for (const store of connectMongos) await store.close().catch(() => {});
  if (mongo?.external)
    await mongoClient
      ?.db(dbName)
      .dropDatabase()
      .catch(() => {});
  await mongoClient?.close();
  await Promise.all([redis?.stop(), mongo?.stop()]);
});

const connectRedis = () => new ConnectRedis({ client: redisClient!, prefix: `cr-${randomUUID().slice(0, 8)}:` });
const connectMongo = () => {
  // autoRemove disabled: expiry is checked on read (ours) and by the `expires` filter of connect-mongo.
  const store = ConnectMongo.create({
    client: mongoClient!,
    dbName,
    collectionName: `s_${randomUUID().slice(0, 8)}`,
    autoRemove: 'disabled',
  });
  connectMongos.push(store);
  return store;
};

storeConformance('connect-redis (fromConnectStore)', () => fromConnectStore(connectRedis()), {
  skip: redis ? false : skipReason('redis'),
  versioned: false,
  extraTests: (ctx) => {
    it('is named after the store class', () => {
      assert.equal(ctx.store.name, 'connect:RedisStore');
    });
    it('never hands a session of the old library to our deserializer', async () => {
      const peer = connectRedis();
      const adapted = fromConnectStore(peer);
      await new Promise<void>((resolve, reject) =>
        peer.set(
          ctx.key('theirs'),
          { cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000) }, views: 3 } as never,
          (e) => (e ? reject(e) : resolve()),
        ),
      );
      assert.equal(await adapted.get(ctx.key('theirs')), undefined);
    });
  },
});

// FerretDB on SQLite serializes writes, and 1,000 concurrent upserts on a loaded machine
// take a while: generous bounds, the behaviour under test is correctness.
storeConformance('connect-mongo on FerretDB (fromConnectStore)', () => fromConnectStore(connectMongo(), { timeoutMs: 120_000 }), {
  skip: mongo ? false : skipReason('mongo'),
  shortTtlMs: 300,
  versioned: false,
});

describe('fromConnectStore', () => {
  it('rejects what is not an express-session store, naming what it lacks', () => {
    assert.throws(() => fromConnectStore({ get() {}, set() {} } as never), /express-session store .*lacks destroy/);
    assert.throws(() => fromConnectStore(null as never), TypeError);
  });

  it('a store error is a StoreError naming the store', async () => {
    const broken = fromConnectStore(
      { get: (_: string, cb: (e: Error) => void) => cb(new Error('boom')), set() {}, destroy() {} },
      { name: 'broken' },
    );
    await assert.rejects(broken.get('k'), (error: unknown) => error instanceof StoreError && error.message === '[broken] get failed: boom');
  });

  it('a store that never calls back fails after timeoutMs instead of holding the lock', async () => {
    const silent = fromConnectStore({ get() {}, set() {}, destroy() {} }, { name: 'silent', timeoutMs: 20 });
    await assert.rejects(silent.get('k'), /\[silent\] get failed: no callback within 20 ms/);
  });

  it('200 overlapping increments through connect-redis end at exactly 200', { skip: redis ? false : skipReason('redis') }, async () => {
    await incrementRace({ master: fromConnectStore(connectRedis()) }, 200);
  });

  it('50 overlapping increments through connect-mongo on FerretDB end at exactly 50', {
    skip: mongo ? false : skipReason('mongo'),
  }, async () => {
    await incrementRace({ master: fromConnectStore(connectMongo(), { timeoutMs: 30_000 }) }, 50);
  });
});
