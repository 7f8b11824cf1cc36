/**
 * RedisStore's own commands skip node-redis's client-wide command timeout:
 * node-redis 6 creates an `AbortSignal.timeout(5000)` per command by default
 * (a timer that outlives the command and is promoted by the GC), while the
 * store already bounds every command with its `timeoutMs`. Checked on a
 * single-node and a cluster client, for plain commands and the Lua write.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createClient, createCluster } from 'redis';
import { RedisStore } from '../../src/redis/store.js';
import { redisServer, skipReason } from '../helpers/servers.js';
import { CLUSTER_KIND, redisCluster } from '../helpers/redis-cluster.js';

const server = await redisServer();
const cluster = await redisCluster();
after(async () => {
  await server?.stop();
  await cluster?.stop();
});

/** How many `AbortSignal.timeout()` calls `run` makes. */
async function abortTimers(run: () => Promise<unknown>): Promise<number> {
  const original = AbortSignal.timeout;
  let count = 0;
  AbortSignal.timeout = (ms: number) => {
    count++;
    return original.call(AbortSignal, ms);
  };
  try {
    await run();
  } finally {
    AbortSignal.timeout = original;
  }
  return count;
}

async function exercise(store: RedisStore, key: string): Promise<void> {
  assert.equal(await store.write(key, 'a', 1, 60_000, null), true); // SET NX
  assert.deepEqual(await store.read(key), { value: 'a', version: 1 }); // GET
  assert.equal(await store.write(key, 'b', 2, 60_000, 1), true); // EVALSHA (EVAL after NOSCRIPT)
  await store.touch(key, 60_000); // PEXPIRE
  await store.set(key, 'c', 60_000); // SET
  await store.destroy(key); // DEL
}

describe("RedisStore turns node-redis's per-command timeout off for its own commands", () => {
  it('single node: no AbortSignal timer per command, while the raw client makes one', {
    skip: server ? false : skipReason('redis'),
  }, async () => {
    const client = await createClient({ url: server!.url }).connect();
    try {
      assert.ok((await abortTimers(() => client.get('control'))) >= 1, 'control: the raw client creates a timer per command');
      const store = new RedisStore({ client, prefix: 'no-abort:' });
      assert.equal(await abortTimers(() => exercise(store, 'k')), 0);
      assert.ok((await abortTimers(() => client.get('control'))) >= 1, 'the client passed in keeps its own defaults');
    } finally {
      await client.close();
    }
  });

  it('cluster: the same through the cluster client', { skip: cluster ? false : skipReason(CLUSTER_KIND) }, async () => {
    const client = await createCluster({ rootNodes: cluster!.urls.map((url) => ({ url })) }).connect();
    try {
      assert.ok((await abortTimers(() => client.get('control'))) >= 1, 'control: the raw cluster client creates a timer per command');
      const store = new RedisStore({ client, prefix: 'no-abort:' });
      assert.equal(await abortTimers(() => exercise(store, 'k')), 0);
    } finally {
      await client.close();
    }
  });
});
