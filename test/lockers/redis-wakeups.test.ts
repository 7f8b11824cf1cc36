/**
 * Who wakes whom when a RedisLocker lock is released:
 * - a release nobody waits for sends no PUBLISH (counted by the server:
 *   INFO commandstats, which also counts commands run inside scripts);
 * - a waiter of another process (here: another client and locker) registers
 *   before it sleeps, so the release publishes and wakes it: with the poll 10
 *   minutes away, only that message can hand it the lock;
 * - a release gives the lock to the turn of one waiting process (locker), the
 *   first registered, and wakes only it; the releasing process cannot take it
 *   back meanwhile; a locker woken with nobody waiting passes its turn on; a
 *   turn nobody takes expires;
 * - with pub/sub off, waiters of other processes register all the same and a
 *   release leaves the lock to the first one's turn, found at its next poll
 *   (the releasing locker cannot take it back); a polling waiter that gives up
 *   leaves the list and passes on a turn it was given;
 * - a waiter of the same locker is woken by the local lease ending, even with
 *   pub/sub off;
 * - with 0.1.0 lockers on the same server (a rolling upgrade): their waiting
 *   mark still gets a message, and their message ('1') still wakes ours.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { createClient } from 'redis';
import request from 'supertest';
import { LockTimeoutError } from '../../src/errors.js';
import { RedisLocker, type RedisLockerOptions } from '../../src/redis/locker.js';
import { TURN_MS } from '../../src/redis/scripts.js';
import { RedisStore } from '../../src/redis/store.js';
import { cookieHeader, makeApp } from '../helpers/app.js';
import { redisServer, skipReason, waitUntil } from '../helpers/servers.js';

declare module '../../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const LONG = 20_000;
/** Waiters that could only ever poll after 10 minutes: whatever hands them the lock sooner is a wake-up. */
const NO_POLL = { pollMinMs: 600_000, pollMaxMs: 600_000 } as const;
let seq = 0;
const freshKey = (): string => `wk-${process.pid}-${++seq}`;

// Our own server even when REDIS_URL is set: the command counts must be ours alone.
const server = await redisServer({ useEnv: false });
const skip = server ? false : skipReason('redis');
const connect = (url: string) => createClient({ url }).connect();
type Client = Awaited<ReturnType<typeof connect>>;
const clients: Client[] = server ? [await connect(server.url), await connect(server.url)] : [];
const [one, two] = clients;
const lockers: RedisLocker[] = [];
const locker = (options: RedisLockerOptions): RedisLocker => {
  const l = new RedisLocker(options);
  lockers.push(l);
  return l;
};

after(async () => {
  await Promise.all(lockers.map((l) => l.close()));
  await Promise.all(clients.map((c) => c.close()));
  await server?.stop();
});

/** Calls per command since the last `CONFIG RESETSTAT`, from INFO commandstats (`publish`, `evalsha`, …). */
async function commandCalls(): Promise<Map<string, number>> {
  const info = await one!.info('commandstats');
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1]!, Number(match[2]));
  return calls;
}

describe('RedisLocker wake-ups', { skip }, () => {
  test('an uncontended lock → save → release sends no PUBLISH; a contended release sends one', async () => {
    const master = new RedisStore({ client: one! });
    const app = makeApp({ master, locker: locker({ client: one! }), lockTimeout: LONG }, async (ctx) => {
      ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)) };
    });
    const http = app.callback();
    const cookie = cookieHeader((await request(http).get('/')).headers['set-cookie']);
    await one!.configResetStat();
    const N = 5;
    for (let i = 0; i < N; i++) assert.equal((await request(http).get('/').set('Cookie', cookie)).status, 200);
    const calls = await commandCalls();
    assert.ok((calls.get('evalsha') ?? 0) >= 2 * N, `the requests were counted: ${JSON.stringify([...calls])}`);
    assert.equal(calls.get('publish') ?? 0, 0, 'no PUBLISH without a waiter');
    assert.equal(calls.get('spublish') ?? 0, 0);

    // The same release with a waiter of another process: exactly one PUBLISH, and the waiter gets the lock.
    const key = freshKey();
    const holder = await locker({ client: one! }).acquire(key, { timeoutMs: LONG });
    const waiterLocker = locker({ client: two!, ...NO_POLL });
    const waiting = waiterLocker.acquire(key, { timeoutMs: LONG });
    const channel = `${waiterLocker.lockKey(key)}:released`;
    await waitUntil(async () => ((await one!.pubSubNumSub(channel))[channel] ?? 0) >= 1, { what: 'the waiter subscribed' });
    await one!.configResetStat();
    await holder.release();
    const lease = await waiting;
    assert.equal((await commandCalls()).get('publish'), 1);
    await lease.release();
  });

  test('a waiter of another process registers (once per locker) before it sleeps: the release wakes it, and takes it off the list', async () => {
    const key = freshKey();
    const holderLocker = locker({ client: one! });
    const holder = await holderLocker.acquire(key, { timeoutMs: LONG });
    const waiterLocker = locker({ client: two!, ...NO_POLL });
    const N = 6;
    const got: number[] = [];
    const waiters = Array.from({ length: N }, (_, i) =>
      waiterLocker.acquire(key, { timeoutMs: LONG }).then(async (lease) => {
        got.push(i);
        await lease.release();
      }),
    );
    const list = `${holderLocker.lockKey(key)}:waiters`;
    await waitUntil(async () => (await one!.lLen(list)) === 1, { what: 'the waiter registered' });
    await holder.release();
    // The first waiter is woken by the message; the next five by the local lease ending.
    await Promise.all(waiters);
    assert.deepEqual(got, [0, 1, 2, 3, 4, 5], 'FIFO within the process');
    assert.equal(await one!.exists(list), 0, 'the release took the registration off the list');
    assert.equal(await one!.exists(`${holderLocker.lockKey(key)}:waiting`), 0, 'and the waiting mark with the lock');
    assert.equal(waiterLocker.size + waiterLocker.heldKeys, 0);
  });

  test('two processes taking turns on one key: every release that someone waits for wakes them (no poll)', async () => {
    const key = freshKey();
    const a = locker({ client: one!, ...NO_POLL });
    const b = locker({ client: two!, ...NO_POLL });
    const N = 40;
    let inside = 0;
    let count = 0;
    await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const lease = await (i % 2 ? b : a).acquire(key, { timeoutMs: LONG });
        assert.equal(++inside, 1, 'one holder at a time');
        const read = count;
        await new Promise((resolve) => setImmediate(resolve));
        count = read + 1;
        inside--;
        await lease.release();
      }),
    );
    assert.equal(count, N);
  });

  test('a release wakes one waiting process, the first registered; each release the next (one PUBLISH each, no failed attempt)', async () => {
    const key = freshKey();
    const holder = await locker({ client: one! }).acquire(key, { timeoutMs: LONG });
    const list = `${holder.lockKey}:waiters`;
    const got: string[] = [];
    const waiting: Promise<void>[] = [];
    for (const name of ['a', 'b', 'c']) {
      const l = locker({ client: two!, ...NO_POLL });
      waiting.push(
        l.acquire(key, { timeoutMs: LONG }).then(async (lease) => {
          got.push(name);
          await lease.release();
        }),
      );
      // Registered in this order (once subscribed: the run loop retries then and registers).
      await waitUntil(async () => (await one!.lLen(list)) === waiting.length, { what: `waiter ${name} registered` });
    }
    await one!.configResetStat();
    await holder.release();
    await Promise.all(waiting);
    assert.deepEqual(got, ['a', 'b', 'c'], 'woken in the order they registered');
    const calls = await commandCalls();
    assert.equal(calls.get('publish'), 3, 'one message per release someone waited for');
    assert.equal(calls.get('lrange') ?? 0, 0, 'no attempt failed (a failed one registers again): nobody was woken for nothing');
    assert.equal(await one!.exists(list), 0);
  });

  test('a locker woken after its waiter gave up passes the wake-up on to the next waiting process', async () => {
    const key = freshKey();
    const holder = await locker({ client: one! }).acquire(key, { timeoutMs: LONG });
    const list = `${holder.lockKey}:waiters`;
    const gaveUp = locker({ client: two!, ...NO_POLL });
    const timedOut = gaveUp.acquire(key, { timeoutMs: 300 });
    await waitUntil(async () => (await one!.lLen(list)) === 1, { what: 'the first waiter registered' });
    await assert.rejects(timedOut, LockTimeoutError);
    assert.equal(gaveUp.size, 0, 'nobody waits at the first locker any more');
    const next = locker({ client: two!, ...NO_POLL });
    const waiting = next.acquire(key, { timeoutMs: LONG });
    await waitUntil(async () => (await one!.lLen(list)) === 2, { what: 'the second waiter registered behind it' });
    await holder.release();
    // The message names the first locker; only its pass-on can wake the second before its poll (10 minutes).
    const lease = await waiting;
    await lease.release();
    assert.equal(await one!.exists(list), 0);
  });

  test('while the lock holds the turn of another locker, nobody else takes it (the releasing process included)', async () => {
    const key = freshKey();
    const releasing = locker({ client: one!, pollMinMs: 10, pollMaxMs: 20 });
    const holder = await releasing.acquire(key, { timeoutMs: LONG });
    await holder.release();
    // What a release leaves for the next process in line (here for longer than TURN_MS, so the refusals are certain).
    await one!.set(holder.lockKey, 'turn:a locker of another process', { PX: 60_000 });
    await assert.rejects(releasing.acquire(key, { timeoutMs: 200 }), LockTimeoutError);
    await assert.rejects(locker({ client: two!, pollMinMs: 10, pollMaxMs: 20 }).acquire(key, { timeoutMs: 200 }), LockTimeoutError);
    await one!.del(holder.lockKey);
  });

  test('a turn nobody takes (its process died) expires, and the next waiter gets the lock by its poll', async () => {
    const key = freshKey();
    const holder = await locker({ client: one! }).acquire(key, { timeoutMs: LONG });
    // What its registration left: its id on the list, and the waiting mark.
    await one!.rPush(`${holder.lockKey}:waiters`, 'a locker of a process that died');
    await one!.set(`${holder.lockKey}:waiting`, '1', { PX: 10_000 });
    await holder.release();
    assert.equal(await one!.get(holder.lockKey), 'turn:a locker of a process that died');
    // Refused while the turn lasts (TURN_MS), then taken by a poll.
    const lease = await locker({ client: two!, pollMinMs: Math.ceil(TURN_MS / 10), pollMaxMs: TURN_MS }).acquire(key, { timeoutMs: LONG });
    await lease.release();
  });

  test("rolling upgrade: a 0.1.0 waiting mark gets its message and goes with the lock; a 0.1.0 message ('1') wakes our waiters", async () => {
    const key = freshKey();
    const holderLocker = locker({ client: one! });
    const holder = await holderLocker.acquire(key, { timeoutMs: LONG });
    const mark = `${holder.lockKey}:waiting`;
    const channel = `${holder.lockKey}:released`;
    await one!.set(mark, '1', { PX: 10_000 }); // what a 0.1.0 waiter sets
    await one!.configResetStat();
    await holder.release();
    assert.equal((await commandCalls()).get('publish'), 1, 'the 0.1.0 waiter is woken');
    assert.equal(await one!.exists(mark), 0);

    // A 0.1.0 holder releases with DEL + PUBLISH '1' (it knows nothing of the list).
    await one!.set(holder.lockKey, 'a 0.1.0 token', { PX: 10_000 });
    const waiter = locker({ client: two!, ...NO_POLL });
    const waiting = waiter.acquire(key, { timeoutMs: LONG });
    await waitUntil(async () => (await one!.lLen(`${holder.lockKey}:waiters`)) === 1, { what: 'our waiter registered' });
    await one!.del([holder.lockKey, mark]);
    await one!.publish(channel, '1');
    const lease = await waiting;
    await lease.release();
  });

  test('pub/sub off: a waiter of another process registers, and a release leaves the lock to its turn: the releasing locker cannot take it back', async () => {
    const key = freshKey();
    const polling = { pubsub: false, pollMinMs: 200, pollMaxMs: 400 } as const;
    const releasing = locker({ client: one!, ...polling });
    const holder = await releasing.acquire(key, { timeoutMs: LONG });
    const list = `${holder.lockKey}:waiters`;
    const order: string[] = [];
    const other = locker({ client: two!, ...polling })
      .acquire(key, { timeoutMs: LONG })
      .then((lease) => {
        order.push('other');
        return lease;
      });
    await waitUntil(async () => (await one!.lLen(list)) === 1, { what: 'the polling waiter registered', timeoutMs: 5000 });
    await holder.release();
    // The releasing process asks again at once; the other one only polls (every 200 ms).
    const again = releasing.acquire(key, { timeoutMs: LONG }).then((lease) => {
      order.push('releasing');
      return lease;
    });
    await (await other).release();
    await (await again).release();
    assert.deepEqual(order, ['other', 'releasing'], 'the first in line got the lock, not the process that released it');
    assert.equal(await one!.exists(list), 0);
  });

  test('pub/sub off: a polling waiter that gives up leaves the list and passes on a turn it was given', async () => {
    const key = freshKey();
    const holder = await locker({ client: one!, pubsub: false }).acquire(key, { timeoutMs: LONG });
    const list = `${holder.lockKey}:waiters`;
    // Its turn would last 2 × pollMaxMs (20 minutes) and it polls only every 10: only its pass-on hands the lock on.
    const gaveUp = locker({ client: two!, pubsub: false, ...NO_POLL });
    const timedOut = gaveUp.acquire(key, { timeoutMs: 1000 });
    await waitUntil(async () => (await one!.lLen(list)) === 1, { what: 'the first waiter registered' });
    const next = locker({ client: two!, pubsub: false, pollMinMs: 20, pollMaxMs: 20 });
    const waiting = next.acquire(key, { timeoutMs: LONG });
    await waitUntil(async () => (await one!.lLen(list)) === 2, { what: 'the second waiter registered behind it' });
    await holder.release();
    assert.match((await one!.get(holder.lockKey)) ?? '', /^turn:.+\/1200000$/, 'the lock waits for the first in line');
    await assert.rejects(timedOut, LockTimeoutError);
    const lease = await waiting;
    await lease.release();
    assert.equal(await one!.exists(list), 0, 'nobody left on the list');
    assert.equal(gaveUp.size + next.size + next.heldKeys, 0);
  });

  test('pub/sub off: waiters of the same locker are still handed the lock by the local release, not the poll', async () => {
    const key = freshKey();
    const l = locker({ client: one!, pubsub: false, ...NO_POLL });
    const holder = await l.acquire(key, { timeoutMs: LONG });
    const N = 10;
    const order: number[] = [];
    const waiters = Array.from({ length: N }, (_, i) =>
      l.acquire(key, { timeoutMs: LONG }).then(async (lease) => {
        order.push(i);
        await lease.release();
      }),
    );
    await holder.release();
    await Promise.all(waiters);
    assert.deepEqual(
      order,
      Array.from({ length: N }, (_, i) => i),
    );
    assert.equal(l.size + l.heldKeys, 0);
  });
});
