import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { MemoryLocker, MemoryStore, SessionError } from '../src/index.js';
import { CountingStore, cookieHeader, makeApp } from './helpers/app.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
    name?: string;
    nested?: { list: number[] };
  }
}

function setup(routes: Parameters<typeof makeApp>[1], extra: Parameters<typeof makeApp>[0] = {}) {
  const store = new CountingStore(new MemoryStore());
  const locker = new MemoryLocker();
  const app = makeApp({ master: store, locker, ...extra }, routes);
  return { store, locker, app, server: app.callback() };
}

describe('lazy session', () => {
  it('a route that never touches the session makes no store call and sets no cookie', async () => {
    const { store, server } = setup(async (ctx) => {
      ctx.body = 'hello';
    });
    const res = await request(server).get('/');
    assert.equal(res.status, 200);
    assert.equal(res.headers['set-cookie'], undefined);
    assert.equal(store.total, 0);
  });

  it('a new session that saves nothing gets no cookie and no store write', async () => {
    const { store, server } = setup(async (ctx) => {
      const snapshot = await ctx.session.get();
      await ctx.session.withLock(() => undefined);
      ctx.body = snapshot;
    });
    const res = await request(server).get('/');
    assert.deepEqual(res.body, {});
    assert.equal(res.headers['set-cookie'], undefined);
    assert.equal(store.calls.set, 0);
  });
});

describe('scopes', () => {
  it('saves only on change', async () => {
    const { store, server } = setup(async (ctx) => {
      if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.name = 'ada'));
      else await ctx.session.withLock((s) => void (s.name = 'ada')); // same value: no write
      ctx.body = 'ok';
    });
    const cookie = cookieHeader((await request(server).get('/set')).headers['set-cookie']);
    assert.equal(store.calls.set, 1);
    const again = await request(server).get('/same').set('Cookie', cookie);
    assert.equal(store.calls.set, 1);
    assert.equal(again.headers['set-cookie'], undefined, 'no cookie refresh without a save');
  });

  it('reads fresh under the lock: a scope sees what another request saved after this request began', async () => {
    const { server } = setup(async (ctx) => {
      if (ctx.path === '/inc') {
        ctx.body = await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1));
        return;
      }
      const before = await ctx.session.get(); // unlocked snapshot, cached
      await request(server).get('/inc').set('Cookie', ctx.get('Cookie'));
      const underLock = await ctx.session.withLock((s) => s.count);
      ctx.body = { before: before.count, underLock };
    });
    const cookie = cookieHeader((await request(server).get('/inc')).headers['set-cookie']);
    const res = await request(server).get('/check').set('Cookie', cookie);
    assert.deepEqual(res.body, { before: 1, underLock: 2 });
  });

  it('emptying the data destroys the session', async () => {
    const { store, server } = setup(async (ctx) => {
      if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.name = 'ada'));
      else await ctx.session.withLock((s) => void delete s.name);
      ctx.body = { id: ctx.session.id ?? null };
    });
    const first = await request(server).get('/set');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const res = await request(server).get('/empty').set('Cookie', cookie);
    assert.equal(res.body.id, null);
    assert.equal(store.calls.destroy, 1);
    assert.equal(await store.inner.get(first.body.id ?? /sid=([^;]+)/.exec(cookie)![1]!), undefined);
    assert.match(String(res.headers['set-cookie']), /sid=;/, 'the cookie is cleared');
  });

  it('get() is a read-only snapshot: writing to it throws, even nested', async () => {
    const { server } = setup(async (ctx) => {
      if (ctx.path === '/set') {
        await ctx.session.withLock((s) => void (s.nested = { list: [1] }));
        ctx.body = 'ok';
        return;
      }
      const snap = await ctx.session.get();
      const errors: string[] = [];
      for (const write of [
        () => ((snap as { count?: number }).count = 1),
        () => (snap.nested as { list: number[] }).list.push(2),
        () => delete (snap as { nested?: unknown }).nested,
      ]) {
        try {
          write();
        } catch (error) {
          errors.push((error as SessionError).message);
        }
      }
      ctx.body = { errors, snap };
    });
    const cookie = cookieHeader((await request(server).get('/set')).headers['set-cookie']);
    const res = await request(server).get('/').set('Cookie', cookie);
    assert.equal(res.body.errors.length, 3);
    assert.match(res.body.errors[0], /read-only snapshot.*withLock/);
    assert.deepEqual(res.body.snap, { nested: { list: [1] } });
  });

  it('get() reads the master at most once per request', async () => {
    const { store, server } = setup(async (ctx) => {
      if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.count = 1));
      else await Promise.all([ctx.session.get(), ctx.session.get(), ctx.session.get()]);
      ctx.body = 'ok';
    });
    const cookie = cookieHeader((await request(server).get('/set')).headers['set-cookie']);
    const before = store.calls.get;
    await request(server).get('/').set('Cookie', cookie);
    assert.equal(store.calls.get - before, 1);
    assert.equal(store.calls.set, 1);
  });

  it('a scope that throws saves nothing, releases the lock, and the next request gets it at once', async () => {
    const { store, locker, server } = setup(async (ctx) => {
      if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.count = 1));
      if (ctx.path === '/throw') {
        await ctx.session.withLock((s) => {
          s.count = 99;
          throw new Error('boom');
        });
      }
      ctx.body = await ctx.session.get();
    }, { lockTimeout: 60_000 });
    const cookie = cookieHeader((await request(server).get('/set')).headers['set-cookie']);
    const failed = await request(server).get('/throw').set('Cookie', cookie);
    assert.equal(failed.status, 500);
    assert.equal(locker.size, 0, 'no lock is held after the failed scope');
    const next = await request(server).get('/read').set('Cookie', cookie);
    assert.deepEqual(next.body, { count: 1 });
    assert.equal(store.calls.set, 1);
  });

  it('nested scopes of one handle do not deadlock; each nested scope is saved before its promise resolves', async () => {
    const { store, server } = setup(async (ctx) => {
      ctx.body = await ctx.session.withLock(async (outer) => {
        outer.count = 1;
        const inner = await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1));
        {
          await using s = await ctx.session.lock();
          s.name = 'nested';
        }
        return { inner, outer: outer.count };
      });
    }, { lockTimeout: 60_000 });
    const res = await request(server).get('/');
    assert.deepEqual(res.body, { inner: 2, outer: 2 });
    const cookie = cookieHeader(res.headers['set-cookie']);
    // The inner withLock and the inner lock() each changed the data and were saved when they
    // ended (under the lock the outer scope still holds); the outer changed nothing after them.
    assert.equal(store.calls.set, 2);
    const snap = await request(server).get('/').set('Cookie', cookie);
    assert.deepEqual(snap.body, { inner: 2, outer: 2 });
  });

  it('a nested scope that throws rolls back only its own changes', async () => {
    const { server } = setup(async (ctx) => {
      await ctx.session.withLock(async (s) => {
        s.count = 1;
        await ctx.session.withLock((inner) => {
          inner.count = 50;
          throw new Error('inner');
        }).catch(() => undefined);
      });
      ctx.body = await ctx.session.get();
    });
    const res = await request(server).get('/');
    assert.deepEqual(res.body, { count: 1 });
  });

  it('await using: leaving the block saves and releases', async () => {
    const { locker, server } = setup(async (ctx) => {
      {
        await using s = await ctx.session.lock();
        s.count = (s.count ?? 0) + 10;
      }
      ctx.body = { size: locker.size, snap: await ctx.session.get() };
    });
    const first = await request(server).get('/');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const second = await request(server).get('/').set('Cookie', cookie);
    assert.deepEqual(second.body, { size: 0, snap: { count: 20 } });
  });

  it('withLock returns what fn returns', async () => {
    const { server } = setup(async (ctx) => {
      ctx.body = { value: await ctx.session.withLock(async () => 'result') };
    });
    assert.deepEqual((await request(server).get('/')).body, { value: 'result' });
  });
});

describe('regenerate, destroy, touch', () => {
  it('regenerate gives a new sid with the same data and kills the old one', async () => {
    const { store, server } = setup(async (ctx) => {
      if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.name = 'ada'));
      if (ctx.path === '/regen') await ctx.session.regenerate();
      ctx.body = { id: ctx.session.id, data: await ctx.session.get() };
    });
    const first = await request(server).get('/set');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const regen = await request(server).get('/regen').set('Cookie', cookie);
    assert.notEqual(regen.body.id, first.body.id);
    assert.deepEqual(regen.body.data, { name: 'ada' });
    assert.equal(await store.inner.get(first.body.id), undefined, 'old sid destroyed');
    const old = await request(server).get('/').set('Cookie', cookie);
    assert.equal(old.status, 409, 'the old cookie no longer works: right after the move it answers 409 (retry with the new cookie)');
    assert.doesNotMatch(old.text, /ada/);
    const fresh = await request(server).get('/').set('Cookie', cookieHeader(regen.headers['set-cookie']));
    assert.deepEqual(fresh.body.data, { name: 'ada' });
  });

  it('destroy deletes the record and clears the cookie', async () => {
    const { store, server } = setup(async (ctx) => {
      if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.name = 'ada'));
      if (ctx.path === '/destroy') await ctx.session.destroy();
      ctx.body = { id: ctx.session.id ?? null };
    });
    const first = await request(server).get('/set');
    const res = await request(server).get('/destroy').set('Cookie', cookieHeader(first.headers['set-cookie']));
    assert.equal(res.body.id, null);
    assert.equal(await store.inner.get(first.body.id), undefined);
    assert.match(String(res.headers['set-cookie']), /sid=;.*expires=Thu, 01 Jan 1970/);
  });

  it('touch extends the expiry without changing data', async () => {
    const { store, server } = setup(async (ctx) => {
      if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.name = 'ada'));
      if (ctx.path === '/touch') await ctx.session.touch();
      ctx.body = 'ok';
    }, { ttl: 60_000 });
    const cookie = cookieHeader((await request(server).get('/set')).headers['set-cookie']);
    const res = await request(server).get('/touch').set('Cookie', cookie);
    assert.equal(store.calls.touch, 1);
    assert.equal(store.calls.set, 1);
    assert.match(String(res.headers['set-cookie']), /sid=[^;]+; path=\/; expires=/, 'the cookie expiry is renewed too');
  });

  it('rolling: every request that uses the session extends store and cookie expiry', async () => {
    const { store, server } = setup(async (ctx) => {
      if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.name = 'ada'));
      else await ctx.session.get();
      ctx.body = 'ok';
    }, { rolling: true });
    const cookie = cookieHeader((await request(server).get('/set')).headers['set-cookie']);
    const res = await request(server).get('/read').set('Cookie', cookie);
    assert.equal(store.calls.touch, 1);
    assert.ok(res.headers['set-cookie'], 'the cookie is re-sent');
  });
});

describe('absolute timeout', () => {
  it('absoluteTtl ends a session that long after creation however active it is; ttl stays the idle timeout', async () => {
    const { mock } = await import('node:test');
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    try {
      const expired: string[] = [];
      const { store, server, app } = (() => {
        const r = setup(async (ctx) => {
          ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)), id: ctx.session.id };
        }, { absoluteTtl: 10_000, ttl: 60_000 });
        return r;
      })();
      app.on('session:expired', () => expired.push('x'));
      const first = await request(server).get('/');
      const cookie = cookieHeader(first.headers['set-cookie']);
      assert.match(String(first.headers['set-cookie']), new RegExp(`expires=${new Date(1_000_000 + 10_000).toUTCString()}`), 'the cookie ends with the absolute timeout');
      mock.timers.tick(6000);
      assert.equal((await request(server).get('/').set('Cookie', cookie)).body.count, 2, 'still alive after 6 s of activity');
      mock.timers.tick(5000);
      const late = await request(server).get('/').set('Cookie', cookie);
      assert.equal(late.body.count, 1, 'past the absolute timeout: a fresh session');
      assert.notEqual(late.body.id, first.body.id);
      assert.equal(await store.inner.get(first.body.id), undefined, 'the old record is destroyed');
      assert.deepEqual(expired, ['x']);
    } finally {
      mock.timers.reset();
    }
  });
});
