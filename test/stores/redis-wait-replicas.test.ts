/**
 * RedisStore `waitForReplicas` on real servers: a primary with no replica (so
 * WAIT can never be satisfied) and a primary with one replica started as
 * `--replicaof`. A save is acknowledged only once the replica confirmed it
 * (it is on the replica when the call resolves); a save no replica confirmed
 * in time rejects with a 503 `StoreError`, outcome `unknown` (it is on the
 * primary); a write the version refused never waits. Both through RedisStore
 * itself and through RedisLocker's fenced write on the same client, with
 * node-redis and with ioredis. Bad values fail fast with a TypeError.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { StoreError } from '../../src/errors.js';
import { RedisLocker } from '../../src/redis/locker.js';
import { unwrap } from '../../src/contracts/envelope.js';
import { RedisStore } from '../../src/redis/store.js';
import { redisServer, skipReason, waitUntil, type StartedServer } from '../helpers/servers.js';

const lonely = (await redisServer({ useEnv: false })) as StartedServer | undefined;
const primary = (await redisServer({ useEnv: false })) as StartedServer | undefined;
const replica = primary
  ? ((await redisServer({ useEnv: false, extraArgs: ['--replicaof', '127.0.0.1', String(primary.port)] })) as StartedServer)
  : undefined;
const skip = lonely && primary && replica ? false : skipReason('redis');

const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  await Promise.all(closers.map((close) => close().catch(() => {})));
  await Promise.all([lonely, replica, primary].map((s) => s?.stop()));
});

async function client(server: StartedServer) {
  const c = createClient({ url: server.url });
  c.on('error', () => {});
  await c.connect();
  closers.push(() => c.close());
  return c;
}

async function ioredis(server: StartedServer): Promise<Redis> {
  const c = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
  closers.push(async () => c.disconnect());
  await c.connect();
  return c;
}

const TTL = 60_000;
const unconfirmed = (error: unknown): boolean => {
  assert.ok(error instanceof StoreError, `a StoreError, got ${String(error)}`);
  assert.equal(error.status, 503);
  assert.equal(error.outcome, 'unknown');
  assert.match(error.message, /0 of the 1 replica\(s\) asked for confirmed it within 100 ms \(waitForReplicas\)/);
  return true;
};

describe('RedisStore waitForReplicas', { skip }, () => {
  it('rejects bad values with a TypeError naming the option', async () => {
    const c = await client(lonely!);
    assert.throws(
      () => new RedisStore({ client: c, waitForReplicas: -1 }),
      /Expected RedisStore `waitForReplicas` to be a non-negative integer.*got `-1`/,
    );
    assert.throws(() => new RedisStore({ client: c, waitForReplicas: 1.5 }), /`waitForReplicas`/);
    assert.throws(() => new RedisStore({ client: c, waitForReplicas: '1' as unknown as number }), /`waitForReplicas`/);
    assert.throws(
      () => new RedisStore({ client: c, waitForReplicas: 1, timeoutMs: 1000, waitForReplicasTimeoutMs: 1000 }),
      /`waitForReplicasTimeoutMs` to be below timeoutMs \(1000 ms\)/,
    );
    assert.throws(
      () => new RedisStore({ client: c, waitForReplicas: 1, waitForReplicasTimeoutMs: 0 }),
      /`waitForReplicasTimeoutMs` to be a positive number of ms/,
    );
    const store = new RedisStore({ client: c, waitForReplicas: 2 });
    assert.equal(store.waitForReplicas, 2);
    assert.equal(store.waitForReplicasTimeoutMs, 1000, 'default: half of timeoutMs');
  });

  for (const kind of ['node-redis', 'ioredis'] as const) {
    it(`${kind}: with no replica to confirm it, every save is a 503 with outcome unknown, and is on the primary`, async () => {
      const c = kind === 'node-redis' ? await client(lonely!) : await ioredis(lonely!);
      const store = new RedisStore({ client: c, waitForReplicas: 1, waitForReplicasTimeoutMs: 100 });
      const key = `lonely-${kind}`;
      await assert.rejects(store.write(key, 'v1', 1, TTL, null), unconfirmed); // SET NX
      assert.equal((await store.read(key))?.value, 'v1', 'on the primary');
      await assert.rejects(store.write(key, 'v2', 2, TTL, 1), unconfirmed); // the versioned script
      assert.equal((await store.read(key))?.version, 2);
      assert.equal(await store.write(key, 'stale', 2, TTL, 1), false, 'a write the version refused changed nothing: no wait, no error');
      await assert.rejects(store.set(`${key}-plain`, 'x', TTL), unconfirmed);
      await assert.rejects(store.touch(key, TTL), unconfirmed);
      await assert.rejects(store.destroy(key), unconfirmed);
      await store.destroy(key); // nothing left to delete: nothing to confirm
    });
  }

  it("RedisLocker's fenced write on the same client waits too: unconfirmed is a 503 outcome unknown, the lock is released with it", async () => {
    const c = await client(lonely!);
    const store = new RedisStore({ client: c, waitForReplicas: 1, waitForReplicasTimeoutMs: 100 });
    const locker = new RedisLocker({ client: c });
    closers.push(() => locker.close());
    const key = 'fenced-lonely';
    const lease = await locker.acquire(key, { timeoutMs: 1000, store });
    assert.ok(lease.store, 'the fast path (one client)');
    lease.releaseWithNextWrite();
    await assert.rejects(lease.store.write(key, 'v1', 1, TTL, 'newer'), unconfirmed);
    await lease.release();
    assert.equal((await store.read(key))?.value, 'v1', 'written on the primary');
    assert.equal(await c.get(locker.lockKey(key)), null, 'the write released the lock in the same script');
  });

  for (const kind of ['node-redis', 'ioredis'] as const) {
    it(`${kind}: with a replica, a save resolves only once the replica has it (store and fenced write)`, async () => {
      const onReplica = await client(replica!);
      await waitUntil(async () => String(await onReplica.info('replication')).includes('master_link_status:up'), {
        what: 'the replica in sync',
      });
      const c = kind === 'node-redis' ? await client(primary!) : await ioredis(primary!);
      const store = new RedisStore({ client: c, waitForReplicas: 1, waitForReplicasTimeoutMs: 1000 });
      const key = `replicated-${kind}`;
      for (let version = 1; version <= 20; version++) {
        assert.equal(await store.write(key, `v${version}`, version, TTL, version === 1 ? null : version - 1), true);
        // Read on the replica right after the acknowledgement: WAIT made it be there.
        assert.equal(unwrap(String(await onReplica.get(store.keyFor(key)))).version, version);
      }
      const locker = new RedisLocker({ client: c });
      closers.push(() => locker.close());
      const lease = await locker.acquire(key, { timeoutMs: 1000, store });
      assert.ok(lease.store);
      assert.equal(await lease.store.write(key, 'fenced', 21, TTL, 20), true);
      assert.equal(unwrap(String(await onReplica.get(store.keyFor(key)))).value, 'fenced');
      await lease.release();
    });
  }
});
