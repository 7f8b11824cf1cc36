/**
 * RedisLocker against a real redis-server and a real local 3-node Redis Cluster:
 * the shared Locker conformance suite, then what only a lease on Redis has
 * (renewal, loss, fencing, the one-script fast path, wake-up without polling).
 *
 * Time passing is observed through Redis itself (keyspace notifications of the
 * lock key: `expire` per renewal, `expired` when the lease ran out), never by
 * sleeping and hoping.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { after, describe, test } from 'node:test';
import { createClient, createCluster } from 'redis';
import request from 'supertest';
import { LockLostError, LockTimeoutError, MemoryStore, StoreError } from '../../src/index.js';
import { RedisLocker, type RedisLockerOptions } from '../../src/redis/locker.js';
import { RedisStore } from '../../src/redis/store.js';
import { cookieHeader, makeApp } from '../helpers/app.js';
import { CLUSTER_KIND, redisCluster } from '../helpers/redis-cluster.js';
import { redisServer, skipReason, waitUntil } from '../helpers/servers.js';
import { lockerConformance } from './conformance.js';

declare module '../../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const LONG = 20_000;
let seq = 0;
const freshKey = (): string => `rl-${process.pid}-${++seq}`;

// Every server starts before the first test is registered: node:test runs the
// file's `after` hooks once the tests registered so far are done.
const server = await redisServer();
const redisSkip = server ? false : skipReason('redis');
const connect = (url: string) => createClient({ url }).connect();
type Client = Awaited<ReturnType<typeof connect>>;
const client = server ? await connect(server.url) : undefined;
const clients: Client[] = [];
/** Another connection to the same server (another "process"). */
async function otherClient(): Promise<Client> {
  const c = await connect(server!.url);
  clients.push(c);
  return c;
}

const cluster = await redisCluster();
const clusterSkip = cluster ? false : skipReason(CLUSTER_KIND);
const clusterClient = cluster ? await createCluster({ rootNodes: cluster.urls.map((url) => ({ url })) }).connect() : undefined;

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await client?.close();
  await clusterClient?.close();
  await Promise.all([server?.stop(), cluster?.stop()]);
});

// ---------------------------------------------------------------------------
// Single node

lockerConformance('redis', () => new RedisLocker({ client: client! }), { shared: true, skip: redisSkip });

/** Keyspace notifications of one key, counted per event name. */
async function watchKey(
  key: string,
): Promise<{ events: EventEmitter; count: Map<string, number>; next(event: string, n?: number): Promise<void>; stop(): Promise<void> }> {
  await client!.configSet('notify-keyspace-events', 'Kgx');
  const sub = await otherClient();
  const events = new EventEmitter();
  const count = new Map<string, number>();
  await sub.subscribe(`__keyspace@0__:${key}`, (event) => {
    count.set(event, (count.get(event) ?? 0) + 1);
    events.emit(event);
  });
  return {
    events,
    count,
    /** Resolves after `n` more occurrences of `event`. */
    async next(event: string, n = 1) {
      for (let i = 0; i < n; i++) await once(events, event);
    },
    stop: () => sub.unsubscribe(),
  };
}

/** A proxy of a node-redis client counting the scripts it sends (EVAL/EVALSHA), also through `withCommandOptions` views. */
function countingClient(target: Client): { client: Client; counter: EventEmitter & { evals: number } } {
  const counter = Object.assign(new EventEmitter(), { evals: 0 });
  const wrap = (t: object): object =>
    new Proxy(t, {
      get(obj, prop) {
        const value = Reflect.get(obj, prop, obj) as unknown;
        if (typeof value !== 'function') return value;
        if (prop === 'evalSha' || prop === 'eval') {
          return (...args: unknown[]) => {
            counter.evals++;
            counter.emit('eval', counter.evals);
            return (value as (...a: unknown[]) => unknown).apply(obj, args);
          };
        }
        if (prop === 'withCommandOptions') return (...args: unknown[]) => wrap((value as (...a: unknown[]) => object).apply(obj, args));
        return (value as (...a: unknown[]) => unknown).bind(obj);
      },
    });
  return { client: wrap(target) as Client, counter };
}

describe('RedisLocker on one Redis', { skip: redisSkip }, () => {
  const made: RedisLocker[] = [];
  const locker = (options: Partial<RedisLockerOptions> = {}): RedisLocker => {
    const l = new RedisLocker({ client: client!, ...options });
    made.push(l);
    return l;
  };
  after(async () => {
    await Promise.all(made.map((l) => l.close()));
  });

  test('options are validated with messages that name the option', () => {
    assert.throws(() => new RedisLocker({} as RedisLockerOptions), /`client`/);
    assert.throws(() => new RedisLocker({ client: client!, leaseMs: -1 }), /`leaseMs`.*-1/);
    assert.throws(() => new RedisLocker({ client: client!, leaseMs: 100, renewEveryMs: 100 }), /`renewEveryMs`/);
    assert.throws(() => new RedisLocker({ client: client!, pollMinMs: 100, pollMaxMs: 10 }), /`pollMaxMs`/);
    // @ts-expect-error a JS caller passing a wrong mode
    assert.throws(() => new RedisLocker({ client: client!, pubsub: 'keyspace' }), /`pubsub`/);
    // Every message names the locker, in the one format of src/util/validate.ts.
    assert.throws(
      () => new RedisLocker({ client: client!, leaseMs: 0 }),
      /^TypeError: koa-locked-session: Expected RedisLocker `leaseMs` to be a positive number of ms, got `0`$/,
    );
    assert.throws(
      () => new RedisLocker({ client: client!, maxLeaseMs: 5000, leaseMs: 5000 }),
      /Expected RedisLocker `maxLeaseMs` to be above `leaseMs` \(5000\), got `5000`/,
    );
    // @ts-expect-error a JS caller passing a number as prefix
    assert.throws(() => new RedisLocker({ client: client!, prefix: 1 }), /Expected RedisLocker `prefix` to be a string, got `1`/);
    const l = locker();
    assert.equal(l.leaseMs, 10_000);
    assert.equal(l.renewEveryMs, 3333);
    assert.equal(l.prefix, 'lock:');
    assert.equal(l.pubsub, 'plain');
    assert.equal(l.lockKey('abc'), 'lock:{abc}');
  });

  test('the lock is `SET lock:{key} <random token> NX PX <lease>`; release deletes it', async () => {
    const l = locker({ leaseMs: 5000 });
    const key = freshKey();
    const lease = await l.acquire(key, { timeoutMs: LONG });
    assert.equal(await client!.get(`lock:{${key}}`), lease.token);
    const pttl = await client!.pTTL(`lock:{${key}}`);
    assert.ok(pttl > 0 && pttl <= 5000, `PTTL ${pttl}`);
    await lease.release();
    assert.equal(await client!.exists(`lock:{${key}}`), 0);
  });

  test('renewal keeps a scope alive well past leaseMs', async () => {
    const l = locker({ leaseMs: 200, renewEveryMs: 40 });
    const key = freshKey();
    const watch = await watchKey(l.lockKey(key));
    const lease = await l.acquire(key, { timeoutMs: LONG });
    const started = performance.now();
    // Ten renewals (PEXPIRE → `expire` events) at >= 40 ms spacing: longer than the 200 ms lease.
    await watch.next('expire', 10);
    assert.ok(performance.now() - started > l.leaseMs, 'ten renewal intervals outlast the lease');
    assert.equal(watch.count.get('expired'), undefined, 'the lock never expired');
    assert.equal(lease.lost, false);
    assert.equal(await client!.get(l.lockKey(key)), lease.token);
    await assert.rejects(locker().acquire(key, { timeoutMs: 30 }), LockTimeoutError);
    await lease.release();
    await watch.stop();
  });

  test('a renewal that finds the token gone marks the lease lost (and aborts lease.signal)', async () => {
    const l = locker({ leaseMs: 1000, renewEveryMs: 20 });
    const key = freshKey();
    const lease = await l.acquire(key, { timeoutMs: LONG });
    const aborted = once(lease.signal, 'abort');
    // Someone else holds it now (the lease expired and another process took it).
    await client!.set(l.lockKey(key), 'newer-holder', { PX: 60_000 });
    await aborted;
    assert.equal(lease.lost, true);
    assert.ok(lease.signal.reason instanceof LockLostError);
    await lease.release(); // never throws, and must not delete the newer holder's lock
    assert.equal(await client!.get(l.lockKey(key)), 'newer-holder');
    await client!.del(l.lockKey(key));
  });

  test('renewal disabled: when the lease runs out in Redis, `lost` is already true by the local clock', async () => {
    const l = locker({ leaseMs: 150, renewEveryMs: 0 });
    const key = freshKey();
    const watch = await watchKey(l.lockKey(key));
    const lease = await l.acquire(key, { timeoutMs: LONG });
    const expired = watch.next('expired');
    const aborted = once(lease.signal, 'abort');
    await expired;
    assert.equal(lease.lost, true);
    await aborted;
    await lease.release();
    await watch.stop();
  });

  test('fast path: one script takes the lock and reads the record; lease.store serves it', async () => {
    const store = new RedisStore({ client: client! });
    const l = locker();
    const key = freshKey();
    await store.set(key, '{"count":7}', 60_000);
    const { client: counted, counter } = countingClient(client!);
    const countedLocker = new RedisLocker({ client: counted });
    made.push(countedLocker);
    // The fast path needs `store.client === locker.client`: give both the counted client.
    const countedStore = new RedisStore({ client: counted });
    const lease = await countedLocker.acquire(key, { timeoutMs: LONG, store: countedStore });
    assert.ok(lease.store, 'a fenced view of the RedisStore');
    const sendsAfterAcquire = counter.evals;
    assert.ok(sendsAfterAcquire <= 2, 'one EVALSHA (plus one EVAL if the script was not cached yet)');
    assert.equal(await lease.store.get(key), '{"count":7}');
    assert.equal(counter.evals, sendsAfterAcquire, 'the first read was prefetched by the acquire script');
    assert.equal(await lease.store.get(key), '{"count":7}', 'later reads go to Redis');
    await lease.store.set(key, '{"count":8}', 60_000);
    assert.equal(await store.get(key), '{"count":8}');
    await lease.release();
    // A RedisStore on another client (or any other store): no fast path, no view.
    const plain = await l.acquire(key, { timeoutMs: LONG, store: new RedisStore({ client: await otherClient() }) });
    assert.equal(plain.store, undefined);
    await plain.release();
    const memory = await l.acquire(key, { timeoutMs: LONG, store: new MemoryStore() });
    assert.equal(memory.store, undefined);
    await memory.release();
  });

  test('fencing: once the token is gone, set/destroy/touch of the leased key are refused and write nothing', async () => {
    const store = new RedisStore({ client: client! });
    const l = locker({ leaseMs: 60_000 }); // no renewal happens during the test: the holder does not know
    const key = freshKey();
    const other = freshKey();
    await store.set(key, 'v1', 60_000);
    const lease = await l.acquire(key, { timeoutMs: LONG, store });
    const view = lease.store!;
    assert.equal(await view.get(key), 'v1');
    await view.set(key, 'v2', 60_000);
    assert.equal(await store.get(key), 'v2');

    // The lease expired while the holder was paused; a newer holder took the lock and wrote.
    await client!.set(l.lockKey(key), 'newer-holder', { PX: 60_000 });
    await store.set(key, 'newer', 60_000);
    assert.equal(lease.lost, false, 'the paused holder has not noticed');

    await assert.rejects(view.set(key, 'stale', 60_000), LockLostError);
    assert.equal(lease.lost, true);
    await assert.rejects(view.destroy(key), LockLostError);
    await assert.rejects(view.touch!(key, 1), LockLostError);
    assert.equal(await store.get(key), 'newer', "the newer holder's data is intact");
    assert.ok((await client!.pTTL(store.keyFor(key))) > 1000, 'not touched');

    // Keys other than the leased one pass through to the plain store.
    await view.set(other, 'x', 60_000);
    assert.equal(await store.get(other), 'x');
    await lease.release();
    assert.equal(await client!.get(l.lockKey(key)), 'newer-holder');
    await client!.del([l.lockKey(key), store.keyFor(key), store.keyFor(other)]);
  });

  test('fast path, versioned: read gives the version; write checks token and version in one script; write+release is one more', async () => {
    const store = new RedisStore({ client: client! });
    const key = freshKey();
    await store.write(key, '{"count":1}', 1, 60_000, null);
    const { client: counted, counter } = countingClient(client!);
    const l = locker({ client: counted });
    const countedStore = new RedisStore({ client: counted });
    // Warm the script cache, so every script below is exactly one EVALSHA.
    const warm = await l.acquire(key, { timeoutMs: LONG, store: countedStore });
    await warm.store!.write(key, '{"count":1}', 1, 60_000, 'newer'); // refused (not newer): the script is cached all the same
    await warm.release();
    const before = counter.evals;

    const lease = await l.acquire(key, { timeoutMs: LONG, store: countedStore });
    const view = lease.store!;
    assert.deepEqual(await view.read(key), { value: '{"count":1}', version: 1 }, 'prefetched by the acquire script');
    assert.equal(counter.evals - before, 1, 'acquire + read: one round trip');
    // A late writer that read version 0 is refused while the lock is ours: nothing written, lease intact.
    assert.equal(await view.write(key, '{"count":99}', 1, 60_000, 0), false);
    assert.equal(lease.lost, false);
    assert.equal(await client!.get(l.lockKey(key)), lease.token, 'a refused write does not release the lock');
    const mark = counter.evals;
    lease.releaseWithNextWrite();
    assert.equal(await view.write(key, '{"count":2}', 2, 60_000, 1), true);
    assert.equal(counter.evals - mark, 1, 'write + release: one round trip');
    assert.equal(await client!.exists(l.lockKey(key)), 0, 'released by the write');
    assert.deepEqual(await store.read(key), { value: '{"count":2}', version: 2 });
    await lease.release(); // a no-op now
    assert.equal(counter.evals - mark, 1);
  });

  test('fast path, versioned: once the token is gone even a write with the right version is refused (LockLostError)', async () => {
    const store = new RedisStore({ client: client! });
    const l = locker({ leaseMs: 60_000 });
    const key = freshKey();
    await store.write(key, '{"n":1}', 1, 60_000, null);
    const lease = await l.acquire(key, { timeoutMs: LONG, store });
    assert.deepEqual(await lease.store!.read(key), { value: '{"n":1}', version: 1 });
    await client!.set(l.lockKey(key), 'newer-holder', { PX: 60_000 });
    await assert.rejects(lease.store!.write(key, '{"n":2}', 2, 60_000, 1), LockLostError);
    assert.equal(lease.lost, true);
    assert.deepEqual(await store.read(key), { value: '{"n":1}', version: 1 });
    // A destroy leaving a tombstone is fenced the same way.
    await assert.rejects(lease.store!.write(key, undefined, 2, 60_000, 1), LockLostError);
    assert.equal(await store.get(key), '{"n":1}');
    await lease.release();
    await client!.del([l.lockKey(key), store.keyFor(key)]);
  });

  test('the fast path recognises a RedisStore (subclasses too), never a look-alike with `client` and `keyFor`', async () => {
    const key = freshKey();
    const l = locker();
    class AppStore extends RedisStore {}
    const sub = await l.acquire(key, { timeoutMs: LONG, store: new AppStore({ client: client! }) });
    assert.ok(sub.store, 'a subclass keeps the fast path');
    await sub.release();
    const inner = new MemoryStore();
    const lookAlike = Object.assign(inner, { client: client!, keyFor: (k: string) => `sess:{${k}}` });
    const plain = await l.acquire(key, { timeoutMs: LONG, store: lookAlike });
    assert.equal(plain.store, undefined, 'duck typing would fuse a script over a key this store does not use');
    await plain.release();
    await inner.close();
  });

  test('waiters are woken by the release, without polling and without spinning', async () => {
    const key = freshKey();
    const holderLocker = locker({ leaseMs: 1000, renewEveryMs: 20 });
    const holder = await holderLocker.acquire(key, { timeoutMs: LONG });
    const watch = await watchKey(holderLocker.lockKey(key));

    // Two "processes" whose waiters could only ever poll after 10 minutes.
    const { client: counted, counter } = countingClient(await otherClient());
    const noPoll = { client: counted, pollMinMs: 600_000, pollMaxMs: 600_000, renewEveryMs: 0 };
    const a = locker(noPoll);
    const b = locker(noPoll);
    const N = 10;
    const order: number[] = [];
    const fourSent = new Promise<void>((resolve) => counter.on('eval', (n: number) => n === 4 && resolve()));
    const waiters = Array.from({ length: N }, (_, i) =>
      (i % 2 ? b : a).acquire(key, { timeoutMs: LONG }).then(async (lease) => {
        order.push(i);
        await lease.release();
      }),
    );
    // Each process: its first waiter tries, subscribes, tries again; the other
    // four queue in-process and send nothing.
    await fourSent;
    await waitUntil(
      async () =>
        ((await client!.pubSubNumSub(`${holderLocker.lockKey(key)}:released`))[`${holderLocker.lockKey(key)}:released`] ?? 0) >= 2,
      { what: 'both waiters subscribed' },
    );
    const before = counter.evals;
    assert.equal(before, 4);
    // While the holder renews its lease five times, the waiters send nothing.
    await watch.next('expire', 5);
    assert.equal(counter.evals, before, 'no command while the lock stays held');

    await holder.release();
    await Promise.all(waiters);
    assert.equal(order.length, N);
    // Per release at most one attempt per process, plus each waiter's own release.
    assert.ok(counter.evals <= 4 + 4 * N, `${counter.evals} scripts for ${N} waiters`);
    assert.equal(a.size + b.size, 0, 'no per-key state left behind');
    await watch.stop();
  });

  test('pub/sub off or a lost wake-up: the bounded backoff poll still hands the lock over', async () => {
    const key = freshKey();
    const holder = await locker().acquire(key, { timeoutMs: LONG });
    const polling = locker({ pubsub: false, pollMinMs: 5, pollMaxMs: 20 });
    const subscribed = locker({ pollMinMs: 5, pollMaxMs: 20 });
    const w1 = polling.acquire(key, { timeoutMs: LONG });
    const w2 = subscribed.acquire(key, { timeoutMs: LONG });
    const channel = `${subscribed.lockKey(key)}:released`;
    await waitUntil(async () => ((await client!.pubSubNumSub(channel))[channel] ?? 0) >= 1, { what: 'the waiter subscribed' });
    // Drop every subscriber connection: the release notification is lost.
    await client!.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    await holder.release();
    // Both get it in turn, whatever the order: each releases as soon as it holds it.
    await Promise.all([w1, w2].map(async (w) => (await w).release()));
  });

  test('a custom prefix and sharded pub/sub (Redis 7) on a single node', async () => {
    const key = freshKey();
    const l = locker({ prefix: 'app:lock:', pubsub: 'sharded' });
    const holder = await l.acquire(key, { timeoutMs: LONG });
    assert.equal(await client!.get(`app:lock:{${key}}`), holder.token);
    const waiter = locker({ prefix: 'app:lock:', pubsub: 'sharded', pollMinMs: 600_000, pollMaxMs: 600_000 });
    const got = waiter.acquire(key, { timeoutMs: LONG });
    const channel = `app:lock:{${key}}:released`;
    await waitUntil(async () => Number(((await client!.sendCommand(['PUBSUB', 'SHARDNUMSUB', channel])) as unknown[])[1]) >= 1, {
      what: 'the waiter subscribed (sharded)',
    });
    await holder.release();
    const lease = await got; // only the notification can do this: the poll is 10 minutes away
    await lease.release();
  });

  test('Redis unreachable: acquire fails fast with a StoreError (503) naming redis', async () => {
    const dead = createClient({ url: 'redis://127.0.0.1:1', socket: { reconnectStrategy: false } });
    dead.on('error', () => {});
    const l = new RedisLocker({ client: dead as unknown as Client });
    await assert.rejects(l.acquire(freshKey(), { timeoutMs: LONG }), (error: unknown) => {
      assert.ok(error instanceof StoreError);
      assert.equal(error.status, 503);
      assert.match(error.message, /^\[redis\]/);
      return true;
    });
    await l.close();
  });

  describe('through the session middleware', () => {
    test('200 overlapping increments on one sid end at exactly 200 (RedisStore + RedisLocker, fast path)', async () => {
      const N = 200;
      const master = new RedisStore({ client: client! });
      const app = makeApp({ master, locker: locker(), lockTimeout: LONG }, async (ctx) => {
        ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)) };
      });
      const http = app.callback();
      const first = await request(http).get('/');
      const cookie = cookieHeader(first.headers['set-cookie']);
      const rest = await Promise.all(Array.from({ length: N - 1 }, () => request(http).get('/').set('Cookie', cookie)));
      assert.ok(
        rest.every((r) => r.status === 200),
        `statuses: ${[...new Set(rest.map((r) => r.status))]}`,
      );
      assert.equal(new Set([first.body.count, ...rest.map((r) => r.body.count)]).size, N);
      assert.equal((await request(http).get('/').set('Cookie', cookie)).body.count, N + 1);
    });

    test('a locked read-modify-write of an existing session costs 2 Redis round trips (acquire+read, write+release)', async () => {
      const sent: string[] = [];
      const commands = new Set(['get', 'set', 'del', 'pExpire', 'evalSha', 'eval', 'sendCommand', 'exists']);
      // Counts every command, also those sent through `withCommandOptions` views.
      const count = <T extends object>(t: T): T =>
        new Proxy(t, {
          get(target, prop) {
            const value = Reflect.get(target, prop, target) as unknown;
            if (typeof value !== 'function') return value;
            return (...args: unknown[]) => {
              if (commands.has(String(prop))) sent.push(String(prop));
              const result = (value as (...a: unknown[]) => unknown).apply(target, args);
              return prop === 'withCommandOptions' ? count(result as object) : result;
            };
          },
        });
      const counted = count(client!);
      const master = new RedisStore({ client: counted });
      const app = makeApp({ master, locker: locker({ client: counted }), lockTimeout: LONG }, async (ctx) => {
        ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)) };
      });
      const http = app.callback();
      const cookie = cookieHeader((await request(http).get('/')).headers['set-cookie']);
      await request(http).get('/').set('Cookie', cookie); // scripts cached
      sent.length = 0;
      const res = await request(http).get('/').set('Cookie', cookie);
      assert.equal(res.body.count, 3);
      assert.deepEqual(sent, ['evalSha', 'evalSha']);
    });

    test('fenced save: a holder that lost its lock mid-scope gets 503 and writes nothing', async () => {
      const master = new RedisStore({ client: client! });
      const l = locker({ leaseMs: 60_000 }); // the holder never notices by itself
      const app = makeApp({ master, locker: l, lockTimeout: LONG }, async (ctx) => {
        ctx.body = {
          count: await ctx.session.withLock(async (s) => {
            s.count = (s.count ?? 0) + 1;
            if (ctx.path === '/paused') {
              // While "paused", the lease is taken over and the newer holder saves.
              const key = l.lockKey(ctx.session.id!);
              await client!.set(key, 'newer-holder', { PX: 60_000 });
              await master.set(ctx.session.id!, JSON.stringify({ count: 100 }), 60_000);
              await client!.del(key);
            }
            return s.count;
          }),
        };
      });
      const http = app.callback();
      const cookie = cookieHeader((await request(http).get('/')).headers['set-cookie']);
      const paused = await request(http).get('/paused').set('Cookie', cookie);
      assert.equal(paused.status, 503);
      const after = await request(http).get('/').set('Cookie', cookie);
      assert.equal(after.body.count, 101, "the newer holder's 100 survived, the stale 2 never landed");
    });

    test('unfenced master (MemoryStore): a lease that ran out mid-scope refuses the save (503)', async () => {
      const master = new MemoryStore();
      const l = locker({ leaseMs: 150, renewEveryMs: 0 });
      let watch: Awaited<ReturnType<typeof watchKey>> | undefined;
      const app = makeApp({ master, locker: l, lockTimeout: LONG }, async (ctx) => {
        ctx.body = {
          count: await ctx.session.withLock(async (s) => {
            s.count = (s.count ?? 0) + 1;
            if (ctx.path === '/slow') await watch!.next('expired'); // outlive the lease
            return s.count;
          }),
        };
      });
      const http = app.callback();
      const first = await request(http).get('/');
      const cookie = cookieHeader(first.headers['set-cookie']);
      watch = await watchKey(l.lockKey(decodeURIComponent(/sid=([^;]+)/.exec(cookie)![1]!)));
      const slow = await request(http).get('/slow').set('Cookie', cookie);
      assert.equal(slow.status, 503);
      assert.equal((await request(http).get('/').set('Cookie', cookie)).body.count, 2, 'the slow scope saved nothing');
      await watch.stop();
      await master.close();
    });
  });
});

// ---------------------------------------------------------------------------
// Redis Cluster (three masters on loopback)

lockerConformance('redis (cluster)', () => new RedisLocker({ client: clusterClient! }), { shared: true, skip: clusterSkip });

describe('RedisLocker on Redis Cluster', { skip: clusterSkip }, () => {
  const made: RedisLocker[] = [];
  after(async () => {
    await Promise.all(made.map((l) => l.close()));
  });
  const locker = (options: Partial<RedisLockerOptions> = {}): RedisLocker => {
    const l = new RedisLocker({ client: clusterClient!, ...options });
    made.push(l);
    return l;
  };

  test('defaults to sharded pub/sub; keys of many sids land on every node', async () => {
    const l = locker();
    assert.equal(l.pubsub, 'sharded');
    const nodes = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const key = freshKey();
      const lease = await l.acquire(key, { timeoutMs: LONG });
      const slot = Number(await clusterClient!.sendCommand(l.lockKey(key), true, ['CLUSTER', 'KEYSLOT', l.lockKey(key)]));
      nodes.add(clusterClient!.getSlotRandomNode(slot).address);
      await lease.release();
    }
    assert.equal(nodes.size, 3, 'the test exercised all three masters');
  });

  test('fast path and fenced save on the cluster: one slot per sid; a lost token refuses the write', async () => {
    const store = new RedisStore({ client: clusterClient! });
    const l = locker({ leaseMs: 60_000 });
    const key = freshKey();
    await store.set(key, 'v1', 60_000);
    const lease = await l.acquire(key, { timeoutMs: LONG, store });
    assert.ok(lease.store, 'fast path on the cluster');
    assert.equal(await lease.store.get(key), 'v1');
    await lease.store.set(key, 'v2', 60_000);
    assert.equal(await store.get(key), 'v2');
    await clusterClient!.set(l.lockKey(key), 'newer-holder', { PX: 60_000 });
    await assert.rejects(lease.store.set(key, 'stale', 60_000), LockLostError);
    assert.equal(await store.get(key), 'v2');
    await lease.release();
    await clusterClient!.del(l.lockKey(key));
    await store.destroy(key);
  });

  test('versioned fenced write + release in one script on the cluster; a stale version is refused', async () => {
    const store = new RedisStore({ client: clusterClient! });
    const l = locker();
    const key = freshKey();
    await store.write(key, '{"n":1}', 1, 60_000, null);
    const lease = await l.acquire(key, { timeoutMs: LONG, store, storeTimeoutMs: 2000 });
    assert.deepEqual(await lease.store!.read(key), { value: '{"n":1}', version: 1 });
    assert.equal(await lease.store!.write(key, '{"n":9}', 1, 60_000, 0), false);
    lease.releaseWithNextWrite();
    assert.equal(await lease.store!.write(key, '{"n":2}', 2, 60_000, 1), true);
    assert.equal(await clusterClient!.exists(l.lockKey(key)), 0);
    assert.deepEqual(await store.read(key), { value: '{"n":2}', version: 2 });
    await store.destroy(key);
  });

  test('waiters on the cluster are woken by a sharded release notification', async () => {
    const key = freshKey();
    const holder = await locker().acquire(key, { timeoutMs: LONG });
    const waiter = locker({ pollMinMs: 600_000, pollMaxMs: 600_000 });
    const got = waiter.acquire(key, { timeoutMs: LONG });
    const channel = `${waiter.lockKey(key)}:released`;
    const slot = Number(await clusterClient!.sendCommand(channel, true, ['CLUSTER', 'KEYSLOT', channel]));
    const node = clusterClient!.getSlotRandomNode(slot);
    const nodeClient = await createClient({ url: `redis://${node.address}` }).connect();
    await waitUntil(
      async () => {
        const reply = (await nodeClient.sendCommand(['PUBSUB', 'SHARDNUMSUB', channel])) as unknown[];
        return Number(reply[1]) >= 1;
      },
      { what: 'the waiter subscribed (sharded)' },
    );
    await nodeClient.close();
    await holder.release();
    const lease = await got; // the poll is 10 minutes away: only the notification can do this
    await lease.release();
  });

  test('a locker closed while its cluster subscriber is still discovering the slots leaves no node connection behind', async () => {
    // node-redis: a cluster client destroyed during its slot discovery creates
    // its node clients afterwards; they used to reconnect forever once the
    // cluster was stopped (the test file then never ended by itself).
    type Cluster = NonNullable<typeof clusterClient>;
    const key = freshKey();
    const holder = await locker().acquire(key, { timeoutMs: LONG });
    let subscriber: Cluster | undefined;
    let connecting: Promise<unknown> | undefined;
    let closing: Promise<void> | undefined;
    /** The node clients the subscriber's discovery created (seen when the first one connects). */
    let nodeClients: { isOpen: boolean }[] = [];
    const waiterLocker: RedisLocker = new RedisLocker({
      client: new Proxy(clusterClient!, {
        get(obj, prop) {
          const value = Reflect.get(obj, prop, obj) as unknown;
          if (typeof value !== 'function') return value;
          if (prop !== 'duplicate') return (value as (...a: unknown[]) => unknown).bind(obj);
          return (...args: unknown[]) => {
            const dup = (value as (...a: unknown[]) => Cluster).apply(obj, args);
            subscriber = dup;
            dup.on('node-connect', () => {
              if (nodeClients.length === 0) nodeClients = dup.masters.flatMap((m) => (m.client ? [m.client] : []));
            });
            const connect = dup.connect.bind(dup);
            dup.connect = () => {
              connecting = connect();
              // The locker closes right after the connect started: CLUSTER SLOTS is still in flight.
              queueMicrotask(() => (closing = waiterLocker.close()));
              return connecting as ReturnType<Cluster['connect']>;
            };
            return dup;
          };
        },
      }),
      pollMinMs: 600_000,
      pollMaxMs: 600_000,
    });
    try {
      await assert.rejects(waiterLocker.acquire(key, { timeoutMs: LONG }), { code: 'ERR_SESSION_CLOSED' });
      await closing;
      await Promise.allSettled([connecting]);
      assert.ok(subscriber, 'the waiter opened a subscriber');
      assert.equal(nodeClients.length, 3, 'the discovery created a client per master after the close (the race happened)');
      assert.deepEqual(
        nodeClients.map((c) => c.isOpen),
        [false, false, false],
        'every node client was destroyed',
      );
    } finally {
      subscriber?.destroy(); // whatever the outcome, no client of this test outlives it
      await holder.release();
    }
  });

  test('200 overlapping increments on one sid over HTTP end at exactly 200 on the cluster', async () => {
    const N = 200;
    const master = new RedisStore({ client: clusterClient! });
    const app = makeApp({ master, locker: locker(), lockTimeout: LONG }, async (ctx) => {
      ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)) };
    });
    const http = app.callback();
    const first = await request(http).get('/');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const rest = await Promise.all(Array.from({ length: N - 1 }, () => request(http).get('/').set('Cookie', cookie)));
    assert.ok(
      rest.every((r) => r.status === 200),
      `statuses: ${[...new Set(rest.map((r) => r.status))]}`,
    );
    assert.equal(new Set([first.body.count, ...rest.map((r) => r.body.count)]).size, N);
    assert.equal((await request(http).get('/').set('Cookie', cookie)).body.count, N + 1);
  });
});
