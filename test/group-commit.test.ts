/**
 * Issue 13, item 2: group commit. Scopes of one session queued in one process
 * run one after the other on one fresh read, and their changes go to the master
 * in one write; each request is answered only after the write that holds its
 * change is acknowledged; a scope that throws is rolled back alone; if the
 * batch's write fails, every scope in it fails (503) and none is saved.
 *
 * Each burst is made deterministic: request 0 takes the lock and holds it in
 * its function until requests 1..n-1 have all queued behind it in this
 * process, in the order they were sent.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type Koa from 'koa';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { createClient } from 'redis';
import request from 'supertest';
import {
  MemcachedStore,
  MemoryLocker,
  MemoryStore,
  MongoStore,
  PostgresLocker,
  PostgresStore,
  RedisLocker,
  RedisStore,
  type Locker,
  type MongoSessionDocument,
  type SessionOptions,
  type Store,
  type WriteCondition,
} from '../src/index.js';
import { resolveOptions } from '../src/options.js';
import { cookieHeader, deferred, makeApp, sidOf } from './helpers/app.js';
import { freshDatabase, postgresServer } from './helpers/postgres-server.js';
import { memcachedServer, mongoServer, redisServer, skipReason } from './helpers/servers.js';
import { WriteCountingStore } from './helpers/group-burst.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

// Real servers for the every-store cases at the end.
const [redis, memcached, mongo, postgres] = await Promise.all([redisServer(), memcachedServer(), mongoServer(), postgresServer()]);
const redisClient = redis ? await createClient({ url: redis.url }).connect() : undefined;
const mongoClient = mongo ? await new MongoClient(mongo.url, { serverSelectionTimeoutMS: 5000 }).connect() : undefined;
const mongoDb = mongoClient?.db(`kls_group_${randomUUID().slice(0, 8)}`);
const pgDb = postgres ? await freshDatabase(postgres, 'group_commit') : undefined;
const pool = pgDb ? new pg.Pool({ connectionString: pgDb.url, max: 4 }) : undefined;
pool?.on('error', () => {});
const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of closers) await close().catch(() => {});
  await pool?.end();
  await pgDb?.drop().catch(() => {});
  if (mongo?.external) await mongoDb?.dropDatabase().catch(() => {});
  await mongoClient?.close();
  await redisClient?.quit().catch(() => {});
  await Promise.all([redis?.stop(), memcached?.stop(), mongo?.stop(), postgres?.stop()]);
});

const unique = () => `gc-${randomUUID().slice(0, 8)}:`;
function redisLocker(): RedisLocker {
  const locker = new RedisLocker({ client: redisClient!, prefix: `lock-${unique()}` });
  closers.push(() => locker.close());
  return locker;
}

type Step = (s: { count?: number }, i: number, ctx: Koa.Context) => unknown;
const increment: Step = (s) => (s.count = (s.count ?? 0) + 1);

/**
 * Send `n` requests of one session (`step` runs in each one's withLock),
 * queued behind request 0 in the order sent. Resolves to the responses by index.
 */
async function burst(given: SessionOptions, n: number, step: Step = increment) {
  // The lock is taken before the others arrive: a slow machine must not run out the handoff's time bound.
  const options: SessionOptions = { handoff: { maxMs: 600_000 }, ...given };
  const holder = deferred();
  const gate = deferred();
  const arrivals = Array.from({ length: n }, () => deferred());
  const app = makeApp(options, async (ctx) => {
    if (ctx.path === '/setup') {
      ctx.body = { count: await ctx.session.withLock((s) => (s.count = 0)) };
      return;
    }
    if (ctx.path === '/count') {
      ctx.body = { count: (await ctx.session.get()).count ?? null };
      return;
    }
    const i = Number(ctx.query.i);
    const result = ctx.session.withLock(async (s) => {
      if (i === 0) {
        holder.resolve();
        await gate.promise; // hold the lock until everyone queued behind it
      }
      return step(s, i, ctx);
    });
    arrivals[i]!.resolve(); // withLock entered the in-process queue synchronously
    ctx.body = { result: (await result) ?? null };
  });
  const http = app.callback();
  const setup = await request(http).get('/setup');
  assert.equal(setup.status, 200);
  const cookie = cookieHeader(setup.headers['set-cookie']);
  const sid = sidOf(setup);
  const writesBefore = options.master instanceof WriteCountingStore ? options.master.writes : 0;
  const send = (i: number) =>
    request(http)
      .get(`/?i=${i}`)
      .set('Cookie', cookie)
      .then((r) => r);
  const responses: Array<Promise<request.Response>> = [send(0)];
  await holder.promise;
  for (let i = 1; i < n; i++) {
    responses.push(send(i));
    await arrivals[i]!.promise;
  }
  gate.resolve();
  const done = await Promise.all(responses);
  const writes = options.master instanceof WriteCountingStore ? options.master.writes - writesBefore : undefined;
  const count = async (c = cookie) => (await request(http).get('/count').set('Cookie', c)).body.count as number | null;
  return { responses: done, writes, count, sid, cookie, http };
}

/** Bounds no run reaches, so that the write counts do not depend on the machine's speed (maxMs is tested in group-commit-faults). */
const UNCUT = { maxScopes: 32, maxMs: 600_000 };

const results = (rs: request.Response[]) => rs.map((r) => (r.status === 200 ? r.body.result : r.status));

describe('group commit: scopes queued in one process share one master write', () => {
  it('10 overlapping increments: one master write, each response its own value, the count ends at 10', async () => {
    const master = new WriteCountingStore();
    const { responses, writes, count } = await burst({ master, groupCommit: UNCUT }, 10);
    assert.deepEqual(results(responses), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(writes, 1);
    assert.equal(await count(), 10);
  });

  it('maxScopes bounds how many scopes one write carries', async () => {
    const master = new WriteCountingStore();
    const { responses, writes, count } = await burst({ master, groupCommit: { ...UNCUT, maxScopes: 3 } }, 10);
    assert.deepEqual(results(responses), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(writes, 4, 'batches of 3, 3, 3 and 1');
    assert.equal(await count(), 10);
  });

  it('groupCommit: false: every scope writes its own change', async () => {
    const master = new WriteCountingStore();
    const { responses, writes, count } = await burst({ master, groupCommit: false }, 10);
    assert.deepEqual(results(responses), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(writes, 10);
    assert.equal(await count(), 10);
  });

  it('a scope that throws is rolled back alone: the batch goes on without its change', async () => {
    const master = new WriteCountingStore();
    const { responses, writes, count } = await burst({ master, groupCommit: UNCUT }, 10, (s, i) => {
      increment(s, i, undefined as never);
      if (i === 4) throw new Error('boom');
      return s.count;
    });
    assert.deepEqual(results(responses), [1, 2, 3, 4, 500, 5, 6, 7, 8, 9]);
    assert.equal(writes, 1);
    assert.equal(await count(), 9);
  });

  it('the last scope of a batch throws: the batch it inherited is still written (without its change) and acknowledged', async () => {
    const master = new WriteCountingStore();
    const { responses, writes, count } = await burst({ master, groupCommit: UNCUT }, 10, (s, i) => {
      increment(s, i, undefined as never);
      if (i === 9) throw new Error('boom');
      return s.count;
    });
    assert.deepEqual(results(responses), [1, 2, 3, 4, 5, 6, 7, 8, 9, 500]);
    assert.equal(writes, 1);
    assert.equal(await count(), 9);
  });

  it('the batch write fails: every scope in it fails with 503, a read-only one too, and nothing is saved', async () => {
    const master = new WriteCountingStore();
    let armed = false;
    const { responses, count } = await burst({ master, groupCommit: UNCUT }, 6, (s, i) => {
      if (!armed) {
        armed = true;
        master.failWrites = true;
      }
      return i === 3 ? s.count : increment(s, i, undefined as never); // 3 only reads what the batch holds so far
    });
    master.failWrites = false;
    assert.deepEqual(
      responses.map((r) => r.status),
      [503, 503, 503, 503, 503, 503],
      'nobody saw an unsaved value as saved',
    );
    assert.equal(await count(), 0, 'none of the changes was saved');
    assert.equal(master.writes > 0, true);
  });

  it('a regenerate inside a batch carries the batch to the new sid; scopes queued on the old sid get 409', async () => {
    const master = new WriteCountingStore();
    const { responses, count } = await burst({ master, groupCommit: UNCUT }, 8, async (s, i, ctx) => {
      increment(s, i, undefined as never);
      if (i === 4) await ctx.session.regenerate();
      return s.count;
    });
    assert.deepEqual(results(responses), [1, 2, 3, 4, 5, 409, 409, 409]);
    assert.equal(
      await count(cookieHeader(responses[4]!.headers['set-cookie'])),
      5,
      'the new sid holds every change of the batch and the regenerating scope',
    );
  });

  it('a scope that changes nothing still waits for the write that holds what it read', async () => {
    const master = new WriteCountingStore();
    const { responses, writes } = await burst({ master, groupCommit: UNCUT }, 4, (s, i) =>
      i === 3 ? s.count : increment(s, i, undefined as never),
    );
    assert.deepEqual(results(responses), [1, 2, 3, 3]);
    assert.equal(writes, 1, 'the read-only last scope wrote the batch it stood on');
  });

  it('validates the option', () => {
    assert.throws(() => resolveOptions({ groupCommit: { maxScopes: 0 } }), /groupCommit\.maxScopes/);
    assert.throws(() => resolveOptions({ groupCommit: { maxMs: -1 } }), /groupCommit\.maxMs/);
    assert.throws(() => resolveOptions({ groupCommit: true as never }), /`groupCommit`.*or false/);
    assert.throws(() => resolveOptions({ groupCommit: { max: 1 } as never }), /groupCommit\.max/);
    assert.throws(() => resolveOptions({ handoff: false, groupCommit: { maxScopes: 4 } }), /handoff/);
    assert.equal(resolveOptions({ handoff: false }).groupCommit, false);
    assert.equal(resolveOptions({ groupCommit: false }).groupCommit, false);
    assert.deepEqual(resolveOptions({}).groupCommit, { maxScopes: 32, maxMs: 20 });
  });
});

type Backend = {
  name: string;
  skip: string | false;
  make(): { master: Store & { read(key: string): Promise<{ version: number } | undefined> }; locker: Locker };
};
const backends: Backend[] = [
  { name: 'MemoryStore + MemoryLocker', skip: false, make: () => ({ master: new MemoryStore(), locker: new MemoryLocker() }) },
  {
    name: 'RedisStore + RedisLocker',
    skip: redis ? false : skipReason('redis'),
    make: () => ({ master: new RedisStore({ client: redisClient!, prefix: unique() }), locker: redisLocker() }),
  },
  {
    name: 'MemcachedStore + RedisLocker',
    skip: redis && memcached ? false : skipReason(redis ? 'memcached' : 'redis'),
    make: () => {
      const master = new MemcachedStore({ servers: memcached!.url, prefix: unique() });
      closers.push(() => master.close());
      return { master, locker: redisLocker() };
    },
  },
  {
    name: 'MongoStore + RedisLocker',
    skip: redis && mongo ? false : skipReason(redis ? 'mongo' : 'redis'),
    make: () => ({
      master: new MongoStore({ collection: mongoDb!.collection<MongoSessionDocument>(`g_${randomUUID().slice(0, 8)}`), timeoutMs: 30_000 }),
      locker: redisLocker(),
    }),
  },
  {
    name: 'PostgresStore + PostgresLocker',
    skip: postgres ? false : skipReason('postgres'),
    make: () => {
      const master = new PostgresStore({ pool: pool!, table: `g_${randomUUID().slice(0, 8)}` });
      return { master, locker: new PostgresLocker({ store: master }) };
    },
  },
];

describe('group commit on every store: 12 overlapping increments, one master write', () => {
  for (const backend of backends) {
    it(backend.name, { skip: backend.skip }, async () => {
      const { master, locker } = backend.make();
      const { responses, count, sid } = await burst({ master, locker, groupCommit: UNCUT, storeTimeout: 30_000, lockTimeout: 60_000 }, 12);
      assert.deepEqual(
        results(responses),
        Array.from({ length: 12 }, (_, i) => i + 1),
      );
      assert.equal(await count(), 12);
      // Version 1: the setup request created the record; version 2: the one write of the burst.
      assert.equal((await master.read(sid))?.version, 2);
    });
  }
});
