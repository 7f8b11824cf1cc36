/**
 * RedisLocker's scripts when the client sends a command twice: node-redis's
 * Sentinel client (`createSentinel`) retries a command whose connection broke
 * before the reply came, on the primary it finds next (its
 * `maxCommandRediscovers`), so in a failover a script that already ran on the
 * old primary, and was replicated, runs a second time on the new one. The
 * history checker caught it (seed 13, redis-sentinel): an append answered 503
 * `ERR_SESSION_LOCK_LOST` was in the list, because the replayed fenced write
 * found the lock it had released itself and said the token was gone.
 *
 * The replay is made certain here instead of left to a failover's timing: a
 * client that delivers every script twice to a real redis-server and answers
 * with the second reply, as the Sentinel client does when the first reply is
 * lost. Every save must then be answered as what it was (written), exactly
 * once, and the lock must not wait for itself.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { createClient } from 'redis';
import request from 'supertest';
import { RedisLocker } from '../../src/redis/locker.js';
import { RedisStore } from '../../src/redis/store.js';
import { cookieHeader, makeApp } from '../helpers/app.js';
import { redisServer, skipReason } from '../helpers/servers.js';

declare module '../../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const LONG = 20_000;
const server = await redisServer();
const skip = server ? false : skipReason('redis');
const connect = (url: string) => createClient({ url }).connect();
type Client = Awaited<ReturnType<typeof connect>>;
const client = server ? await connect(server.url) : undefined;
const lockers: RedisLocker[] = [];
after(async () => {
  await Promise.all(lockers.map((l) => l.close()));
  await client?.close();
  await server?.stop();
});

/** How many scripts the replaying client delivered twice. */
let replayed = 0;

/** The fenced write script's operations (its second argument): to replay only the writes. */
const FENCED_OPS = new Set(['write', 'set', 'del', 'pexpire']);
const isFencedWrite = (args: unknown[]): boolean =>
  FENCED_OPS.has(String((args[1] as { arguments?: string[] } | undefined)?.arguments?.[1]));

/**
 * `t` with every script (EVALSHA, EVAL) for which `which` says so sent twice,
 * the first reply dropped: what a client that retries after a lost reply
 * does. Views made by `withCommandOptions` replay too.
 */
function replaying<T extends object>(t: T, which: (args: unknown[]) => boolean = () => true): T {
  return new Proxy(t, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      const call = (...args: unknown[]) => (value as (...a: unknown[]) => unknown).apply(target, args);
      if (prop === 'withCommandOptions') return (...args: unknown[]) => replaying(call(...args) as object, which);
      if (prop !== 'evalSha' && prop !== 'eval') return call;
      return async (...args: unknown[]) => {
        if (!which(args)) return call(...args);
        await call(...args); // delivered and run; its reply "lost in the failover"
        replayed++;
        return call(...args);
      };
    },
  });
}

describe('RedisLocker: a script the client sends twice (a retry after a lost reply)', { skip }, () => {
  const app = (groupCommit?: false, which?: (args: unknown[]) => boolean) => {
    const replays = replaying(client!, which);
    const locker = new RedisLocker({ client: replays });
    lockers.push(locker);
    const master = new RedisStore({ client: replays });
    return makeApp({ master, locker, lockTimeout: LONG, ...(groupCommit === false ? { groupCommit } : {}) }, async (ctx) => {
      ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)) };
    }).callback();
  };

  test('one save after another: each is answered 200 and counted once (the write that released the lock is not called lost)', async () => {
    const http = app();
    const first = await request(http).get('/');
    assert.equal(first.status, 200);
    const cookie = cookieHeader(first.headers['set-cookie']);
    const before = replayed;
    for (let n = 2; n <= 10; n++) {
      const res = await request(http).get('/').set('Cookie', cookie);
      assert.equal(res.status, 200, `save ${n}: ${JSON.stringify(res.body)} ${res.text}`);
      assert.equal(res.body.count, n);
    }
    assert.ok(replayed > before, 'the scripts were replayed');
  });

  test('only the fenced writes replayed: the write that released the lock is answered 200, not 503 ERR_SESSION_LOCK_LOST', async () => {
    const http = app(undefined, isFencedWrite);
    const cookie = cookieHeader((await request(http).get('/')).headers['set-cookie']);
    const before = replayed;
    const res = await request(http).get('/').set('Cookie', cookie);
    assert.ok(replayed > before, 'the write was replayed');
    assert.equal(res.status, 200, `${res.status} ${res.headers['x-error-code'] ?? ''} ${res.text}`);
    assert.equal(res.body.count, 2);
    assert.equal((await request(http).get('/').set('Cookie', cookie)).body.count, 3);
  });

  for (const groupCommit of [undefined, false] as const) {
    test(`20 overlapping increments of one session end at exactly 20, every one answered 200 (group commit ${groupCommit === false ? 'off' : 'on'})`, async () => {
      const N = 20;
      const http = app(groupCommit);
      const first = await request(http).get('/');
      const cookie = cookieHeader(first.headers['set-cookie']);
      const rest = await Promise.all(Array.from({ length: N - 1 }, () => request(http).get('/').set('Cookie', cookie)));
      assert.deepEqual(
        rest.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.text}`),
        [],
        'every overlapping save answered 200',
      );
      assert.equal(new Set([first.body.count, ...rest.map((r) => r.body.count)]).size, N);
      assert.equal((await request(http).get('/').set('Cookie', cookie)).body.count, N + 1);
    });
  }
});
