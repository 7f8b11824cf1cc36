import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Koa from 'koa';
import request from 'supertest';
import { MemoryStore, plainSession, plainSessionOf, session, type PlainSessionOptions, type SessionOptions } from '../src/index.js';
import { cookieHeader, CountingStore, sidOf } from './helpers/app.js';

declare module '../src/index.js' {
  interface SessionData {
    views?: number;
  }
}

/** session() + plainSession() on `/plain/*`, a route without the view on `/bare`. */
function plainApp(master: NonNullable<SessionOptions['master']>, view: PlainSessionOptions = {}, routes: Koa.Middleware = async () => {}) {
  const app = new Koa();
  app.keys = ['test-key-1'];
  app.silent = true;
  app.use(session({ master }));
  const withView = plainSession(view);
  app.use(async (ctx, next) => (ctx.path.startsWith('/plain') ? withView(ctx, next) : next()));
  app.use(async (ctx, next) => {
    if (ctx.path === '/plain/views') {
      const s = plainSessionOf(ctx);
      s.views = (s.views ?? 0) + 1;
      ctx.body = { views: s.views };
      return;
    }
    if (ctx.path === '/bare') {
      ctx.body = 'no session here';
      return;
    }
    return routes(ctx, next);
  });
  return app;
}

const N = 100;

describe('plainSession(): a plain-object ctx.session that keeps the promise', () => {
  it(`lock: 'request' (default): ${N} parallel ctx.session.views += 1 end at exactly ${N}, each response a distinct value`, async () => {
    const master = new MemoryStore();
    const server = plainApp(master).callback();
    const first = await request(server).get('/plain/views');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const rest = await Promise.all(Array.from({ length: N - 1 }, () => request(server).get('/plain/views').set('Cookie', cookie)));
    assert.ok(rest.every((r) => r.status === 200));
    const seen = [first.body.views, ...rest.map((r) => r.body.views)].sort((a, b) => a - b);
    assert.deepEqual(
      seen,
      Array.from({ length: N }, (_, i) => i + 1),
    );
    const after = await request(server).get('/plain/views').set('Cookie', cookie);
    assert.equal(after.body.views, N + 1);
    await master.close();
  });

  it("lock: 'merge': parallel requests each changing their own key lose none of them (key-level merge under the lock)", async () => {
    const master = new MemoryStore();
    const server = plainApp(master, { lock: 'merge' }, async (ctx) => {
      const s = plainSessionOf(ctx);
      if (ctx.path === '/plain/set') s[String(ctx.query.k)] = Number(ctx.query.v);
      ctx.body = { ...s };
    }).callback();
    const first = await request(server).get('/plain/set?k=seed&v=1');
    const cookie = cookieHeader(first.headers['set-cookie']);
    await Promise.all(Array.from({ length: 30 }, (_, i) => request(server).get(`/plain/set?k=k${i}&v=${i}`).set('Cookie', cookie)));
    const all = await request(server).get('/plain/read').set('Cookie', cookie);
    const expected: Record<string, number> = { seed: 1 };
    for (let i = 0; i < 30; i++) expected[`k${i}`] = i;
    assert.deepEqual(all.body, expected);
    await master.close();
  });

  it('a route without the view costs no store call, even with a session cookie', async () => {
    const master = new CountingStore(new MemoryStore());
    const server = plainApp(master).callback();
    const first = await request(server).get('/plain/views');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const before = master.total;
    const bare = await request(server).get('/bare').set('Cookie', cookie);
    assert.equal(bare.status, 200);
    assert.equal(master.total, before);
  });

  it('data is own enumerable keys only; methods and id are not (for…in copies, JSON)', async () => {
    const master = new MemoryStore();
    const server = plainApp(master, {}, async (ctx) => {
      const s = ctx.session as unknown as Record<string, unknown>;
      s.a = { deep: [1] };
      const keys: string[] = [];
      for (const key in s) keys.push(key);
      ctx.body = { keys, json: JSON.stringify(s), hasSave: typeof s.save, hasRegenerate: typeof s.regenerate, inSession: 'session' in ctx };
    }).callback();
    const res = await request(server).get('/plain/x');
    assert.deepEqual(res.body, {
      keys: ['a'],
      json: '{"a":{"deep":[1]}}',
      hasSave: 'function',
      hasRegenerate: 'function',
      inSession: true,
    });
  });

  it('deep changes are saved; ctx.session = null destroys the session in the store', async () => {
    const master = new MemoryStore();
    const server = plainApp(master, {}, async (ctx) => {
      const s = plainSessionOf(ctx) as Record<string, unknown> & { list?: number[] };
      if (ctx.path === '/plain/push') (s.list ??= []).push(s.list.length);
      if (ctx.path === '/plain/null') ctx.session = null as never;
      ctx.body = { list: s.list ?? null };
    }).callback();
    const first = await request(server).get('/plain/push');
    const cookie = cookieHeader(first.headers['set-cookie']);
    await request(server).get('/plain/push').set('Cookie', cookie);
    const third = await request(server).get('/plain/push').set('Cookie', cookie);
    assert.deepEqual(third.body.list, [0, 1, 2]);
    const sid = sidOf(first);
    assert.ok(await master.get(sid));
    await request(server).get('/plain/null').set('Cookie', cookie);
    assert.equal(await master.get(sid), undefined);
    const after = await request(server).get('/plain/read').set('Cookie', cookie);
    assert.deepEqual(after.body.list, null);
  });

  it("regenerate(cb): a new sid, the old one dead; 'clear' empties the data, 'keep' carries it", async () => {
    for (const mode of ['clear', 'keep'] as const) {
      const master = new MemoryStore();
      const server = plainApp(master, { regenerate: mode }, async (ctx) => {
        const s = plainSessionOf(ctx);
        if (ctx.path === '/plain/regen') {
          await new Promise<void>((resolve, reject) => s.regenerate((err) => (err ? reject(err) : resolve())));
          plainSessionOf(ctx).after = 1; // ctx.session is the new view
        }
        ctx.body = { ...plainSessionOf(ctx) };
      }).callback();
      const first = await request(server).get('/plain/views');
      const oldSid = sidOf(first);
      const regen = await request(server).get('/plain/regen').set('Cookie', cookieHeader(first.headers['set-cookie']));
      const newSid = sidOf(regen);
      assert.notEqual(newSid, oldSid);
      assert.equal(await master.get(oldSid), undefined, 'the old sid is dead');
      const next = await request(server).get('/plain/read').set('Cookie', cookieHeader(regen.headers['set-cookie']));
      assert.deepEqual(next.body, mode === 'clear' ? { after: 1 } : { views: 1, after: 1 });
      await master.close();
    }
  });

  it('a request that throws saves nothing', async () => {
    const master = new MemoryStore();
    const server = plainApp(master, {}, async (ctx) => {
      plainSessionOf(ctx).views = 99;
      ctx.throw(500, 'boom');
    }).callback();
    const first = await request(server).get('/plain/views');
    const cookie = cookieHeader(first.headers['set-cookie']);
    assert.equal((await request(server).get('/plain/fail').set('Cookie', cookie)).status, 500);
    const after = await request(server).get('/plain/views').set('Cookie', cookie);
    assert.equal(after.body.views, 2);
  });

  it('bad options fail fast naming the option', () => {
    assert.throws(() => plainSession({ lock: 'page' as never }), /`lock` to be 'request' or 'merge'/);
    assert.throws(() => plainSession({ regenerate: 'yes' as never }), /`regenerate`/);
    assert.throws(() => plainSession({ user: 'passport' as never }), /`user` to be a function/);
    assert.throws(() => plainSession({ nmae: 'x' } as never), /unknown option `nmae`/);
  });
});
