import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import Koa from 'koa';
import request from 'supertest';
import { CHANNELS, MemoryLocker, MemoryStore, StoreError, session, type MirrorError } from '../src/index.js';
import { HangingStore, cookieHeader, deferred, makeApp, sidOf } from './helpers/app.js';

declare module '../src/index.js' {
  interface SessionData {
    n?: number;
  }
}

const increment = async (ctx: Koa.Context) => {
  ctx.body = { n: await ctx.session.withLock((s) => (s.n = (s.n ?? 0) + 1)) };
};

describe('storeTimeout', () => {
  it('a master that stops answering gives 503 StoreError within the timeout, releases the lock, and others keep working', async () => {
    const healthy = new MemoryStore();
    const stalled = new HangingStore(new MemoryStore(), 'stalled');
    const locker = new MemoryLocker();
    const errors: unknown[] = [];
    const app = new Koa();
    app.keys = ['k'];
    app.silent = true;
    app.on('error', (e) => errors.push(e));
    app.use(session({ master: stalled, locker, storeTimeout: 50 }));
    app.use(session({ name: 'other', master: healthy, storeTimeout: 50 }));
    app.use(async (ctx) => {
      if (ctx.path === '/other') ctx.body = { n: await (ctx as any).other.withLock((s: { n?: number }) => (s.n = (s.n ?? 0) + 1)) };
      else await increment(ctx);
    });
    const server = app.callback();
    const results = await Promise.all(Array.from({ length: 50 }, () => request(server).get('/')));
    assert.ok(
      results.every((r) => r.status === 503),
      'every request on the dead master ends in 503',
    );
    // `every` is true on an empty list: the count shows each failed request reported its error.
    assert.equal(errors.length, 50, 'one error event per failed request');
    assert.ok(
      errors.every((e) => e instanceof StoreError && /\[stalled\] SET timed out after 50 ms \(storeTimeout\)/.test(e.message)),
      errors.map(String).join('\n'),
    );
    assert.equal(locker.size, 0);
    assert.equal((await request(server).get('/other')).body.n, 1, 'the process keeps serving other stores');
    stalled.wake();
    assert.equal((await request(server).get('/')).status, 200, 'recovers once the store answers again');
  });

  it('an existing session whose master stalls mid-read fails with 503 and releases the lock', async () => {
    const inner = new MemoryStore();
    const store = new HangingStore(inner);
    store.hanging = false;
    const locker = new MemoryLocker();
    const server = makeApp({ master: store, locker, storeTimeout: 50 }, increment).callback();
    const first = await request(server).get('/');
    store.hanging = true;
    const stuck = await request(server).get('/').set('Cookie', cookieHeader(first.headers['set-cookie']));
    assert.equal(stuck.status, 503);
    assert.equal(locker.size, 0);
    store.wake();
    const ok = await request(server).get('/').set('Cookie', cookieHeader(first.headers['set-cookie']));
    assert.deepEqual(ok.body, { n: 2 });
  });
});

describe('background mirrors', () => {
  it('a dead mirror in background mode is bounded: overflow is dropped with session:mirror-error, the master path is unaffected', async () => {
    const master = new MemoryStore();
    const dead = new HangingStore(new MemoryStore(), 'dead-mirror');
    const reports: MirrorError[] = [];
    const app = makeApp(
      { master, mirrors: [dead], mirrorWrites: 'background', maxPendingMirrorWrites: 5, storeTimeout: 60_000 },
      increment,
    );
    app.on('session:mirror-error', (r: MirrorError) => reports.push(r));
    const server = app.callback();
    const results = await Promise.all(Array.from({ length: 20 }, () => request(server).get('/')));
    assert.ok(results.every((r) => r.status === 200));
    assert.equal(dead.pending, 5, 'at most maxPendingMirrorWrites writes wait on the dead mirror');
    assert.equal(reports.length, 15);
    assert.match(String((reports[0]!.error as Error).message), /mirror queue full \(5 writes pending\)/);
    dead.wake();
  });

  it("in 'await' mode each mirror call is bounded by storeTimeout and never fails the request", async () => {
    const dead = new HangingStore(new MemoryStore(), 'dead-mirror');
    const reports: MirrorError[] = [];
    const app = makeApp({ mirrors: [dead], storeTimeout: 30 }, increment);
    app.on('session:mirror-error', (r: MirrorError) => reports.push(r));
    const res = await request(app.callback()).get('/');
    assert.equal(res.status, 200);
    assert.equal(reports.length, 1);
    assert.match(String((reports[0]!.error as Error).message), /timed out after 30 ms/);
    dead.wake();
  });
});

describe('graceful close', () => {
  it('waits for in-flight scopes, refuses new ones with 503, flushes background mirrors, closes stores', async () => {
    const master = new MemoryStore();
    const mirrorInner = new MemoryStore();
    const mirror = new HangingStore(mirrorInner, 'slow-mirror');
    const inScope = deferred();
    const finish = deferred();
    const mw = session({ master, mirrors: [mirror], mirrorWrites: 'background' });
    const app = new Koa();
    app.keys = ['k'];
    app.silent = true;
    app.use(mw);
    app.use(async (ctx) => {
      if (ctx.path === '/slow') {
        await ctx.session.withLock(async (s) => {
          inScope.resolve();
          await finish.promise;
          s.n = 1;
        });
      } else await increment(ctx);
      ctx.body ??= 'ok';
    });
    const server = app.callback();
    const slow = request(server)
      .get('/slow')
      .then((r) => r);
    await inScope.promise;
    let closed = false;
    const closing = mw.close().then(() => (closed = true));
    const refused = await request(server).get('/');
    assert.equal(refused.status, 503, 'new scopes are refused while closing');
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal(closed, false, 'close waits for the scope in flight');
    finish.resolve();
    const done = await slow;
    assert.equal(done.status, 200, 'the in-flight scope completed');
    mirror.wake(); // the background mirror write can now finish; close flushes it
    await closing;
    assert.equal(await mirrorInner.get(sidOf(done)), JSON.stringify({ n: 1 }), 'nothing lost: the mirror write was flushed');
  });
});

describe('diagnostics_channel', () => {
  it('publishes lock waits, store latency per store and mirror errors, without sids', async () => {
    const seen: Record<string, unknown[]> = { lock: [], store: [], mirror: [] };
    const onLock = (m: unknown) => seen.lock!.push(m);
    const onStore = (m: unknown) => seen.store!.push(m);
    const onMirror = (m: unknown) => seen.mirror!.push(m);
    diagnostics_channel.subscribe(CHANNELS.lock, onLock);
    diagnostics_channel.subscribe(CHANNELS.store, onStore);
    diagnostics_channel.subscribe(CHANNELS.mirrorError, onMirror);
    try {
      const failing = {
        name: 'broken',
        get: async () => undefined,
        set: async () => {
          throw new Error('nope');
        },
        destroy: async () => undefined,
      };
      const server = makeApp({ mirrors: [failing] }, increment).callback();
      const first = await request(server).get('/');
      await request(server).get('/').set('Cookie', cookieHeader(first.headers['set-cookie']));
      assert.deepEqual(
        (seen.lock as Array<{ outcome: string; locker: string; session: string }>).map((m) => [m.session, m.locker, m.outcome]),
        [['session', 'memory', 'acquired']],
      );
      const stores = seen.store as Array<{ store: string; role: string; op: string; durationMs: number }>;
      assert.ok(stores.some((m) => m.store === 'memory' && m.role === 'master' && m.op === 'get' && m.durationMs >= 0));
      assert.ok(stores.some((m) => m.store === 'broken' && m.role === 'mirror' && m.op === 'set'));
      assert.equal(seen.mirror!.length, 2);
      const sid = sidOf(first);
      assert.ok(
        !JSON.stringify([seen.lock, seen.store, (seen.mirror as Array<{ store: string }>).map((m) => m.store)]).includes(sid),
        'no sid in diagnostics',
      );
    } finally {
      diagnostics_channel.unsubscribe(CHANNELS.lock, onLock);
      diagnostics_channel.unsubscribe(CHANNELS.store, onStore);
      diagnostics_channel.unsubscribe(CHANNELS.mirrorError, onMirror);
    }
  });
});

describe('graceful close under load', () => {
  it('closing while 100 requests are in flight: every 200 is saved, the rest are 503, nothing is lost or left locked', async () => {
    const master = new MemoryStore();
    const mirror = new MemoryStore();
    const locker = new MemoryLocker();
    const mw = session({ master, mirrors: [mirror], mirrorWrites: 'background', locker, lockTimeout: 60_000 });
    const app = new Koa();
    app.keys = ['k'];
    app.silent = true;
    app.use(mw);
    app.use(increment);
    const server = app.callback();
    const first = await request(server).get('/');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const inFlight = Array.from({ length: 100 }, () =>
      request(server)
        .get('/')
        .set('Cookie', cookie)
        .then((r) => r),
    );
    await new Promise((resolve) => setImmediate(resolve)); // some requests are under way
    await mw.close();
    const results = await Promise.all(inFlight);
    const ok = results.filter((r) => r.status === 200).length;
    assert.ok(results.every((r) => r.status === 200 || r.status === 503));
    assert.equal(JSON.parse((await master.get(sidOf(first)))!).n, 1 + ok, 'every acknowledged increment is in the master');
    assert.equal(await mirror.get(sidOf(first)), await master.get(sidOf(first)), 'background mirror writes were flushed');
    assert.equal(locker.size, 0);
  });
});
