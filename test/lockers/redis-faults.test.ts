/**
 * RedisLocker under faults and misuse, against a real redis-server behind a
 * loopback TCP proxy: every wait is bounded (the fused acquire-and-read by the
 * store timeout, `close()` by `closeTimeoutMs`), a lease has a maximum life,
 * given-up waiters leave nothing behind, no message carries a sid, and a
 * master that cannot refuse a late write is reported once.
 *
 * Nothing here asserts elapsed time: a bound is shown by the operation settling
 * while the fault is still on (the proxy black-holed), where the old code
 * waited for a much longer timeout, or for ever.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, test } from 'node:test';
import { createClient } from 'redis';
import { LockLostError, LockTimeoutError, MemoryStore, StoreError } from '../../src/index.js';
import { RedisLocker, type RedisLockerOptions } from '../../src/redis/locker.js';
import { RedisStore } from '../../src/redis/store.js';
import type { Store } from '../../src/contracts/store.js';
import { redisServer, skipReason, tcpProxy, type TcpProxy } from '../helpers/servers.js';

const server = await redisServer();
const skip = server ? false : skipReason('redis');
type Client = ReturnType<typeof createClient>;
const clients: Client[] = [];
const proxies: TcpProxy[] = [];
const lockers: RedisLocker[] = [];
after(async () => {
  await Promise.all(lockers.map((l) => l.close()));
  for (const c of clients) c.destroy();
  await Promise.all(proxies.map((p) => p.close()));
  await server?.stop();
});

async function connected(url: string): Promise<Client> {
  const c = createClient({ url }) as Client;
  c.on('error', () => {}); // black-holed connections report errors; the tests look at results
  await c.connect();
  clients.push(c);
  return c;
}
function locker(options: RedisLockerOptions): RedisLocker {
  const l = new RedisLocker(options);
  lockers.push(l);
  return l;
}
/** A client that reaches Redis through a proxy the test can black-hole. */
async function proxied(): Promise<{ client: Client; proxy: TcpProxy }> {
  const proxy = await tcpProxy(Number(new URL(server!.url).port));
  proxies.push(proxy);
  return { client: await connected(`redis://127.0.0.1:${proxy.port}`), proxy };
}

/** A sid shaped like the middleware's (43 base64url characters), unique per call. */
let seq = 0;
const sid = (): string => `Fx${process.pid.toString(36)}${(++seq).toString(36)}`.padEnd(43, 'Q');

/** Every text an error carries: message, stack and the causes'. */
function texts(error: unknown): string {
  const parts: string[] = [];
  for (
    let e = error as { message?: unknown; stack?: unknown; cause?: unknown } | undefined, i = 0;
    e && i < 5;
    e = e.cause as typeof e, i++
  ) {
    parts.push(String(e.message), String(e.stack));
  }
  return parts.join('\n');
}

/** Collect the process warnings with `code` until `stop()`. */
function warnings(code: string): { list: Error[]; stop(): void } {
  const list: Error[] = [];
  const listener = (w: Error & { code?: string }): void => {
    if (w.code === code) list.push(w);
  };
  process.on('warning', listener);
  return { list, stop: () => process.off('warning', listener) };
}

const LONG = 20_000;

describe('RedisLocker under faults', { skip }, () => {
  test('storeTimeoutMs bounds the fused acquire-and-read: a black-holed Redis gives a StoreError (503) without the sid', {
    timeout: LONG,
  }, async () => {
    const { client, proxy } = await proxied();
    // Every other bound is far away: only storeTimeoutMs can end this acquire.
    const store = new RedisStore({ client, timeoutMs: 600_000 });
    const l = locker({ client, commandTimeoutMs: 600_000 });
    const key = sid();
    proxy.blackhole();
    const error = await l.acquire(key, { timeoutMs: 600_000, store, storeTimeoutMs: 300 }).then(
      () => assert.fail('acquired through a black hole'),
      (e: unknown) => e,
    );
    // Settled while the proxy is still black-holed (pass() comes only now).
    proxy.pass();
    assert.ok(error instanceof StoreError, `got ${String(error)}`);
    assert.equal(error.status, 503);
    assert.ok(!texts(error).includes(key), `the error names the sid: ${error.message}`);
  });

  test("the store's own timeoutMs bounds the fused acquire-and-read too", { timeout: LONG }, async () => {
    const { client, proxy } = await proxied();
    const store = new RedisStore({ client, timeoutMs: 300 });
    const l = locker({ client, commandTimeoutMs: 600_000 });
    proxy.blackhole();
    await assert.rejects(l.acquire(sid(), { timeoutMs: 600_000, store }), (e: unknown) => e instanceof StoreError && e.status === 503);
    proxy.pass();
  });

  test('a black-holed lock acquire (no fast path) fails with a message that names neither the sid nor its lock key', {
    timeout: LONG,
  }, async () => {
    const { client, proxy } = await proxied();
    const l = locker({ client, commandTimeoutMs: 300 });
    const key = sid();
    proxy.blackhole();
    const error = await l.acquire(key, { timeoutMs: 600_000 }).then(
      () => assert.fail('acquired'),
      (e: unknown) => e,
    );
    proxy.pass();
    assert.ok(error instanceof StoreError);
    assert.match(error.message, /^\[redis\] lock acquire .*failed for a lock key/);
    assert.ok(!texts(error).includes(key), error.message);
  });

  test('close() settles when the subscriber connection is stuck connecting (new connections black-holed)', { timeout: LONG }, async () => {
    const base = await connected(server!.url);
    const hole = await tcpProxy(Number(new URL(server!.url).port));
    proxies.push(hole);
    hole.blackhole();
    // The subscriber is `client.duplicate()`: that one connection goes through the black hole.
    let duplicated!: () => void;
    const subscriberCreated = new Promise<void>((resolve) => (duplicated = resolve));
    const client = new Proxy(base, {
      get(target, prop) {
        if (prop === 'duplicate') {
          return () => {
            const sub = createClient({ url: `redis://127.0.0.1:${hole.port}` });
            sub.on('error', () => {});
            duplicated();
            return sub;
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const key = sid();
    const holder = await locker({ client: base }).acquire(key, { timeoutMs: LONG });
    const l = new RedisLocker({ client, pollMinMs: 600_000, pollMaxMs: 600_000 });
    const waiting = l.acquire(key, { timeoutMs: 600_000 }).then(
      () => assert.fail('acquired'),
      (e: unknown) => e,
    );
    await subscriberCreated; // the first contended acquire opened the subscriber: it can never connect
    await l.close();
    const error = await waiting;
    assert.equal((error as { code?: string }).code, 'ERR_SESSION_CLOSED');
    await holder.release();
  });

  test('a lease never released is reported lost after maxLeaseMs, and the next holder gets the lock', { timeout: LONG }, async () => {
    const seen = warnings('KOA_LOCKED_SESSION_MAX_LEASE');
    try {
      const client = await connected(server!.url);
      const l = locker({ client, leaseMs: 200, renewEveryMs: 40, maxLeaseMs: 500 });
      const key = sid();
      const store = new RedisStore({ client });
      await store.set(key, '{"n":1}', 60_000);
      // A `lock()` without `await using`: acquired, never disposed.
      const forgotten = await l.acquire(key, { timeoutMs: LONG, store });
      const aborted = once(forgotten.signal, 'abort');
      // Renewal would keep this lock for ever: only the maximum life lets the next holder in.
      const next = await locker({ client }).acquire(key, { timeoutMs: LONG / 2 });
      assert.equal(forgotten.lost, true);
      await aborted;
      assert.ok(forgotten.signal.reason instanceof LockLostError);
      assert.equal(l.heldKeys, 0, 'the lost lease no longer counts as held');
      // Its fenced save is refused: the next holder owns the record.
      await assert.rejects(forgotten.store!.write(key, '{"n":2}', 1, 60_000, 0), LockLostError);
      assert.deepEqual(await store.read(key), { value: '{"n":1}', version: 0 });
      await next.release();
      assert.equal(seen.list.length, 1, 'warned once');
      assert.match(seen.list[0]!.message, /maxLeaseMs/);
      assert.ok(!seen.list[0]!.message.includes(key));
    } finally {
      seen.stop();
    }
  });

  test('maxLeaseMs is validated and defaults to 60 s (or twice a longer leaseMs)', async () => {
    const client = await connected(server!.url);
    assert.equal(locker({ client }).maxLeaseMs, 60_000);
    assert.equal(locker({ client, leaseMs: 45_000 }).maxLeaseMs, 90_000);
    assert.throws(
      () => new RedisLocker({ client, leaseMs: 1000, maxLeaseMs: 1000 }),
      /Expected RedisLocker `maxLeaseMs` to be above `leaseMs` \(1000\), got `1000`/,
    );
    assert.throws(() => new RedisLocker({ client, maxLeaseMs: -5 }), /`maxLeaseMs`.*-5/);
  });

  test('2,000 waiters that timed out or aborted behind a lock that is never released leave no per-key state', {
    timeout: LONG,
  }, async () => {
    const client = await connected(server!.url);
    const key = sid();
    const holder = await locker({ client, leaseMs: 60_000 }).acquire(key, { timeoutMs: LONG });
    const l = locker({ client, pollMinMs: 5, pollMaxMs: 20 });
    const results = await Promise.allSettled(
      Array.from({ length: 2000 }, (_, i) => {
        if (i % 2) return l.acquire(key, { timeoutMs: 1 + (i % 7) });
        const controller = new AbortController();
        const p = l.acquire(key, { timeoutMs: LONG, signal: controller.signal });
        setImmediate(() => controller.abort(new Error('client went away')));
        return p;
      }),
    );
    assert.equal(results.filter((r) => r.status === 'rejected').length, 2000);
    assert.ok(
      results.every(
        (r, i) => r.status === 'rejected' && (i % 2 ? r.reason instanceof LockTimeoutError : /client went away/.test(String(r.reason))),
      ),
    );
    assert.equal(l.size, 0, 'no key with waiters left');
    assert.equal(l.heldKeys, 0);
    await holder.release();
    // The key is free again at once: no phantom waiter or holder was left behind.
    const lease = await l.acquire(key, { timeoutMs: 5000 });
    await lease.release();
    assert.equal(l.size, 0);
  });

  test('an unversioned custom master is reported once; versioned masters (any RedisStore client, MemoryStore) are not', async () => {
    const seen = warnings('KOA_LOCKED_SESSION_UNFENCED_MASTER');
    try {
      const client = await connected(server!.url);
      const other = await connected(server!.url);
      const l = locker({ client });
      const memory = new MemoryStore();
      for (const store of [new RedisStore({ client }), new RedisStore({ client: other }), memory]) {
        const lease = await l.acquire(sid(), { timeoutMs: LONG, store });
        await lease.release();
      }
      await memory.close();
      assert.equal(seen.list.length, 0, 'a versioned master refuses late writes itself');
      const records = new Map<string, string>();
      const custom: Store = {
        name: 'custom',
        get: async (k) => records.get(k),
        set: async (k, v) => void records.set(k, v),
        destroy: async (k) => void records.delete(k),
      };
      for (let i = 0; i < 3; i++) {
        const lease = await l.acquire(sid(), { timeoutMs: LONG, store: custom });
        await lease.release();
      }
      // process.emitWarning is delivered on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(seen.list.length, 1, 'warned once per locker');
      assert.match(seen.list[0]!.message, /cannot fence the master store "custom".*read\(\) and write\(\)/);
    } finally {
      seen.stop();
    }
  });
});
