/**
 * Group commit under attack: the paths where a batch of handed-over, unsaved
 * changes could be orphaned (a member waiting forever), acknowledged before
 * its write, or written over a record that moved on. Each burst is
 * deterministic (see test/helpers/group-burst.ts): request 0 holds the lock
 * until the others queued behind it in this process, in the order sent.
 *
 * The promises checked (README "Hot sessions", docs/architecture.md):
 * - a request is answered 200 only after the master write that holds its
 *   change was acknowledged; if that write fails every scope of the batch fails;
 * - every batch is settled: by the next write of the key, or by the flush when
 *   the lease leaves the process or its holder wrote nothing;
 * - a batch's write is conditional on the version the batch stands on, and
 *   fenced by the lease: a lease lost mid-batch fails the batch.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it, mock } from 'node:test';
import request from 'supertest';
import pg from 'pg';
import { createClient } from 'redis';
import {
  MemoryLocker,
  MemoryStore,
  PostgresLocker,
  PostgresStore,
  RedisLocker,
  RedisStore,
  type SessionOptions,
  type Store,
  type WriteCondition,
} from '../src/index.js';
import { destroyListed } from '../src/auth/index-upkeep.js';
import { resolveOptions } from '../src/options.js';
import { RecordFormat } from '../src/core/record.js';
import { Replica } from '../src/core/replica.js';
import { SessionLock } from '../src/core/session-lock.js';
import { deferred, makeApp } from './helpers/app.js';
import { CookieJar, setCookies } from './helpers/cookies.js';
import { burstApp, results, WriteCountingStore } from './helpers/group-burst.js';
import { freshDatabase, postgresServer } from './helpers/postgres-server.js';
import { redisServer, skipReason, tcpProxy } from './helpers/servers.js';

/** A mirror whose writes can be awaited (background mirror writes finish after the response). */
class AwaitableMirror extends MemoryStore {
  readonly calls: Array<Promise<unknown>> = [];
  override write(key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition): Promise<boolean> {
    const call = super.write(key, value, version, ttlMs, condition);
    this.calls.push(call);
    return call;
  }
}

const inc = (s: { count?: number }): number => (s.count = (s.count ?? 0) + 1);
/** One Redis server for the file (started on load; under CI a missing one fails the run). */
const redisReady = redisServer();
after(async () => (await redisReady)?.stop());
/** Handoff and group-commit bounds no test here reaches: a write count must not depend on the machine's speed (nor a waiter's give-up end the batch by its age). */
const unbounded = { handoff: { maxMs: 600_000 }, groupCommit: { maxMs: 600_000 } } as const;

describe('group commit: no member of a batch is orphaned', { timeout: 60_000 }, () => {
  it('a waiter behind the batch times out in the local queue: the batch goes on to the next waiter and is written once', async () => {
    const master = new WriteCountingStore();
    const locker = new MemoryLocker();
    const timedOut = deferred<number>();
    // Bounds far off: request 1 holds the batch for as long as the other app's waiter takes to give up.
    const a = burstApp({ master, locker, lockTimeout: 60_000, ...unbounded }, (ctx, i, hold) =>
      ctx.session.withLock(async (s) => {
        await hold();
        if (i === 1) await timedOut.promise; // holds the batch of request 0 until the waiter behind it gave up
        return inc(s);
      }),
    );
    // Another app on the same master and locker shares this process' queue of the session; its waiter gives up fast.
    const queuedB = deferred();
    const b = makeApp({ master, locker, lockTimeout: 50 }, async (ctx) => {
      const result = ctx.session.withLock((s) => inc(s));
      queuedB.resolve();
      ctx.body = { result: await result };
    });
    const { cookie } = await a.setup();
    const before = master.writes;
    let fromB: Promise<request.Response> | undefined;
    const responses = await a.burst(cookie, 3, async (i) => {
      if (i !== 1) return;
      fromB = request(b.callback())
        .get('/')
        .set('Cookie', cookie)
        .then((r) => r);
      await queuedB.promise;
      void fromB.then((r) => timedOut.resolve(r.status));
    });
    assert.equal(await timedOut.promise, 503, 'the waiter of the other app timed out');
    assert.deepEqual(results(responses), [1, 2, 3]);
    assert.equal(master.writes - before, 1, 'requests 0 and 1 rode on the write of request 2');
    assert.equal(await a.count(cookie), 3);
  });

  it('the only waiter times out while the holder stands on a batch: the holder writes the batch itself', async () => {
    const master = new WriteCountingStore();
    const locker = new MemoryLocker();
    const timedOut = deferred<number>();
    const a = burstApp({ master, locker, lockTimeout: 60_000, ...unbounded }, (ctx, i, hold) =>
      ctx.session.withLock(async (s) => {
        await hold();
        if (i === 1) await timedOut.promise;
        return inc(s);
      }),
    );
    const queuedB = deferred();
    const b = makeApp({ master, locker, lockTimeout: 50 }, async (ctx) => {
      const result = ctx.session.withLock((s) => inc(s));
      queuedB.resolve();
      ctx.body = { result: await result };
    });
    const { cookie } = await a.setup();
    const before = master.writes;
    const responses = await a.burst(cookie, 2, async (i) => {
      if (i !== 1) return;
      void request(b.callback())
        .get('/')
        .set('Cookie', cookie)
        .then((r) => timedOut.resolve(r.status));
      await queuedB.promise;
    });
    assert.equal(await timedOut.promise, 503);
    assert.deepEqual(results(responses), [1, 2]);
    assert.equal(master.writes - before, 1);
    assert.equal(await a.count(cookie), 2);
  });

  it('parallel withLock calls of the request standing on the batch: the first to leave writes the batch, a throw undoes only its own keys', async () => {
    const master = new WriteCountingStore();
    const a = burstApp({ master, ...unbounded }, async (ctx, i, hold) => {
      if (i !== 2) return ctx.session.withLock(async (s) => (await hold(), inc(s)));
      // Three callers of one request share one scope (opened on the batch of requests 0 and 1).
      const first = ctx.session.withLock((s) => inc(s));
      const thrower = ctx.session.withLock(async (s) => {
        await first;
        (s as Record<string, unknown>).note = 'never saved'; // undone by its throw
        throw new Error('boom');
      });
      const last = ctx.session.withLock(async (s) => {
        await thrower.catch(() => {});
        return inc(s);
      });
      return Promise.all([first, thrower.catch((e: Error) => e.message), last]);
    });
    const { cookie, sid } = await a.setup();
    const before = master.writes;
    const responses = await a.burst(cookie, 4);
    assert.deepEqual(results(responses), [1, 2, [3, 'boom', 4], 5]);
    // The first caller's save (the scope goes on) carries requests 0 and 1; the scope's last one is carried by request 3.
    assert.equal(master.writes - before, 2);
    assert.equal(await a.count(cookie), 5);
    assert.doesNotMatch((await master.read(sid))!.value!, /never saved/);
  });

  it('lock() scopes: disposed with `await using`, forgotten in a request that succeeds (saved), forgotten in one that fails (discarded, the batch is still written)', async () => {
    const master = new WriteCountingStore();
    const a = burstApp({ master, ...unbounded }, async (ctx, i, hold) => {
      if (i === 0) return ctx.session.withLock(async (s) => (await hold(), inc(s)));
      if (i === 1) {
        await using s = await ctx.session.lock();
        return inc(s);
      }
      const s = await ctx.session.lock(); // never disposed: ended with the request
      const seen = inc(s);
      if (i === 3) throw new Error('the request fails after changing the session');
      return seen;
    });
    const { cookie } = await a.setup();
    const before = master.writes;
    const responses = await a.burst(cookie, 4);
    assert.deepEqual(results(responses), [1, 2, 3, 500]);
    assert.equal(master.writes - before, 1, 'the failed request wrote the batch it stood on (without its change) when its lock was ended');
    assert.equal(await a.count(cookie), 3);
  });

  it('the absoluteTtl passes while a batch is handed over: no member is acknowledged, the record is gone, later scopes start a fresh session', async () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    try {
      const master = new WriteCountingStore();
      const a = burstApp({ master, absoluteTtl: 10_000, ttl: 60_000 }, async (ctx, _i, hold) => {
        const count = await ctx.session.withLock(async (s) => (await hold(), inc(s)));
        return { count, id: ctx.session.id };
      });
      const { cookie, sid } = await a.setup();
      const responses = await a.burst(cookie, 4, (i) => {
        if (i === 3) mock.timers.tick(11_000); // everyone queued: the session is now past its absolute timeout
      });
      // The master record expired with the session (its TTL is capped by the absolute timeout), so the
      // write carrying request 0's change is refused: 0 and the scope that stood on its batch (1, whose
      // delete of the expired session carried it) fail, retryably; whoever comes next finds the session
      // gone and starts a fresh one. Without group commit 0 fails the same way and 1 starts afresh.
      assert.notEqual(responses[0]!.status, 200, 'a change that could not be stored is not acknowledged');
      for (const r of responses) assert.ok([200, 503].includes(r.status), `answered ${r.status}`);
      for (const r of responses.filter((x) => x.status === 200)) {
        assert.equal(r.body.result.count, 1, 'a fresh session');
        assert.notEqual(r.body.result.id, sid);
      }
      assert.equal(responses[3]!.status, 200);
      assert.equal((await master.read(sid))?.value, undefined, 'the old record is gone');
    } finally {
      mock.timers.reset();
    }
  });
});

describe('group commit: how long a member waits', { timeout: 20_000 }, () => {
  // A member is answered once the write carrying its change is acknowledged. Its successor may run
  // long (a slow call under the lock) or never end: the batch is then written under it once it is
  // groupCommit.maxMs old, and the successor goes on from the record written (one version on).
  it('a member is answered while its successor is still in a long scope; the successor then saves on top', async () => {
    const master = new WriteCountingStore();
    const answered = deferred();
    let inScope = false;
    const a = burstApp({ master, groupCommit: { maxMs: 5 } }, async (ctx, i, hold) => {
      const seen = await ctx.session.withLock(async (s) => {
        await hold();
        if (i === 1) {
          inScope = true;
          await answered.promise; // until request 0 got its answer
          inScope = false;
        }
        return inc(s);
      });
      if (i === 0) answered.resolve();
      return { seen, successorInScope: i === 0 ? inScope : undefined };
    });
    const { cookie, sid } = await a.setup();
    const before = master.writes;
    const responses = await a.burst(cookie, 2);
    assert.deepEqual(
      responses.map((r) => r.body.result.seen),
      [1, 2],
    );
    assert.equal(responses[0]!.body.result.successorInScope, true, 'request 0 was answered before its successor left its scope');
    assert.equal(master.writes - before, 2, 'the batch under the successor, then the successor');
    assert.equal((await master.read(sid))?.version, 3);
    assert.equal(await a.count(cookie), 2);
  });

  it("the same on RedisStore + RedisLocker (fenced writes; the holder's last write also releases the lease)", async (t) => {
    const redis = await redisReady;
    if (!redis) return t.skip(skipReason('redis'));
    const client = await createClient({ url: redis.url }).connect();
    const locker = new RedisLocker({ client, prefix: `lock-gcf-${randomUUID().slice(0, 8)}:` });
    t.after(async () => {
      await locker.close();
      await client.quit();
    });
    const master = new RedisStore({ client, prefix: `gcf-${randomUUID().slice(0, 8)}:` });
    const answered = deferred();
    let inScope = false;
    const a = burstApp({ master, locker, groupCommit: { maxMs: 5 } }, async (ctx, i, hold) => {
      const seen = await ctx.session.withLock(async (s) => {
        await hold();
        if (i === 1) {
          inScope = true;
          await answered.promise;
          inScope = false;
        }
        return inc(s);
      });
      if (i === 0) answered.resolve();
      return { seen, successorInScope: i === 0 ? inScope : undefined };
    });
    const { cookie, sid } = await a.setup();
    const responses = await a.burst(cookie, 2);
    assert.deepEqual(
      responses.map((r) => r.body.result.seen),
      [1, 2],
    );
    assert.equal(responses[0]!.body.result.successorInScope, true);
    assert.equal((await master.read(sid))?.version, 3, 'setup, the batch under the successor, the successor');
    assert.equal(locker.size, 0, "the lease went back (with the successor's write)");
  });

  it('the batch written under a holder fails: its members fail, and so does the holder that built on it (also read-only)', async () => {
    const master = new WriteCountingStore();
    const answered = deferred();
    const a = burstApp({ master, groupCommit: { maxMs: 5 } }, async (ctx, i, hold) => {
      const seen = await ctx.session
        .withLock(async (s) => {
          await hold();
          if (i === 0) master.failWrites = true;
          if (i === 1) {
            await answered.promise; // request 0 got its answer: the write under this scope failed
            master.failWrites = false;
            return s.count; // read-only: what it read was never saved
          }
          return inc(s);
        })
        .finally(() => i === 0 && answered.resolve());
      return seen;
    });
    const { cookie } = await a.setup();
    const responses = await a.burst(cookie, 2);
    assert.deepEqual(
      responses.map((r) => r.status),
      [503, 503],
    );
    assert.equal(await a.count(cookie), 0);
  });

  it('a successor that never ends: the members before it are answered all the same', async () => {
    const master = new WriteCountingStore();
    const never = deferred();
    const a = burstApp({ master, groupCommit: { maxMs: 5 }, lockTimeout: 60_000 }, async (ctx, i, hold) => {
      const seen = ctx.session.withLock(async (s) => {
        await hold();
        const n = inc(s);
        if (i === 2) await never.promise;
        return n;
      });
      if (i === 2) return 'stuck'; // answered without waiting for its scope (which ends when the test ends)
      return seen;
    });
    const { cookie } = await a.setup();
    const responses = await a.burst(cookie, 3);
    assert.deepEqual(results(responses), [1, 2, 'stuck']);
    assert.equal(await a.count(cookie), 2, 'the batch of 0 and 1 is saved');
    never.resolve();
  });
});

describe('group commit: a lock taken outside a request (revokeAll, the maxSessionsPerUser cap) receives a batch', {
  timeout: 60_000,
}, () => {
  /** The internal acquirer revokeAll and the cap use, queued in the same process queue as the app's scopes. */
  function internal(options: SessionOptions) {
    const resolved = resolveOptions(options);
    const replica = new Replica(resolved.master as Store, [], { onMirrorError: () => {} }); // (a MemoryStore, not a request-bound one)
    const host = {
      options: resolved,
      format: new RecordFormat(resolved),
      replica,
      index: undefined as never,
      key: (sid: string) => resolved.prefix + sid,
    };
    return { host, acquire: (sid: string) => SessionLock.acquire(resolved, replica, host.key(sid)) };
  }
  const loginSetup = async (ctx: import('koa').Context) => {
    await ctx.session.login({ id: 'u1', name: 'someone' }); // (the user type other test files declare)
    return ctx.session.withLock((s) => (s.count = 0));
  };

  for (const [uid, destroys] of [
    ['u1', true],
    ['u2', false],
  ] as const) {
    it(`destroyListed for ${destroys ? "the session's user: deletes it with the write that acknowledges the batch" : 'another user: releases without a change of its own, and the batch is flushed'}`, async () => {
      const master = new WriteCountingStore();
      const locker = new MemoryLocker();
      const options = { master, locker };
      const a = burstApp(options, (ctx, _i, hold) => ctx.session.withLock(async (s) => (await hold(), inc(s))), loginSetup);
      const { cookie, sid } = await a.setup();
      const { host, acquire } = internal(options);
      let revoked: Promise<boolean> | undefined;
      const responses = await a.burst(cookie, 3, (i) => {
        if (i === 2) revoked = acquire(sid).then((lock) => destroyListed(host, lock, uid)); // queued last, behind 1 and 2
      });
      assert.deepEqual(results(responses), [1, 2, 3], 'the batch was acknowledged');
      assert.equal(await revoked, destroys);
      const record = await master.read(sid);
      if (destroys) assert.equal(record?.value, undefined, 'destroyed after the batch');
      else assert.equal(await a.count(cookie), 3, 'the batch was written by the release of the revoke lock');
      assert.equal(locker.size, 0, 'no lock left behind');
    });
  }
});

describe('group commit with mirrors', { timeout: 60_000 }, () => {
  for (const mirrorWrites of ['await', 'background'] as const) {
    it(`mirrorWrites: '${mirrorWrites}': the mirror gets the batch's record; a failed batch reaches no mirror`, async () => {
      const master = new WriteCountingStore();
      const mirror = new AwaitableMirror();
      const a = burstApp({ master, mirrors: [mirror], mirrorWrites }, (ctx, _i, hold) =>
        ctx.session.withLock(async (s) => (await hold(), inc(s))),
      );
      const { cookie, sid } = await a.setup();
      const ok = await a.burst(cookie, 5);
      assert.deepEqual(results(ok), [1, 2, 3, 4, 5]);
      await Promise.all(mirror.calls);
      assert.deepEqual(await mirror.read(sid), await master.read(sid), 'the mirror holds what the master holds');
      const callsBefore = mirror.calls.length;
      master.failWrites = true;
      const failed = await a.burst(cookie, 4);
      master.failWrites = false;
      assert.deepEqual(
        failed.map((r) => r.status),
        [503, 503, 503, 503],
      );
      assert.equal(mirror.calls.length, callsBefore, 'no mirror write for a batch the master refused');
      assert.equal(await a.count(cookie), 5);
    });
  }
});

describe("group commit with RedisLocker: a lease lost while the batch's write is stalled", { timeout: 120_000 }, () => {
  for (const fenced of [true, false]) {
    it(`${fenced ? 'fenced (store and locker on one client)' : 'version-checked only (locker on its own client)'}: the stalled write lands after another process took the lock and wrote: refused, no member answered 200, every 200 counted exactly once`, async (t) => {
      const redis = await redisReady;
      if (!redis) return t.skip(skipReason('redis'));
      const prefix = `gcf-${randomUUID().slice(0, 8)}:`;
      const lockPrefix = `lock-${prefix}`;
      // Process 1 talks to Redis through a proxy that can stall its traffic; process 2 directly.
      const proxy = await tcpProxy(Number(new URL(redis.url).port));
      const client1 = await createClient({ url: `redis://127.0.0.1:${proxy.port}` }).connect();
      const client2 = await createClient({ url: redis.url }).connect();
      // Fenced: the lease guards the store's writes (one script checks token and version). Else only the version does.
      const lockClient1 = fenced ? client1 : await createClient({ url: redis.url }).connect();
      // No renewal: the lease simply expires leaseMs after its acquire. Timeouts far off: the stalled write
      // waits for the proxy, not for a timer, so it lands exactly when the test lets it.
      const locker1 = new RedisLocker({
        client: lockClient1,
        prefix: lockPrefix,
        leaseMs: 1500,
        renewEveryMs: 0,
        commandTimeoutMs: 120_000,
      });
      const locker2 = new RedisLocker({ client: client2, prefix: lockPrefix, leaseMs: 1500, renewEveryMs: 0, commandTimeoutMs: 120_000 });
      t.after(async () => {
        proxy.pass();
        await locker1.close();
        await locker2.close();
        await client2.quit().catch(() => {});
        await client1.quit().catch(() => {});
        if (lockClient1 !== client1) await lockClient1.quit().catch(() => {});
        await proxy.close();
      });
      const common = { storeTimeout: 120_000, lockTimeout: 120_000 };
      const n = 8;
      const stalled = deferred();
      const app1 = burstApp(
        { ...common, master: new RedisStore({ client: client1, prefix, timeoutMs: 120_000 }), locker: locker1 },
        (ctx, i, hold) =>
          ctx.session.withLock(async (s) => {
            await hold();
            const seen = inc(s);
            if (i === n - 1) {
              proxy.blackhole(); // the write that carries the batch (this scope's last act) now hangs in the network
              stalled.resolve();
            }
            return seen;
          }),
      );
      const app2 = makeApp(
        { ...common, master: new RedisStore({ client: client2, prefix, timeoutMs: 120_000 }), locker: locker2 },
        async (ctx) => {
          ctx.body = { result: await ctx.session.withLock((s) => inc(s)) };
        },
      );
      const { cookie } = await app1.setup();

      const burst = app1.burst(cookie, n);
      await stalled.promise;
      // Process 2 gets the lock once process 1's lease expired (nobody renews it), reads the record and writes.
      const other = await request(app2.callback()).get('/').set('Cookie', cookie);
      assert.equal(other.status, 200);
      proxy.pass(); // the stalled write reaches Redis now, under a lock that is no longer its lease's
      const responses = await burst;
      const after = await request(app1.http)
        .get('/?i=0')
        .set('Cookie', cookie)
        .then((r) => r);

      assert.notEqual(responses[n - 1]!.status, 200, 'the stalled carrier failed');
      const acknowledged = [...responses, other, after].filter((r) => r.status === 200).map((r) => r.body.result as number);
      for (const r of [...responses, other, after]) assert.ok([200, 503].includes(r.status), `answered ${r.status}: ${r.text}`);
      assert.deepEqual(
        [...acknowledged].sort((x, y) => x - y),
        acknowledged.map((_, k) => k + 1),
        'every 200 saw its own count, 1..n with no gap',
      );
      assert.equal(await app1.count(cookie), acknowledged.length, 'the final count is exactly the number of 200s');
    });
  }
});

describe('group commit: a carrier that moves or ends the session', { timeout: 60_000 }, () => {
  // The batch's members are answered only once the carrier's write is acknowledged, and that write is
  // the old sid's tombstone (regenerate, login) or delete (destroy, logout): their responses go out
  // with or after the carrier's. A member re-sending the old sid's cookie (the default persistent
  // cookie is re-sent on every save) would undo the carrier's cookie in a browser that gets the
  // member's response last: the browser holds a moved sid (409, then an anonymous fresh session)
  // or keeps the cookie of a session that was logged out.
  const cases = {
    regenerate: async (ctx: import('koa').Context) => ctx.session.regenerate(),
    login: async (ctx: import('koa').Context) => ctx.session.login({ id: 'u1', name: 'someone' }, { keepData: true }),
    destroy: async (ctx: import('koa').Context) => ctx.session.destroy(),
  };
  for (const [name, carrierAct] of Object.entries(cases)) {
    it(`${name} by the carrier: the members' responses, received last, leave the browser where the carrier put it`, async () => {
      const master = new WriteCountingStore();
      const a = burstApp({ master }, (ctx, i, hold) =>
        ctx.session.withLock(async (s) => {
          await hold();
          const seen = inc(s);
          if (i === 2) await carrierAct(ctx); // joins the scope: applied at its end, by the write that carries 0 and 1
          return seen;
        }),
      );
      const { cookie, sid } = await a.setup();
      const responses = await a.burst(cookie, 3);
      assert.deepEqual(results(responses), [1, 2, 3]);
      // The members were answered once the carrier's move was written: no cookie of the moved sid in their responses.
      for (const r of responses.slice(0, 2))
        assert.deepEqual(
          setCookies(r, 'sid').filter((c) => c.value === sid),
          [],
          'no member re-sends the old sid',
        );
      // The browser gets the carrier's response first, then the members' (their order on the wire is not fixed).
      const jar = new CookieJar();
      jar.take(cookie.split('; ').map((c) => `${c}; Path=/`));
      for (const r of [responses[2]!, responses[0]!, responses[1]!]) jar.take(r);
      if (name === 'destroy') {
        assert.equal(jar.get('sid'), undefined, 'the logged-out cookie stays cleared');
        return;
      }
      assert.notEqual(jar.get('sid'), sid, 'the browser is not sent back to the moved sid');
      const after = await request(a.http).get('/count').set('Cookie', jar.header);
      assert.equal(after.status, 200);
      assert.equal(after.body.count, 3, 'the browser still reaches its session, every change in it');
    });
  }
});

describe("group commit with PostgresLocker: the batch is written in the lock's transaction, and the row lock is not passed on after it", {
  timeout: 120_000,
}, () => {
  const ready = (async () => {
    const server = await postgresServer();
    if (!server) return undefined;
    const db = await freshDatabase(server, 'gc_faults');
    const pool = new pg.Pool({ connectionString: db.url, max: 4 });
    pool.on('error', () => {});
    return { server, db, pool };
  })();
  after(async () => {
    const pgs = await ready;
    await pgs?.pool.end();
    await pgs?.db.drop().catch(() => {});
    await pgs?.server.stop();
  });

  // 2: a scope in the middle throws (the batch goes on with the lease, in the open transaction);
  // 5: the last scope throws (its release writes the batch in the transaction and commits it).
  for (const thrower of [2, 5]) {
    it(`scope ${thrower} of 6 throws: one write carries the others, no connection left checked out`, async (t) => {
      const pgs = await ready;
      if (!pgs) return t.skip(skipReason('postgres'));
      const master = new PostgresStore({ pool: pgs.pool, table: `gcf_${randomUUID().slice(0, 8)}` });
      const locker = new PostgresLocker({ store: master });
      const a = burstApp({ master, locker, storeTimeout: 30_000, lockTimeout: 60_000, ...unbounded }, (ctx, i, hold) =>
        ctx.session.withLock(async (s) => {
          await hold();
          const seen = inc(s);
          if (i === thrower) throw new Error('boom');
          return seen;
        }),
      );
      const { cookie, sid } = await a.setup();
      const responses = await a.burst(cookie, 6);
      const want = [1, 2, 3, 4, 5, 6].map((n, i) => (i === thrower ? 500 : i > thrower ? n - 1 : n));
      assert.deepEqual(results(responses), want);
      assert.equal(await a.count(cookie), 5);
      assert.equal((await master.read(sid))?.version, 2, 'created by setup, then one write');
      assert.equal(pgs.pool.totalCount - pgs.pool.idleCount, 0, 'every transaction ended (committed or rolled back)');
    });
  }
});
