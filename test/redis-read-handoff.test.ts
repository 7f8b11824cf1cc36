/**
 * Issue 23 item A: a lock scope that only read a record fetched from Redis
 * (RedisLocker's fused acquire-and-read) hands that record on to the next
 * scope of the process with the lease, as it does a record it was handed or
 * wrote. The acquire script also answers the record's PTTL, so the record goes
 * on with its true expiry: a hot read-only session costs one read per lease,
 * not one per request, and a handed-on record never outlives the key in Redis.
 * Counted in round trips of the app's client (a Proxy records every command).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import Koa from 'koa';
import { createClient } from 'redis';
import request from 'supertest';
import { plainSession, plainSessionOf, session } from '../src/index.js';
import { RedisLocker } from '../src/redis/locker.js';
import { RedisStore } from '../src/redis/store.js';
import { resolveOptions } from '../src/options.js';
import { Replica } from '../src/core/replica.js';
import { SessionLock } from '../src/core/session-lock.js';
import { cookieHeader, deferred } from './helpers/app.js';
import { redisServer, skipReason } from './helpers/servers.js';

const server = await redisServer();
const client = server ? await createClient({ url: server.url }).connect() : undefined;
const lockers: RedisLocker[] = [];
after(async () => {
  await Promise.all(lockers.map((l) => l.close()));
  await client?.close();
  await server?.stop();
});

/** Round trips of the app's client, by command name, in order. */
const sent: string[] = [];
function counted<T extends object>(target: T): T {
  return new Proxy(target, {
    get(t, prop) {
      const value = Reflect.get(t, prop, t) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(t, args);
        // Views of the client (withCommandOptions) send commands too; the rest are commands.
        if (prop === 'withCommandOptions') return counted(result as object);
        sent.push(String(prop));
        return result;
      };
    },
  });
}

/** RedisStore + RedisLocker on one counted client (the fast path), handoff bounds wide enough to be no factor. */
function backend(prefix: string) {
  const redis = counted(client!);
  const locker = new RedisLocker({ client: redis });
  lockers.push(locker);
  return { master: new RedisStore({ client: redis, prefix }), locker, handoff: { maxHandoffs: 64, maxMs: 60_000 } };
}

describe('a record read from Redis goes on with the lease (RedisStore + RedisLocker)', {
  skip: server ? false : skipReason('redis'),
}, () => {
  it("lock: 'request', 50 overlapping read-only requests on one session: one lock, one record read (the acquire's), one release", async () => {
    const arrived = { n: 0, all: deferred() };
    const koa = new Koa();
    koa.keys = ['test-key-1'];
    koa.silent = true;
    // Holds every request of the burst until all 50 are in, so that they queue on the key together.
    koa.use(async (ctx, next) => {
      if (ctx.path === '/read' && ++arrived.n === 50) arrived.all.resolve();
      if (ctx.path === '/read') await arrived.all.promise;
      return next();
    });
    koa.use(session(backend('read-handoff:')));
    koa.use(plainSession({ lock: 'request' }));
    koa.use(async (ctx) => {
      const s = plainSessionOf<Record<string, unknown>>(ctx);
      if (ctx.path === '/inc') s.views = ((s.views as number | undefined) ?? 0) + 1;
      ctx.body = { views: s.views ?? null };
    });
    const http = koa.callback();
    const cookie = cookieHeader((await request(http).get('/inc')).headers['set-cookie']);
    // Every script loaded (the release's too): no NOSCRIPT fallback in the count.
    await request(http).get('/inc').set('Cookie', cookie);
    arrived.n = 49;
    await request(http).get('/read').set('Cookie', cookie);
    Object.assign(arrived, { n: 0, all: deferred() });
    sent.length = 0;
    const responses = await Promise.all(Array.from({ length: 50 }, () => request(http).get('/read').set('Cookie', cookie)));
    assert.deepEqual(
      responses.map((r) => r.body),
      Array.from({ length: 50 }, () => ({ views: 2 })),
    );
    // Before: ['evalSha', 'get' × 49, 'evalSha'] (each handed-on scope read the record again: its TTL was unknown).
    assert.deepEqual(sent, ['evalSha', 'evalSha'], 'acquire+read, then the release; the record went on with the lease');
  });

  it('a handed-on record never outlives its key in Redis: past its PTTL the next holder reads Redis (and finds it gone)', async () => {
    const { master, locker, handoff } = backend('read-expiry:');
    const options = resolveOptions({ master, locker, handoff, lockTimeout: 10_000 });
    const replica = new Replica(master, [], { onMirrorError: () => {} });
    const acquire = () => SessionLock.acquire(options, replica, 'k');

    // Within its TTL the record goes on without a read.
    await master.write('k', '{"count":1}', 1, 60_000, null);
    let holder = await acquire();
    assert.deepEqual(await holder.read(), { value: '{"count":1}', version: 1 });
    let next = acquire();
    sent.length = 0;
    await holder.release();
    let successor = await next;
    assert.equal(successor.lease, holder.lease, 'handed over');
    assert.deepEqual(await successor.read(), { value: '{"count":1}', version: 1 });
    assert.deepEqual(sent, [], 'the successor read nothing');
    await successor.release();

    // A record that expires while the lease stays in the process.
    await master.write('k', '{"count":2}', 2, 300, 'newer');
    holder = await acquire();
    assert.deepEqual(await holder.read(), { value: '{"count":2}', version: 2 });
    next = acquire();
    // Waits for Redis itself to drop the key (its own clock), not for a guessed time.
    while ((await client!.exists('read-expiry:{k}')) === 1) await sleep(20);
    sent.length = 0;
    await holder.release();
    successor = await next;
    assert.equal(successor.lease, holder.lease, 'handed over (the handoff bounds are no factor)');
    assert.equal(await successor.read(), undefined, 'expired in Redis: not served from the handed-on copy');
    assert.deepEqual(sent, ['get'], 'read from Redis');
    await successor.release();
  });
});
