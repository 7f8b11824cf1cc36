/**
 * Issue 11, items 2 and 17: a mirror never ends up holding a record the master
 * destroyed or superseded.
 *
 * - A mirror write abandoned at `storeTimeout` (its bytes held in the network,
 *   the client gives the connection up) reaches the mirror after the logout's
 *   destroy: once everything is delivered and flushed, the mirror holds no
 *   record for the logged-out sid. Every mirror store, both `mirrorWrites` modes.
 * - `mirrorWrites: 'background'` with a mirror whose latency varies (each write
 *   first waits a random 0–60 ms): 50 sessions, each logged in and incremented
 *   four times, ten of them logged out; after `close()` flushed the mirror
 *   queue, every mirror record equals the master's and none of the logged-out
 *   sessions is left on the mirror. A history check: the final state of every
 *   session on the mirror is the master's final state.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import Koa from 'koa';
import Memcached from 'memcached';
import { MongoClient } from 'mongodb';
import { createClient } from 'redis';
import request from 'supertest';
import {
  MEMCACHED_FAIL_FAST_OPTIONS,
  MemcachedStore,
  MemoryStore,
  MongoStore,
  RedisStore,
  session,
  type MongoSessionDocument,
  type SessionOptions,
  type Store,
} from '../src/index.js';
import { cookieHeader, listen, sidOf } from './helpers/app.js';
import { allServers, skipFor, stallable, storeTimeoutFor, untilAnswers, type Kind } from './helpers/stall-backends.js';
import { jitterStore, liveValue, seeded } from './helpers/stall.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
    mark?: string;
  }
}

const { servers, cleanup } = await allServers();
const { redis, memcached, mongo } = servers;

const KINDS: Kind[] = ['memory', 'redis', 'memcached', 'mongo'];

/** An app with `session(options)` whose middleware (for `close()`) is returned too. */
function app(options: SessionOptions) {
  const koa = new Koa();
  koa.keys = ['test-key-1'];
  koa.silent = true;
  const mw = session(options);
  koa.use(mw);
  koa.use(async (ctx) => {
    if (ctx.path === '/inc') {
      const mark = typeof ctx.query.mark === 'string' ? ctx.query.mark : undefined;
      ctx.body = {
        count: await ctx.session.withLock((s) => {
          s.count = (s.count ?? 0) + 1;
          if (mark) s.mark = mark;
          return s.count;
        }),
      };
    } else if (ctx.path === '/login') {
      await ctx.session.login({ id: String(ctx.query.u ?? 'u1'), name: 'Ada' });
      ctx.body = 'ok';
    } else if (ctx.path === '/logout') {
      await ctx.session.logout();
      ctx.body = 'ok';
    }
  });
  return { koa, mw };
}

describe('a mirror write abandoned at storeTimeout that lands after the logout', () => {
  for (const kind of KINDS) {
    for (const mode of ['await', 'background'] as const) {
      it(`${kind} mirror, mirrorWrites: '${mode}': the mirror ends with no record for the logged-out sid`, {
        skip: skipFor(servers, kind),
      }, async () => {
        const mirror = await stallable(servers, kind, cleanup);
        const master = new MemoryStore();
        const { koa, mw } = app({ master, mirrors: [mirror.store], mirrorWrites: mode, storeTimeout: storeTimeoutFor(kind) });
        const errors: string[] = [];
        let firstError!: () => void;
        const mirrorFailed = new Promise<void>((resolve) => (firstError = resolve));
        koa.on('session:mirror-error', (report: { op: string }) => {
          errors.push(report.op);
          firstError();
        });
        const server = koa.callback();

        const login = await request(server).post('/login');
        assert.equal(login.status, 200);
        const cookie = cookieHeader(login.headers['set-cookie']);
        const sid = sidOf(login);

        const marker = `STALL${randomUUID().replaceAll('-', '')}`;
        const stall = mirror.stallNextWrite(marker);
        const inc = await request(server).get(`/inc?mark=${marker}`).set('Cookie', cookie);
        assert.equal(inc.status, 200, 'a mirror failure never fails the request');
        await stall.caught;
        await mirrorFailed; // the mirror write was given up at storeTimeout
        stall.abandon();
        await untilAnswers(mirror.store);

        const logout = await request(server).post('/logout').set('Cookie', cookie);
        assert.equal(logout.status, 200);
        await mw.close(); // every mirror write of the session layer has settled: the destroy reached the mirror
        await stall.deliver(); // the abandoned mirror write lands now, after the destroy

        assert.equal(await liveValue(master, sid), undefined, 'the master destroyed the session');
        const left = await liveValue(mirror.reader, sid);
        assert.equal(
          left,
          undefined,
          `the mirror still holds the logged-out session (${left?.includes('"user"') ? 'with its user' : 'a record'}); mirror errors: ${errors.join(',')}`,
        );
      });
    }
  }
});

/**
 * A mirror of `kind` on a direct connection, its client owned here, and a
 * second store on the same records to read them after the session layer's
 * `close()` closed the first.
 */
async function directMirror(kind: Kind): Promise<{ store: Store; reader: Store }> {
  const tag = randomUUID().slice(0, 8);
  if (kind === 'memory') {
    const store = new MemoryStore();
    return { store, reader: store }; // close() only stops its sweep timer
  }
  if (kind === 'redis') {
    const client = await createClient({ url: redis!.url })
      .on('error', () => {})
      .connect();
    cleanup.push(async () => client.destroy());
    const make = () => new RedisStore({ client, prefix: `jit-${tag}:`, timeoutMs: 30_000 });
    return { store: make(), reader: make() };
  }
  if (kind === 'memcached') {
    const client = new Memcached(memcached!.url, { ...MEMCACHED_FAIL_FAST_OPTIONS });
    cleanup.push(async () => client.end());
    const make = () => new MemcachedStore({ client, prefix: `jit-${tag}:`, timeoutMs: 30_000 });
    return { store: make(), reader: make() };
  }
  const client = await new MongoClient(mongo!.url, { serverSelectionTimeoutMS: 10_000 }).connect();
  cleanup.push(() => client.close());
  const collection = client.db(`kls_jit_${tag}`).collection<MongoSessionDocument>('sessions');
  const make = () => new MongoStore({ collection, timeoutMs: 30_000 });
  return { store: make(), reader: make() };
}

const SESSIONS = 50;
const INCREMENTS = 4;
const LOGOUTS = 10;
/**
 * Sessions run this many at a time: with all 50 at once a loaded machine
 * spaces one session's requests wider than the 0–60 ms jitter, and the
 * mirror writes would rarely overtake each other.
 */
const PARALLEL = 5;

/** `fn(0..n-1)`, at most `parallel` at a time, results in index order. */
async function pool<T>(n: number, parallel: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        const i = next++;
        results[i] = await fn(i);
      }
    }),
  );
  return results;
}

describe("mirrorWrites: 'background' with a mirror whose latency varies (0–60 ms per write)", () => {
  for (const kind of KINDS) {
    it(`${kind} mirror: after the flush every mirror record equals the master's, and no logged-out session is left`, {
      skip: skipFor(servers, kind),
    }, async () => {
      const { store: inner, reader } = await directMirror(kind);
      const mirror = jitterStore(inner, seeded(11), 60);
      const master = new MemoryStore();
      const { koa, mw } = app({ master, mirrors: [mirror], mirrorWrites: 'background', storeTimeout: 30_000 });
      const mirrorErrors: unknown[] = [];
      koa.on('session:mirror-error', (report: { error: unknown }) => mirrorErrors.push(report.error));
      const srv = await listen(koa);
      cleanup.push(() => srv.close());

      const finals = await pool(SESSIONS, PARALLEL, async (i) => {
        const login = await request(srv.url).post(`/login?u=user${i}`);
        assert.equal(login.status, 200);
        const cookie = cookieHeader(login.headers['set-cookie']);
        const sid = sidOf(login);
        for (let n = 1; n <= INCREMENTS; n++) {
          const res = await request(srv.url).get('/inc').set('Cookie', cookie);
          assert.equal(res.status, 200);
          assert.equal(res.body.count, n);
        }
        const loggedOut = i < LOGOUTS;
        if (loggedOut) assert.equal((await request(srv.url).post('/logout').set('Cookie', cookie)).status, 200);
        return { sid, loggedOut };
      });
      await mw.close(); // waits for every background mirror write

      assert.deepEqual(mirrorErrors, [], 'no mirror write failed');
      let stale = 0;
      let kept = 0;
      for (const { sid, loggedOut } of finals) {
        const want = await liveValue(master, sid);
        const got = await liveValue(reader, sid);
        if (loggedOut) {
          assert.equal(want, undefined);
          if (got !== undefined) kept++;
        } else {
          assert.ok(want !== undefined && JSON.parse(want).count === INCREMENTS);
          if (got !== want) stale++;
        }
      }
      assert.equal(
        stale + kept,
        0,
        `${stale} of ${SESSIONS - LOGOUTS} mirror records differ from the master's, ${kept} of ${LOGOUTS} logged-out sessions are still on the mirror`,
      );
    });
  }
});
