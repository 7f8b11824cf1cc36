/**
 * What plainSession() costs on RedisStore + RedisLocker, counted rather than timed
 * (issue 23 item 5): the round trips (every command the app's node-redis client
 * sends, recorded by a Proxy, as test/lockers/redis.test.ts does for the handle) and
 * the commands Redis runs (INFO commandstats, which also counts those run inside the
 * locker's scripts: what `npm run bench` reports as "store calls / req"). A count is
 * the number of round trips a request waits for, the same on any machine: pinned here
 * so that a change that adds one fails.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import Koa from 'koa';
import { createClient } from 'redis';
import request from 'supertest';
import { plainSession, plainSessionOf, session, type PlainSessionOptions, type SessionOptions } from '../src/index.js';
import { RedisLocker } from '../src/redis/locker.js';
import { RedisStore } from '../src/redis/store.js';
import { cookieHeader, deferred } from './helpers/app.js';
import { redisServer, skipReason } from './helpers/servers.js';

const server = await redisServer();
const connect = (url: string) => createClient({ url }).connect();
const client = server ? await connect(server.url) : undefined;
/** A second connection, for INFO / CONFIG RESETSTAT (its own commands are left out of the counts). */
const admin = server ? await connect(server.url) : undefined;
after(async () => {
  await Promise.all([client?.close(), admin?.close()]);
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

/** Commands Redis ran since the last reset (scripts' inner commands included), the admin connection's left out. */
async function ranOnServer(): Promise<Record<string, number>> {
  const info = await admin!.info('commandstats');
  const ran: Record<string, number> = {};
  for (const [, name, calls] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (name !== 'info' && name !== 'config|resetstat' && name !== 'config') ran[name!] = Number(calls);
  }
  return ran;
}

/** The gate of the overlapping requests: they all wait until `n` of them have read the session. */
let gate: { n: number; arrived: number; open: ReturnType<typeof deferred<void>> } | undefined;

/** session() on RedisStore + RedisLocker (one counted client), the view on /plain/*, a route without it on /bare. */
function app(view: PlainSessionOptions, options: Partial<SessionOptions> = {}) {
  const redis = counted(client!);
  const koa = new Koa();
  koa.keys = ['test-key-1'];
  koa.silent = true;
  koa.use(session({ master: new RedisStore({ client: redis }), locker: new RedisLocker({ client: redis }), ...options }));
  const withView = plainSession(view);
  koa.use(async (ctx, next) => (ctx.path.startsWith('/plain') ? withView(ctx, next) : next()));
  koa.use(async (ctx) => {
    if (ctx.path === '/bare') {
      ctx.body = 'no session here';
      return;
    }
    if (!ctx.path.startsWith('/plain')) return;
    const s = plainSessionOf<Record<string, unknown>>(ctx);
    if (ctx.path === '/plain/untouched') ctx.body = 'the view is mounted, the route never reads it';
    else if (ctx.path === '/plain/read') ctx.body = { views: s.views ?? null };
    else if (ctx.path === '/plain/inc') {
      s.views = ((s.views as number | undefined) ?? 0) + 1;
      ctx.body = { views: s.views };
    } else if (ctx.path === '/plain/set') {
      // Waits for the other overlapping requests to have read the session too.
      if (gate && ++gate.arrived === gate.n) gate.open.resolve(undefined);
      if (gate) await gate.open.promise;
      s[String(ctx.query.k)] = String(ctx.query.v);
      ctx.body = { ...s };
    }
  });
  return koa.callback();
}

type Http = ReturnType<typeof app>;

/** A session with `{ views: 2 }` and every script of both paths already loaded (no NOSCRIPT fallback in the counts). */
async function warmSession(http: Http): Promise<string> {
  const cookie = cookieHeader((await request(http).get('/plain/inc')).headers['set-cookie']);
  for (const path of ['/plain/untouched', '/plain/read', '/plain/inc']) await request(http).get(path).set('Cookie', cookie);
  await request(http).get('/plain/read').set('Cookie', cookie);
  return cookie;
}

/** The round trips and the server-side commands of one request. */
async function cost(http: Http, path: string, cookie?: string): Promise<{ trips: string[]; ran: Record<string, number>; body: unknown }> {
  await admin!.configResetStat();
  sent.length = 0;
  const req = request(http).get(path);
  const res = await (cookie === undefined ? req : req.set('Cookie', cookie));
  assert.equal(res.status, 200, `${path}: ${res.text}`);
  return { trips: [...sent], ran: await ranOnServer(), body: res.body };
}

/** `a` minus `b`, per command (only the differences). */
function minus(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = (a[name] ?? 0) - (b[name] ?? 0);
    if (d !== 0) out[name] = d;
  }
  return out;
}

describe('plainSession() on RedisStore + RedisLocker: Redis round trips per request, counted', {
  skip: server ? false : skipReason('redis'),
}, () => {
  // acquire+read: one script (SET NX + GET of the record); write+release: one script (the fenced write).
  const LOCKED_RMW = ['evalSha', 'evalSha'];
  const expected = {
    request: { bare: [], untouched: LOCKED_RMW, read: LOCKED_RMW, inc: LOCKED_RMW, fresh: ['set'], freshUntouched: [] },
    merge: { bare: [], untouched: ['get'], read: ['get'], inc: ['get', ...LOCKED_RMW], fresh: ['set'], freshUntouched: [] },
  } as const;

  for (const lock of ['request', 'merge'] as const) {
    const want = expected[lock];
    it(`lock: '${lock}': no view 0, untouched ${want.untouched.length}, read-only ${want.read.length}, one key changed ${want.inc.length}; a new visitor ${want.fresh.length} (${want.fresh.join(', ')})`, async () => {
      const http = app({ lock });
      const cookie = await warmSession(http);
      assert.deepEqual((await cost(http, '/bare', cookie)).trips, want.bare, 'a route without the view');
      assert.deepEqual((await cost(http, '/plain/untouched', cookie)).trips, want.untouched, 'the view, never read');
      const read = await cost(http, '/plain/read', cookie);
      assert.deepEqual(read.body, { views: 2 });
      assert.deepEqual(read.trips, want.read, 'a read-only request');
      const inc = await cost(http, '/plain/inc', cookie);
      assert.deepEqual(inc.body, { views: 3 });
      assert.deepEqual(inc.trips, want.inc, 'one key changed');
      assert.deepEqual((await cost(http, '/plain/untouched')).trips, want.freshUntouched, 'a visitor without a cookie, nothing set');
      assert.deepEqual((await cost(http, '/plain/inc')).trips, want.fresh, 'a visitor without a cookie, one key set: one insert');
    });
  }

  it("lock: 'merge' runs, in Redis, what 'request' runs plus one GET on a change, and only that GET on a read", async () => {
    const byLock = { request: app({ lock: 'request' }), merge: app({ lock: 'merge' }) };
    const cookies = { request: await warmSession(byLock.request), merge: await warmSession(byLock.merge) };
    const ran = async (lock: 'request' | 'merge', path: string) => (await cost(byLock[lock], path, cookies[lock])).ran;
    assert.deepEqual(await ran('merge', '/plain/read'), { get: 1 });
    assert.deepEqual(await ran('merge', '/plain/untouched'), { get: 1 });
    assert.deepEqual(minus(await ran('merge', '/plain/inc'), await ran('request', '/plain/inc')), { get: 1 });
  });

  it("lock: 'merge', 3 overlapping requests making one change: one lock for all, no read under it after the first (the record goes with the lease)", async () => {
    // groupCommit off: the first writes, the two after it find `a` already '1' and write nothing of their own.
    const cases = [
      { groupCommit: undefined, trips: ['get', 'get', 'get', 'evalSha', 'evalSha'] }, // acquire+read; the batch's write+release
      { groupCommit: false, trips: ['get', 'get', 'get', 'evalSha', 'evalSha', 'evalSha'] }, // acquire+read; the first's write; release
    ] as const;
    for (const { groupCommit, trips } of cases) {
      const label = `groupCommit: ${groupCommit === false ? 'false' : 'default'}`;
      const http = app({ lock: 'merge' }, groupCommit === undefined ? {} : { groupCommit });
      const cookie = await warmSession(http);
      gate = { n: 3, arrived: 0, open: deferred() };
      sent.length = 0;
      const responses = await Promise.all([1, 2, 3].map(() => request(http).get('/plain/set?k=a&v=1').set('Cookie', cookie)));
      gate = undefined;
      assert.deepEqual(
        responses.map((r) => r.status),
        [200, 200, 200],
      );
      assert.deepEqual(sent, trips, label);
      assert.deepEqual((await request(http).get('/plain/set?k=b&v=2').set('Cookie', cookie)).body, { views: 2, a: '1', b: '2' }, label);
    }
  });
});
