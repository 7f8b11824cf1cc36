/**
 * Issue 11, item 3: what a 503 from a save means. A client decides whether a
 * retry is safe from it, so the error must say it:
 *
 * - a save that got no answer within `storeTimeout` is a `StoreError` with
 *   `outcome: 'unknown'` (it may land later), on every store, the Redis fast
 *   path (RedisStore + RedisLocker on one client) included;
 * - a store call that never left (the client is not connected) is a
 *   `StoreError` with `outcome: 'none'`, and nothing was written;
 * - a write refused because the record changed under the lock is a
 *   `ConflictError`, and nothing was written;
 * - a lock timeout wrote nothing.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type Koa from 'koa';
import { createClient } from 'redis';
import request from 'supertest';
import {
  MemoryStore,
  RedisLocker,
  RedisStore,
  StoreError,
  type Locker,
  type RedisLockerClient,
  type SessionOptions,
} from '../src/index.js';
import { cookieHeader, deferred, makeApp, sidOf } from './helpers/app.js';
import { allServers, skipFor, stallable, storeTimeoutFor, type Kind } from './helpers/stall-backends.js';
import { skipReason, tcpProxy } from './helpers/servers.js';
import { liveValue, wrapStore } from './helpers/stall.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
    mark?: string;
  }
}

const { servers, cleanup } = await allServers();
const { redis, memcached, mongo } = servers;

/** An app incrementing `count` (and setting `mark` from the query), recording every error Koa handles. */
function counter(options: SessionOptions, hold?: { held(): void; until: Promise<void> }) {
  const errors: unknown[] = [];
  const app: Koa = makeApp(options, async (ctx) => {
    const mark = typeof ctx.query.mark === 'string' ? ctx.query.mark : undefined;
    const count = await ctx.session.withLock(async (s) => {
      s.count = (s.count ?? 0) + 1;
      if (mark) s.mark = mark;
      if (ctx.query.hold !== undefined && hold) {
        hold.held();
        await hold.until;
      }
      return s.count;
    });
    ctx.body = { count };
  });
  app.on('error', (error: unknown) => errors.push(error));
  return { server: app.callback(), errors };
}

const timeoutCases: Array<{ name: string; kind: Kind; fastPath?: boolean }> = [
  { name: 'memory', kind: 'memory' },
  { name: 'redis + MemoryLocker', kind: 'redis' },
  { name: 'redis + RedisLocker on the same client (the fast path)', kind: 'redis', fastPath: true },
  { name: 'memcached', kind: 'memcached' },
  { name: 'mongo', kind: 'mongo' },
];

describe('a save that gets no answer within storeTimeout', () => {
  for (const { name, kind, fastPath } of timeoutCases) {
    it(`${name}: answers 503 with a StoreError whose outcome is 'unknown'`, { skip: skipFor(servers, kind) }, async () => {
      const st = await stallable(servers, kind, cleanup);
      const locker: Locker | undefined = fastPath
        ? new RedisLocker({
            client: (st.store as RedisStore).client as unknown as RedisLockerClient,
            prefix: `lock-${randomUUID().slice(0, 8)}:`,
          })
        : undefined;
      const { server, errors } = counter({ master: st.store, ...(locker ? { locker } : {}), storeTimeout: storeTimeoutFor(kind) });
      const first = await request(server).get('/');
      assert.equal(first.status, 200);

      const marker = `STALL${randomUUID().replaceAll('-', '')}`;
      const stall = st.stallNextWrite(marker);
      const res = await request(server).get(`/?mark=${marker}`).set('Cookie', cookieHeader(first.headers['set-cookie']));
      await stall.caught;
      assert.equal(res.status, 503);
      const error = errors.at(-1);
      assert.ok(error instanceof StoreError, `a StoreError, got ${String(error)}`);
      assert.equal((error as StoreError & { outcome?: unknown }).outcome, 'unknown', 'the client is told the write may still land');
      stall.abandon();
      await stall.deliver();
    });
  }
});

describe('a store call that never left (client not connected)', { skip: redis ? false : skipReason('redis') }, () => {
  it("answers 503 with a StoreError whose outcome is 'none', and nothing was written", async () => {
    const proxy = await tcpProxy(Number(new URL(redis!.url).port));
    cleanup.push(() => proxy.close());
    // No offline queue and no quick reconnect: once cut, commands fail at once without being sent.
    const client = await createClient({
      url: `redis://127.0.0.1:${proxy.port}`,
      disableOfflineQueue: true,
      socket: { reconnectStrategy: () => 60_000 },
    })
      .on('error', () => {})
      .connect();
    cleanup.push(async () => client.destroy());
    const master = new RedisStore({ client, prefix: `none-${randomUUID().slice(0, 8)}:` });
    const { server, errors } = counter({ master, storeTimeout: 1000 });
    const first = await request(server).get('/');
    assert.equal(first.status, 200);
    const sid = sidOf(first);

    proxy.cut();
    await new Promise<void>((resolve) => (client.isReady ? client.once('end', resolve).once('error', () => resolve()) : resolve()));
    const res = await request(server).get('/').set('Cookie', cookieHeader(first.headers['set-cookie']));
    assert.equal(res.status, 503);
    const error = errors.at(-1);
    assert.ok(error instanceof StoreError, `a StoreError, got ${String(error)}`);
    assert.equal((error as StoreError & { outcome?: unknown }).outcome, 'none');

    const reader = await createClient({ url: redis!.url }).connect();
    cleanup.push(async () => reader.destroy());
    assert.equal(
      await liveValue(new RedisStore({ client: reader, prefix: master.prefix }), sid).then((v) => v && JSON.parse(v).count),
      1,
      'nothing was written',
    );
  });
});

describe('a save refused because the record changed under the lock', () => {
  it('answers 503 ConflictError and writes nothing: the other change stays', async () => {
    const inner = new MemoryStore();
    let sneak: string | undefined;
    // Another writer changes the record between the scope's read and its save.
    const master = wrapStore(inner, async (call, run) => {
      if (sneak && call.value?.includes(sneak)) {
        await inner.set(call.key, JSON.stringify({ count: 100 }), 60_000);
      }
      return run();
    });
    const { server, errors } = counter({ master });
    const first = await request(server).get('/');
    const sid = sidOf(first);
    sneak = `SNEAK${randomUUID().replaceAll('-', '')}`;
    const res = await request(server).get(`/?mark=${sneak}`).set('Cookie', cookieHeader(first.headers['set-cookie']));
    assert.equal(res.status, 503, 'the save is refused, not written over the other change');
    assert.equal((errors.at(-1) as { code?: unknown })?.code, 'ERR_SESSION_CONFLICT');
    assert.equal(JSON.parse((await liveValue(inner, sid))!).count, 100, 'the change made under the lock was not written');
  });
});

describe('a lock timeout', () => {
  it('answers 503 and writes nothing', async () => {
    const gate = deferred();
    const held = deferred();
    const master = new MemoryStore();
    const { server, errors } = counter({ master, lockTimeout: 100 }, { held: () => held.resolve(), until: gate.promise });
    const first = await request(server).get('/');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const sid = sidOf(first);
    const holder = request(server)
      .get('/?hold')
      .set('Cookie', cookie)
      .then((r) => r);
    await held.promise; // the lock is held
    const waiter = await request(server).get('/').set('Cookie', cookie);
    assert.equal(waiter.status, 503);
    assert.equal((errors.at(-1) as { code?: unknown })?.code, 'ERR_SESSION_LOCK_TIMEOUT');
    gate.resolve();
    assert.equal((await holder).body.count, 2);
    assert.equal(JSON.parse((await liveValue(master, sid))!).count, 2, 'only the holder incremented');
  });
});
