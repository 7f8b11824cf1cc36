/**
 * Replica (master + mirrors) is itself a Store: the shared conformance suite
 * runs on a Replica of a MemoryStore master with a MemoryStore mirror, and on
 * one with a RedisStore master; then what only a Replica does (mirrors get
 * every write, close() waits for background mirror writes).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createClient } from 'redis';
import { Replica, type MirrorError } from '../../src/core/replica.js';
import { MemoryStore } from '../../src/memory/store.js';
import { RedisStore } from '../../src/redis/store.js';
import type { Store } from '../../src/contracts/store.js';
import { redisServer, skipReason } from '../helpers/servers.js';
import { storeConformance } from './conformance.js';

const reports: MirrorError[] = [];
const onMirrorError = (report: MirrorError) => reports.push(report);
const mirror = new MemoryStore();

storeConformance('replica (memory master + memory mirror)', () => new Replica(new MemoryStore(), [mirror], { onMirrorError }), {
  extraTests: (ctx) => {
    it('every write reaches the mirror too, with its version', async () => {
      const replica = ctx.store as Replica;
      const k = ctx.key('mirrored');
      assert.equal(await replica.write(k, 'a', 1, 60_000, null), true);
      assert.deepEqual(await mirror.read(k), { value: 'a', version: 1 });
      assert.equal(await replica.write(k, undefined, 2, 60_000, 1), true);
      assert.deepEqual(await mirror.read(k), { value: undefined, version: 2 }, 'the delete left a tombstone on the mirror');
      assert.deepEqual(reports, []);
    });
  },
});

const server = await redisServer();
let client: { close(): Promise<void> } | undefined;
after(async () => {
  await client?.close();
  await server?.stop();
});
storeConformance(
  'replica (redis master + memory mirror)',
  async () => {
    const connected = await createClient({ url: server!.url }).connect();
    client = connected;
    return new Replica(new RedisStore({ client: connected, prefix: `replica-${process.pid}:` }), [new MemoryStore()], { onMirrorError });
  },
  { skip: server ? false : skipReason('redis') },
);

describe('Replica', () => {
  it('close() waits for background mirror writes, then closes the master and the mirrors', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slowMirror = new MemoryStore();
    const closed: string[] = [];
    const slow: Store = {
      name: 'slow',
      get: (k) => slowMirror.get(k),
      set: async (k, v, ttl) => {
        await gate;
        await slowMirror.set(k, v, ttl);
      },
      destroy: (k) => slowMirror.destroy(k),
      close: async () => {
        closed.push('slow');
      },
    };
    const master = new MemoryStore();
    const replica = new Replica(master, [slow], { onMirrorError, mode: 'background' });
    await replica.set('k', 'v', 60_000);
    assert.equal(await slowMirror.get('k'), undefined, 'the mirror write is still held');
    let done = false;
    const closing = replica.close().then(() => (done = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(done, false, 'close() waits for the held mirror write');
    release();
    await closing;
    assert.equal(await slowMirror.get('k'), 'v', 'the mirror write landed before close() resolved');
    assert.deepEqual(closed, ['slow']);
  });

  it('a store that bounds itself within storeTimeout is not bounded again; a slower one is bounded by storeTimeout', async () => {
    const hang = new Promise<never>(() => {});
    const hanging = (timeoutMs?: number): Store => ({
      name: 'hanging',
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      get: () => hang,
      set: () => hang,
      destroy: () => hang,
    });
    // No own bound, or a longer one than storeTimeout: the replica's deadline applies.
    for (const store of [hanging(), hanging(60_000)]) {
      const replica = new Replica(store, [], { onMirrorError, storeTimeout: 30 });
      await assert.rejects(replica.get('k'), /\[hanging\] GET timed out after 30 ms \(storeTimeout\)/);
    }
    // A store declaring a bound at or under storeTimeout is trusted with it: the call is made as is.
    const trusted = new Replica({ ...hanging(10), get: async () => 'direct' }, [], { onMirrorError, storeTimeout: 30 });
    assert.equal(await trusted.get('k'), 'direct');
  });
});
