import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { MemoryLocker, MemoryStore, SerializationError, type Serializer } from '../src/index.js';
import { cookieHeader, makeApp, sidOf } from './helpers/app.js';

declare module '../src/index.js' {
  interface SessionData {
    value?: unknown;
    keep?: string;
  }
}

function setup(serializer?: Serializer) {
  const master = new MemoryStore();
  const locker = new MemoryLocker();
  const errors: unknown[] = [];
  const app = makeApp({ master, locker, ...(serializer ? { serializer } : {}) }, async (ctx) => {
    if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.keep = 'yes'));
    if (ctx.path === '/bigint') await ctx.session.withLock((s) => void (s.value = 10n));
    if (ctx.path === '/circular') {
      await ctx.session.withLock((s) => {
        const o: Record<string, unknown> = {};
        o.self = o;
        s.value = o;
      });
    }
    ctx.body = await ctx.session.get();
  });
  app.on('error', (e) => errors.push(e));
  return { master, locker, errors, server: app.callback() };
}

describe('serialization', () => {
  for (const kind of ['bigint', 'circular']) {
    it(`${kind} data fails with SerializationError: nothing saved, lock released`, async () => {
      const { master, locker, errors, server } = setup();
      const first = await request(server).get('/set');
      const cookie = cookieHeader(first.headers['set-cookie']);
      const res = await request(server).get(`/${kind}`).set('Cookie', cookie);
      assert.equal(res.status, 500);
      assert.ok(errors[0] instanceof SerializationError);
      assert.equal((errors[0] as SerializationError).code, 'ERR_SESSION_SERIALIZATION');
      assert.equal(await master.get(sidOf(first)), JSON.stringify({ keep: 'yes' }));
      assert.equal(locker.size, 0);
    });
  }

  it('__proto__ and constructor keys in a stored record cannot pollute prototypes', async () => {
    const { master, server } = setup();
    const first = await request(server).get('/set');
    const sid = sidOf(first);
    await master.set(sid, '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"keep":"yes"}', 60_000);
    const app2 = makeApp({ master }, async (ctx) => {
      await ctx.session.withLock((s) => {
        Object.assign({}, s);
        const merged = { ...s } as Record<string, unknown>;
        ctx.body = {
          polluted: ({} as Record<string, unknown>).polluted ?? null,
          protoOfData: Object.getPrototypeOf(s) === Object.prototype,
          keys: Object.keys(merged),
        };
      });
    });
    const res = await request(app2.callback()).get('/').set('Cookie', cookieHeader(first.headers['set-cookie']));
    assert.equal(res.body.polluted, null);
    assert.equal(res.body.protoOfData, true);
    assert.ok(!res.body.keys.includes('__proto__'));
    assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined);
  });

  it('a record that is not valid serialized data is no session plus session:invalid, not a crash', async () => {
    const master = new MemoryStore();
    const invalid: string[] = [];
    const app = makeApp({ master }, async (ctx) => {
      if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.keep = 'yes'));
      else await ctx.session.withLock((s) => void (s.value = 1));
      ctx.body = { id: ctx.session.id, data: await ctx.session.get() };
    });
    app.on('session:invalid', (e: { reason: string }) => invalid.push(e.reason));
    const first = await request(app.callback()).get('/set');
    for (const garbage of ['not json', '[1,2]', '"string"', 'null']) {
      await master.set(sidOf(first), garbage, 60_000);
      const res = await request(app.callback()).get('/').set('Cookie', cookieHeader(first.headers['set-cookie']));
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.data, { value: 1 });
      assert.notEqual(res.body.id, sidOf(first), 'the corrupt record is not written over: a new session starts');
    }
    assert.deepEqual(invalid, ['bad-record', 'bad-record', 'bad-record', 'bad-record']);
  });

  it('a custom serializer is used both ways', async () => {
    const calls: string[] = [];
    const serializer: Serializer = {
      stringify: (d) => (calls.push('stringify'), `X${JSON.stringify(d)}`),
      parse: (raw) => (calls.push('parse'), JSON.parse(raw.slice(1))),
    };
    const { master, server } = setup(serializer);
    const first = await request(server).get('/set');
    assert.equal(await master.get(sidOf(first)), 'X{"keep":"yes"}');
    const res = await request(server).get('/').set('Cookie', cookieHeader(first.headers['set-cookie']));
    assert.deepEqual(res.body, { keep: 'yes' });
    assert.ok(calls.includes('parse'));
  });
});

describe('per-session settings stored with the record', () => {
  it('a forged `$session` in a stored record cannot stretch the expiry past the configured ttl', async () => {
    const inner = new MemoryStore();
    const ttls: number[] = [];
    const spy = {
      name: 'spy',
      get: (k: string) => inner.get(k),
      destroy: (k: string) => inner.destroy(k),
      set: (k: string, v: string, t: number) => (ttls.push(t), inner.set(k, v, t)),
    };
    const app = makeApp({ master: spy, ttl: 60_000 }, async (ctx) => {
      await ctx.session.withLock((s) => void (s.keep = String(Date.now())));
      ctx.body = await ctx.session.get();
    });
    const first = await request(app.callback()).get('/');
    await inner.set(sidOf(first), JSON.stringify({ keep: 'x', $session: { ttl: 10 ** 12, created: Date.now() + 10 ** 9 } }), 60_000);
    const res = await request(app.callback()).get('/').set('Cookie', cookieHeader(first.headers['set-cookie']));
    assert.equal(res.status, 200);
    assert.ok(!('$session' in res.body), 'settings never show in the data');
    // `every` is true on an empty list: both requests saved (the second over the forged record).
    assert.equal(ttls.length, 2, `saves: ${ttls.join(', ')}`);
    assert.ok(
      ttls.every((t) => t <= 60_000),
      `every save within the configured ttl, got ${ttls.join(', ')}`,
    );
  });
});
