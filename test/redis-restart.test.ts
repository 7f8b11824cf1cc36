/**
 * Redis goes away while scopes are in flight (RedisStore + RedisLocker on one
 * client): the in-flight scopes answer 503, later requests succeed once Redis is
 * back, and nothing is applied twice or half-applied.
 *
 * Needs servers we start ourselves (restart by PID); an external `REDIS_URL`
 * skips these tests.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, test } from 'node:test';
import { createClient } from 'redis';
import request from 'supertest';
import { LockLostError, StoreError } from '../src/errors.js';
import { RedisLocker } from '../src/redis/locker.js';
import { RedisStore } from '../src/redis/store.js';
import { cookieHeader, deferred, makeApp } from './helpers/app.js';
import { redisServer, skipReason, type StartedServer, type TestServer } from './helpers/servers.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const persistent = await redisServer({ useEnv: false, extraArgs: ['--appendonly', 'yes', '--appendfsync', 'always'] });
const volatile = await redisServer({ useEnv: false });
const skip = persistent && volatile ? false : skipReason('redis');
const started = (s: TestServer | undefined): StartedServer => s as StartedServer;

after(async () => {
  await Promise.all([persistent?.stop(), volatile?.stop()]);
});

/** An app on `server` with a route that holds its scope open until the test lets go. */
async function setup(server: StartedServer) {
  const client = createClient({ url: server.url, socket: { reconnectStrategy: () => 20 } });
  client.on('error', () => {}); // it reconnects by itself; requests report failures
  await client.connect();
  const locker = new RedisLocker({ client, leaseMs: 3000 });
  const holds: Array<{ holding: Promise<void>; entered(): void; finish(): void; finished: Promise<void> }> = [];
  const app = makeApp({ master: new RedisStore({ client }), locker, lockTimeout: 20_000 }, async (ctx) => {
    if (ctx.path === '/hold') {
      const hold = holds[Number(ctx.query.i)]!;
      ctx.body = {
        count: await ctx.session.withLock(async (s) => {
          s.count = (s.count ?? 0) + 1;
          hold.entered();
          await hold.finished;
          return s.count;
        }),
      };
      return;
    }
    ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)) };
  });
  /** The errors the in-flight requests answered with (Koa's `error` event). */
  const errors: unknown[] = [];
  app.on('error', (error: unknown) => errors.push(error));
  const http = app.callback();
  /** `n` sessions at count 1, each with one request holding its scope open. */
  const holdOpen = async (n: number) => {
    const sessions = await Promise.all(
      Array.from({ length: n }, async () => cookieHeader((await request(http).get('/')).headers['set-cookie'])),
    );
    const inFlight = sessions.map((cookie, i) => {
      const entered = deferred();
      const finished = deferred();
      holds[i] = {
        holding: entered.promise,
        entered: () => entered.resolve(),
        finish: () => finished.resolve(),
        finished: finished.promise,
      };
      return request(http)
        .get(`/hold?i=${i}`)
        .set('Cookie', cookie)
        .then((r) => r);
    });
    await Promise.all(holds.map((h) => h.holding));
    return { sessions, inFlight, finishAll: () => holds.forEach((h) => h.finish()) };
  };
  const whenReady = async () => {
    if (!client.isReady) await once(client, 'ready');
  };
  const whenDown = async () => {
    if (client.isReady) await once(client, 'reconnecting');
  };
  const close = async () => {
    await locker.close();
    await client.close().catch(() => client.destroy());
  };
  return { http, client, errors, holdOpen, whenReady, whenDown, close };
}

describe('Redis goes away during a run', { skip }, () => {
  test('Redis down while scopes are in flight (AOF on): they answer 503; later ones succeed; nothing applied twice', async () => {
    const server = started(persistent);
    const app = await setup(server);
    try {
      const { sessions, inFlight, finishAll } = await app.holdOpen(5);
      await server.halt();
      await app.whenDown();
      finishAll(); // every in-flight scope now tries to save while Redis is down
      const failed = await Promise.all(inFlight);
      assert.deepEqual(
        failed.map((r) => r.status),
        [503, 503, 503, 503, 503],
      );
      // `every` is true on an empty list: the count shows each failed save was reported.
      assert.equal(app.errors.length, 5, app.errors.map(String).join('\n'));
      assert.ok(
        app.errors.every((e) => e instanceof StoreError),
        'the save failed on the unreachable store',
      );
      await server.resume();
      await app.whenReady();
      for (const cookie of sessions) {
        // The data survived (AOF); the in-flight increments did not land; each later one lands once.
        const counts = [];
        for (let i = 0; i < 3; i++) {
          const res = await request(app.http).get('/').set('Cookie', cookie);
          assert.equal(res.status, 200);
          counts.push(res.body.count);
        }
        assert.deepEqual(counts, [2, 3, 4]);
      }
    } finally {
      await app.close();
    }
  });

  test('Redis restarted with its data lost while scopes hold leases: their saves are refused (fenced); later requests start fresh', async () => {
    const server = started(volatile);
    const app = await setup(server);
    try {
      const { sessions, inFlight, finishAll } = await app.holdOpen(5);
      await server.restart(); // locks and records are gone
      await app.whenReady();
      finishAll(); // Redis is up again, but the tokens are gone: the fenced writes refuse
      const refused = await Promise.all(inFlight);
      assert.deepEqual(
        refused.map((r) => r.status),
        [503, 503, 503, 503, 503],
      );
      assert.equal(app.errors.length, 5);
      assert.ok(
        app.errors.every((e) => e instanceof LockLostError),
        'the fenced write found its token gone',
      );
      for (const cookie of sessions) {
        // The record is gone: a fresh session (new sid), never a resurrected or half-applied one.
        const first = await request(app.http).get('/').set('Cookie', cookie);
        assert.equal(first.status, 200);
        assert.equal(first.body.count, 1);
        const fresh = cookieHeader(first.headers['set-cookie']);
        assert.notEqual(fresh, cookie);
        assert.equal((await request(app.http).get('/').set('Cookie', fresh)).body.count, 2);
      }
    } finally {
      await app.close();
    }
  });
});
