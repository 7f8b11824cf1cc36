/**
 * The HTTP-level guarantees with PostgreSQL: PostgresStore as master with
 * PostgresLocker (the lock is the row), as master with the in-process lock,
 * and as a mirror of a Redis master. Overlapping increments end at exactly N;
 * a hand-written bad record is a fresh session; lock_timeout is a 503; a dead
 * server is a 503 with nothing half-written, and the app recovers when it comes
 * back (a cut connection, a restarted server); a save torn mid-write leaves the
 * old or the new record; login, logout and the user index work under the lock.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { createClient } from 'redis';
import request from 'supertest';
import { PostgresLocker, PostgresStore, RedisLocker, RedisStore, StoreError, type SessionOptions } from '../src/index.js';
import { cookieHeader, makeApp, sidOf } from './helpers/app.js';
import { freshDatabase, postgresServer } from './helpers/postgres-server.js';
import { redisServer, skipReason, tcpProxy, type StartedServer } from './helpers/servers.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
    blob?: string;
  }
}

const server = await postgresServer();
const skip = server ? false : skipReason('postgres');
const db = server ? await freshDatabase(server, 'http') : undefined;
const pools: pg.Pool[] = [];
const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => {});
  for (const pool of pools) await pool.end().catch(() => {});
  await db?.drop();
  await server?.stop();
});

/** A pool on the test database (or through `port`, a proxy), with the 'error' listener every app needs. */
function newPool(options: pg.PoolConfig = {}, port?: number): pg.Pool {
  const url = new URL(db!.url);
  if (port !== undefined) url.port = String(port);
  const pool = new pg.Pool({ connectionString: url.toString(), max: 10, connectionTimeoutMillis: 2000, ...options });
  pool.on('error', () => {}); // idle connections cut by the faults below
  pools.push(pool);
  return pool;
}
const table = (): string => `s_${randomUUID().slice(0, 8)}`;

const N = 200;
const increment = async (ctx: import('koa').Context): Promise<void> => {
  ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)), id: ctx.session.id ?? null };
};

async function overlapping(options: SessionOptions, n = N): Promise<{ sid: string; counts: number[] }> {
  const http = makeApp(options, increment).callback();
  const first = await request(http).get('/');
  const cookie = cookieHeader(first.headers['set-cookie']);
  const rest = await Promise.all(Array.from({ length: n - 1 }, () => request(http).get('/').set('Cookie', cookie)));
  assert.ok(
    rest.every((r) => r.status === 200),
    `all 200, got ${[...new Set(rest.map((r) => r.status))].join(',')}`,
  );
  return { sid: sidOf(first), counts: [first.body.count, ...rest.map((r) => r.body.count)] };
}

describe('PostgreSQL over HTTP', { skip }, () => {
  it(`PostgresStore + PostgresLocker: ${N} overlapping increments end at exactly ${N}, each response distinct, using one connection`, async () => {
    const pool = newPool();
    const master = new PostgresStore({ pool, table: table() });
    const { sid, counts } = await overlapping({
      master,
      locker: new PostgresLocker({ store: master }),
      lockTimeout: 120_000,
      storeTimeout: 30_000,
    });
    assert.equal(new Set(counts).size, N);
    assert.equal(JSON.parse((await master.get(sid))!).count, N);
    assert.ok(pool.totalCount <= 2, `a hot session queues in process: ${pool.totalCount} connections were opened`);
  });

  it(`PostgresStore with the in-process lock: ${N} overlapping increments end at exactly ${N}`, async () => {
    const master = new PostgresStore({ pool: newPool(), table: table() });
    const { sid, counts } = await overlapping({ master, lockTimeout: 120_000, storeTimeout: 30_000 });
    assert.equal(new Set(counts).size, N);
    assert.equal(JSON.parse((await master.get(sid))!).count, N);
  });

  it('a record written by hand that is not valid serialized data: a fresh session plus session:invalid, never a crash', async () => {
    const pool = newPool();
    const master = new PostgresStore({ pool, table: table() });
    const invalid: string[] = [];
    const app = makeApp({ master, locker: new PostgresLocker({ pool }) }, increment);
    app.on('session:invalid', (e: { reason: string }) => invalid.push(e.reason));
    const http = app.callback();
    const first = await request(http).get('/');
    const sid = sidOf(first);
    await pool.query(`UPDATE ${master.table} SET value = '{not json' WHERE sid = $1`, [sid]);
    const res = await request(http).get('/').set('Cookie', cookieHeader(first.headers['set-cookie']));
    assert.equal(res.status, 200);
    assert.equal(res.body.count, 1, 'a fresh session');
    assert.notEqual(res.body.id, sid);
    assert.deepEqual(invalid, ['bad-record']);
  });

  it('lock_timeout: a session held by another process answers 503 with Retry-After, then works once it is released', async () => {
    const pool = newPool();
    const master = new PostgresStore({ pool, table: table() });
    const http = makeApp({ master, locker: new PostgresLocker({ store: master }), lockTimeout: 300 }, increment).callback();
    const first = await request(http).get('/');
    const cookie = cookieHeader(first.headers['set-cookie']);
    // "Another process": its own pool and locker, holding the row's lock in its transaction.
    const other = new PostgresStore({ pool: newPool(), table: master.table.replaceAll('"', '') });
    const held = await new PostgresLocker({ store: other }).acquire(sidOf(first), { timeoutMs: 5000, store: other });
    const blocked = await request(http).get('/').set('Cookie', cookie);
    assert.equal(blocked.status, 503);
    assert.equal(blocked.headers['retry-after'], '1');
    await held.release();
    const after = await request(http).get('/').set('Cookie', cookie);
    assert.equal(after.status, 200);
    assert.equal(after.body.count, 2, 'the timed-out request applied nothing');
  });

  it('a scope that throws writes nothing, and its lock is free at once for the next request', async () => {
    const pool = newPool();
    const master = new PostgresStore({ pool, table: table() });
    const http = makeApp({ master, locker: new PostgresLocker({ store: master }), lockTimeout: 2000 }, async (ctx) => {
      if (ctx.path === '/throw') {
        await ctx.session.withLock((s) => {
          s.count = 1000;
          throw new Error('the handler failed');
        });
      }
      await increment(ctx);
    }).callback();
    const first = await request(http).get('/');
    const cookie = cookieHeader(first.headers['set-cookie']);
    assert.equal((await request(http).get('/throw').set('Cookie', cookie)).status, 500);
    const next = await request(http).get('/').set('Cookie', cookie);
    assert.equal(next.status, 200);
    assert.equal(next.body.count, 2, 'the thrown scope changed nothing');
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`,
    );
    assert.equal(rows[0].n, 0, 'no transaction left open');
  });

  it('a pool with no free connection: lockTimeout bounds the wait (503), never a hang', async () => {
    const pool = newPool({ max: 1 });
    const master = new PostgresStore({ pool, table: table() });
    const locker = new PostgresLocker({ store: master });
    const http = makeApp({ master, locker, lockTimeout: 300 }, increment).callback();
    const first = await request(http).get('/');
    const busy = await pool.connect(); // the only connection
    try {
      const res = await request(http).get('/').set('Cookie', cookieHeader(first.headers['set-cookie']));
      assert.equal(res.status, 503);
    } finally {
      busy.release();
    }
  });

  it('login, logout and the user index work under the row lock', async () => {
    const pool = newPool();
    const master = new PostgresStore({ pool, table: table() });
    const app = makeApp({ master, locker: new PostgresLocker({ store: master }) }, async (ctx) => {
      if (ctx.path === '/login') await ctx.session.login({ id: 'u1', name: 'Ada' });
      else if (ctx.path === '/logout') await ctx.session.logout();
      else if (ctx.path === '/list') ctx.body = { sessions: (await ctx.session.sessionsOf({ id: 'u1', name: 'Ada' })).length };
      else await increment(ctx);
      ctx.body ??= 'ok';
    });
    const http = app.callback();
    const a = await request(http).get('/login');
    const b = await request(http).get('/login');
    assert.equal(a.status, 200);
    assert.equal((await request(http).get('/list')).body.sessions, 2);
    const out = await request(http).get('/logout').set('Cookie', cookieHeader(a.headers['set-cookie']));
    assert.equal(out.status, 200);
    assert.equal(await master.get(sidOf(a)), undefined, 'the logged-out session is gone');
    assert.equal((await request(http).get('/list')).body.sessions, 1);
    assert.notEqual(await master.get(sidOf(b)), undefined);
  });

  it('server down (connections cut, black-holed): 503 StoreError within storeTimeout, nothing half-written; back up, it works without an app restart', async () => {
    const proxy = await tcpProxy(Number(new URL(db!.url).port));
    closers.push(() => proxy.close());
    const pool = newPool({ connectionTimeoutMillis: 500 }, proxy.port);
    const master = new PostgresStore({ pool, table: table(), timeoutMs: 1000 });
    const errors: unknown[] = [];
    const app = makeApp({ master, locker: new PostgresLocker({ store: master }), storeTimeout: 1000, lockTimeout: 1000 }, increment);
    app.on('error', (e) => errors.push(e));
    const http = app.callback();
    const first = await request(http).get('/');
    assert.equal(first.status, 200);
    const cookie = cookieHeader(first.headers['set-cookie']);

    proxy.blackhole();
    proxy.cut();
    const down = await request(http).get('/').set('Cookie', cookie);
    assert.equal(down.status, 503);
    assert.ok(
      errors.some((e) => e instanceof StoreError || (e as Error).name === 'LockTimeoutError'),
      'a StoreError reached Koa',
    );
    const fresh = await request(http).get('/');
    assert.equal(fresh.status, 503);
    assert.equal(fresh.headers['set-cookie'], undefined, 'no cookie for a session that was not saved');

    proxy.pass();
    const back = await request(http).get('/').set('Cookie', cookie);
    assert.equal(back.status, 200);
    assert.equal(back.body.count, 2, 'the failed requests applied nothing; the session goes on');
    assert.equal(back.body.id, sidOf(first));
  });

  it('a save torn by a cut connection leaves the old or the new record, and the session goes on', async () => {
    const proxy = await tcpProxy(Number(new URL(db!.url).port));
    closers.push(() => proxy.close());
    const master = new PostgresStore({ pool: newPool({}, proxy.port), table: table(), timeoutMs: 2000 });
    const http = makeApp({ master, locker: new PostgresLocker({ store: master }), storeTimeout: 2000 }, async (ctx) => {
      ctx.body = {
        count: await ctx.session.withLock((s) => {
          s.blob = 'x'.repeat(200_000); // a write spanning many TCP chunks
          return (s.count = (s.count ?? 0) + 1);
        }),
      };
    }).callback();
    const first = await request(http).get('/');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const sid = sidOf(first);
    proxy.cutOnNextWrite((chunk) => chunk.includes('UPDATE'));
    const torn = await request(http).get('/').set('Cookie', cookie);
    assert.equal(torn.status, 503);
    const stored = JSON.parse((await master.get(sid))!) as { count: number; blob: string };
    assert.ok(stored.count === 1 || stored.count === 2, `old or new record, got count ${stored.count}`);
    assert.equal(stored.blob.length, 200_000, 'never a torn record');
    const next = await request(http).get('/').set('Cookie', cookie);
    assert.equal(next.status, 200);
    assert.equal(next.body.count, stored.count + 1);
  });

  it('PostgreSQL restarted: 503s while it is down, then the same app recovers', {
    skip: server?.external ? 'PG_URL server: not ours to restart' : false,
  }, async () => {
    const started = server as StartedServer;
    const pool = newPool({ connectionTimeoutMillis: 500 });
    const master = new PostgresStore({ pool, table: table(), timeoutMs: 1000 });
    const http = makeApp(
      { master, locker: new PostgresLocker({ store: master }), storeTimeout: 1000, lockTimeout: 1000 },
      increment,
    ).callback();
    const first = await request(http).get('/');
    const cookie = cookieHeader(first.headers['set-cookie']);
    await started.halt();
    try {
      assert.equal((await request(http).get('/').set('Cookie', cookie)).status, 503);
    } finally {
      await started.resume();
    }
    let back = await request(http).get('/').set('Cookie', cookie);
    // Pooled connections broken by the restart fail once each as they are found dead.
    for (let i = 0; i < 20 && back.status === 503; i++) back = await request(http).get('/').set('Cookie', cookie);
    assert.equal(back.status, 200);
    assert.equal(back.body.count, 2);
  });
});

const redis = server ? await redisServer() : undefined;
describe('PostgresStore as a mirror of a Redis master', { skip: skip || (redis ? false : skipReason('redis')) }, () => {
  it(`${N} overlapping increments: the mirror ends with the master's data; destroy reaches it`, async () => {
    const client = await createClient({ url: redis!.url }).connect();
    closers.push(() => redis!.stop());
    closers.push(async () => client.destroy());
    const locker = new RedisLocker({ client });
    closers.push(() => locker.close());
    const master = new RedisStore({ client, prefix: `m-${randomUUID().slice(0, 8)}:` });
    const mirror = new PostgresStore({ pool: newPool(), table: table() });
    const http = makeApp({ master, mirrors: [mirror], locker, lockTimeout: 120_000, storeTimeout: 30_000 }, async (ctx) => {
      if (ctx.path === '/destroy') await ctx.session.destroy();
      else await increment(ctx);
      ctx.body ??= 'ok';
    }).callback();
    const first = await request(http).get('/');
    const cookie = cookieHeader(first.headers['set-cookie']);
    const sid = sidOf(first);
    const rest = await Promise.all(Array.from({ length: N - 1 }, () => request(http).get('/').set('Cookie', cookie)));
    assert.ok(rest.every((r) => r.status === 200));
    assert.equal(await mirror.get(sid), await master.get(sid));
    assert.equal(JSON.parse((await mirror.get(sid))!).count, N);
    await request(http).get('/destroy').set('Cookie', cookie);
    assert.equal(await mirror.get(sid), undefined);
  });
});
