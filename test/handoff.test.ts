/**
 * Issue 13, item 1: lease handoff. Scopes of one session in one process queue
 * in-process; the lease passes from one to the next without going back to the
 * locker, bounded by `handoff.maxHandoffs` / `handoff.maxMs`, never when it is
 * lost, and the next scope starts on the record the previous one wrote.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { createClient } from 'redis';
import request from 'supertest';
import {
  LockTimeoutError,
  MemcachedStore,
  MemoryLocker,
  MemoryStore,
  RedisLocker,
  RedisStore,
  type AcquireOptions,
  type Lease,
  type Locker,
  type SessionOptions,
  type Store,
} from '../src/index.js';
import { resolveOptions } from '../src/options.js';
import { Replica } from '../src/core/replica.js';
import { SessionLock } from '../src/core/session-lock.js';
import { overVersion } from '../src/core/write.js';
import { cookieHeader, makeApp } from './helpers/app.js';
import { memcachedServer, redisServer, skipReason } from './helpers/servers.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const redis = await redisServer();
const memcached = await memcachedServer();
const redisClient = redis ? await createClient({ url: redis.url }).connect() : undefined;
const lockers: RedisLocker[] = [];
const stores: Store[] = [];
after(async () => {
  await Promise.all(lockers.map((l) => l.close()));
  await Promise.all(stores.map((s) => s.close?.()));
  redisClient?.destroy();
  await Promise.all([redis?.stop(), memcached?.stop()]);
});

/** A lease we control: `lost` can be set, and every call is counted. */
class FakeLease implements Lease {
  lost = false;
  holdsLock?: boolean;
  releases = 0;
  fastPaths = 0;
  async release(): Promise<void> {
    this.releases++;
  }
  releaseWithNextWrite(): void {
    this.fastPaths++;
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}

/** A locker whose acquires are counted; grants at once (the local queue is what serializes here). */
class CountingLocker implements Locker {
  readonly name = 'counting';
  readonly leases: FakeLease[] = [];
  async acquire(_key: string, _options: AcquireOptions): Promise<Lease> {
    const lease = new FakeLease();
    this.leases.push(lease);
    return lease;
  }
}

/** A store that counts reads (a handed-over scope must not need one). */
class ReadCountingStore extends MemoryStore {
  reads = 0;
  override read(key: string) {
    this.reads++;
    return super.read(key);
  }
}

function lockSetup(handoff?: SessionOptions['handoff'], locker: Locker = new CountingLocker()) {
  const master = new ReadCountingStore();
  const options = resolveOptions({ master, locker, lockTimeout: 60_000, ...(handoff === undefined ? {} : { handoff }) });
  const replica = new Replica(master, [], { onMirrorError: () => {} });
  const acquire = (timeoutMs?: number) => SessionLock.acquire(options, replica, 'k', timeoutMs);
  return { master, locker, acquire };
}

describe('lease handoff (SessionLock + local queue)', () => {
  it('after maxHandoffs handoffs the lease goes back to the locker, and the next scope acquires from it', async () => {
    const { locker, acquire } = lockSetup({ maxHandoffs: 2, maxMs: 600_000 });
    const first = await acquire();
    // Queued in-process synchronously behind the holder.
    const waiting = Array.from({ length: 5 }, () => acquire());
    let lock = first;
    for (const next of waiting) {
      await lock.release();
      lock = await next;
    }
    await lock.release();
    // 6 scopes: acquire, 2 handoffs, back to the locker, acquire, 2 handoffs.
    assert.equal((locker as CountingLocker).leases.length, 2);
    assert.deepEqual(
      (locker as CountingLocker).leases.map((l) => l.releases),
      [1, 1],
      'each lease released once, to the locker',
    );
  });

  it('a handed-over scope starts on the record the previous holder wrote, without reading the store', async () => {
    const { master, acquire } = lockSetup();
    const first = await acquire();
    const second = acquire();
    await first.release({ value: '{"count":7}', version: 7, until: Number.POSITIVE_INFINITY });
    const lock = await second;
    assert.deepEqual(await lock.read(), { value: '{"count":7}', version: 7 });
    assert.equal(master.reads, 0);
    // The holder only read it (a read-only scope, a merge with nothing to change): nobody could write the key since, it goes on.
    const third = acquire();
    await lock.release();
    const next = await third;
    assert.deepEqual(await next.read(), { value: '{"count":7}', version: 7 });
    assert.equal(master.reads, 0, 'a holder that wrote nothing hands on the record it was handed');
    // A holder that wrote, or tried to (a failed write may have landed), vouches nothing it does not pass: the next scope reads the store.
    const fourth = acquire();
    await next.write(overVersion('k', '{"count":8}', 7, 60_000)).catch(() => {}); // refused: the store holds no version 7
    await next.release();
    await (await fourth).read();
    assert.equal(master.reads, 1);
  });

  it('a lost lease is never handed off: the next scope acquires a new lease from the locker and reads the store', async () => {
    const { master, locker, acquire } = lockSetup();
    const first = await acquire();
    const second = acquire();
    (first.lease as FakeLease).lost = true;
    await first.release({ value: '{"count":1}', version: 1, until: Number.POSITIVE_INFINITY });
    const lock = await second;
    assert.notEqual(lock.lease, first.lease);
    assert.equal((locker as CountingLocker).leases.length, 2);
    assert.equal((first.lease as FakeLease).releases, 1);
    await lock.read();
    assert.equal(master.reads, 1, 'the cached record of a lost lease is not trusted');
    await lock.release();
  });

  it('a lease that no longer holds the lock (PostgresLocker after its save committed) is never handed off', async () => {
    const { master, locker, acquire } = lockSetup();
    const first = await acquire();
    const second = acquire();
    (first.lease as FakeLease).holdsLock = false;
    await first.release({ value: '{"count":1}', version: 1, until: Number.POSITIVE_INFINITY });
    const lock = await second;
    assert.notEqual(lock.lease, first.lease);
    assert.equal((locker as CountingLocker).leases.length, 2, 'the next scope acquired from the locker');
    await lock.read();
    assert.equal(master.reads, 1, 'and read the store');
    await lock.release();
  });

  it('the release-with-the-last-write fast path is used only when no local scope waits for the lease', async () => {
    const { acquire } = lockSetup();
    const alone = await acquire();
    alone.releaseWithNextWrite();
    assert.equal((alone.lease as FakeLease).fastPaths, 1);
    await alone.release();

    const holder = await acquire();
    const waiter = acquire();
    holder.releaseWithNextWrite();
    assert.equal((holder.lease as FakeLease).fastPaths, 0, 'the lease is going to be handed over');
    await holder.release();
    const next = await waiter;
    assert.equal(next.lease, holder.lease);
    await next.release();
  });

  it('handoff: false sends every scope to the locker', async () => {
    const { locker, acquire } = lockSetup(false);
    const first = await acquire();
    const second = acquire();
    await first.release();
    await (await second).release();
    assert.equal((locker as CountingLocker).leases.length, 2);
  });

  it('a scope waiting in-process gives up with LockTimeoutError after its lockTimeout, and the queue goes on', async () => {
    const { acquire } = lockSetup();
    const holder = await acquire();
    await assert.rejects(acquire(5), LockTimeoutError);
    const later = acquire();
    await holder.release();
    await (await later).release();
  });

  it('validates the option', () => {
    assert.throws(() => resolveOptions({ handoff: { maxHandoffs: 0 } }), /handoff\.maxHandoffs/);
    assert.throws(() => resolveOptions({ handoff: { maxMs: -1 } }), /handoff\.maxMs/);
    assert.throws(() => resolveOptions({ handoff: true as never }), /`handoff`.*or false/);
    assert.throws(() => resolveOptions({ handoff: { max: 1 } as never }), /handoff\.max/);
    assert.equal(resolveOptions({ handoff: false }).handoff, false);
  });
});

const N = 50;
type Backend = { name: string; skip: string | false; make(): { master: Store; locker: Locker } };
const backends: Backend[] = [
  { name: 'MemoryStore + MemoryLocker', skip: false, make: () => ({ master: new MemoryStore(), locker: new MemoryLocker() }) },
  {
    name: 'RedisStore + RedisLocker',
    skip: redis ? false : skipReason('redis'),
    make: () => {
      const prefix = `handoff-${randomUUID().slice(0, 8)}:`;
      const locker = new RedisLocker({ client: redisClient!, prefix: `lock-${prefix}` });
      lockers.push(locker);
      return { master: new RedisStore({ client: redisClient!, prefix }), locker };
    },
  },
  {
    name: 'MemcachedStore + RedisLocker',
    skip: redis && memcached ? false : skipReason(redis ? 'memcached' : 'redis'),
    make: () => {
      const prefix = `handoff-${randomUUID().slice(0, 8)}:`;
      const locker = new RedisLocker({ client: redisClient!, prefix: `lock-${prefix}` });
      lockers.push(locker);
      const master = new MemcachedStore({ servers: memcached!.url, prefix });
      stores.push(master);
      return { master, locker };
    },
  },
];

describe(`${N} overlapping increments of one session with handoff on`, () => {
  for (const backend of backends) {
    it(`${backend.name}: end at exactly ${N}, each response seeing its own value`, { skip: backend.skip }, async () => {
      const { master, locker } = backend.make();
      // Small bounds, so both handoffs and returns to the locker happen in one run.
      const app = makeApp({ master, locker, handoff: { maxHandoffs: 4, maxMs: 60_000 } }, async (ctx) => {
        ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)) };
      });
      const server = app.callback();
      const first = await request(server).get('/');
      const cookie = cookieHeader(first.headers['set-cookie']);
      const responses = await Promise.all(Array.from({ length: N - 1 }, () => request(server).get('/').set('Cookie', cookie)));
      assert.deepEqual(
        responses.filter((r) => r.status !== 200).map((r) => r.status),
        [],
      );
      const seen = [first.body.count, ...responses.map((r) => r.body.count)];
      assert.equal(new Set(seen).size, N, 'every response saw its own value');
      const final = await request(server).get('/').set('Cookie', cookie);
      assert.equal(final.body.count, N + 1);
    });
  }
});
