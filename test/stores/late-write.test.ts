/**
 * Item 1 of issue 11 at store level: a versioned write stalled on the network
 * past the store's `timeoutMs` (the call rejects, the caller moves on) and
 * delivered after another write advanced the version must not land. The
 * proxy holds exactly the bytes of the conditional command (Memcached `cas`,
 * Mongo filtered `replaceOne`/`deleteOne`), releases them once the newer
 * record is stored, and the test reads back on the same connection (so the
 * held command has been answered) that the newer record is still there.
 * Errors of the stalled calls name neither the sid nor the store key (item 7).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Memcached from 'memcached';
import { MongoClient } from 'mongodb';
import { StoreError } from '../../src/errors.js';
import { MemcachedStore } from '../../src/memcached/store.js';
import { MongoStore, type MongoSessionDocument } from '../../src/mongo/store.js';
import type { VersionedStore } from '../../src/contracts/store.js';
import { memcachedServer, mongoServer, skipReason, tcpProxy, type TcpProxy } from '../helpers/servers.js';

const [memcached, mongo] = await Promise.all([memcachedServer(), mongoServer()]);
const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  await Promise.all([memcached?.stop(), mongo?.stop()]);
});

const TTL = 60_000;
const TIMEOUT = 300;

/** The rejection of a stalled call: a StoreError that names neither the sid nor the key. */
async function rejectsWithoutKey(call: Promise<unknown>, sid: string, key: string): Promise<void> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof StoreError, `expected a StoreError, got ${String(error)}`);
  assert.match(error.message, /no reply within 300 ms/);
  for (const text of [error.message, String(error.stack)]) {
    assert.ok(!text.includes(sid) && !text.includes(key), `the error names the sid or key: ${text}`);
  }
}

/**
 * The next scope's save, as the session layer makes it: a fresh read, then a
 * write on the version read, retried while refused (a MongoStore claim of the
 * stalled writer is rolled forward by the first refused attempt: its change
 * is then the version read). Resolves the version written, or `undefined`
 * when the record is gone (the stalled logout was rolled forward: a new
 * session would get a new sid).
 */
async function saveOnTop(store: VersionedStore, sid: string, value: string): Promise<number | undefined> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const seen = await store.read(sid);
    if (!seen?.value) return undefined;
    if (await store.write(sid, value, seen.version + 1, TTL, seen.version)) return seen.version + 1;
    assert.ok(Date.now() < deadline, 'the newer save never applied');
    await sleep(50); // refused while a claim of the stalled writer's still counts as in progress
  }
}

interface Pair {
  /** A store with a direct connection. */
  direct: VersionedStore;
  /** A store whose connection goes through `proxy`, one connection only, `timeoutMs` 300. */
  stalled: VersionedStore;
  proxy: TcpProxy;
  /** Black-hole the proxy just before the next conditional command is sent (`remove`: the delete of a removal). */
  holdNext(remove: boolean): void;
  key(sid: string): string;
}

const kinds: Array<{ kind: string; skip: string | false; pair(): Promise<Pair> }> = [
  {
    kind: 'memcached',
    skip: memcached ? false : skipReason('memcached'),
    async pair() {
      const proxy = await tcpProxy(Number(memcached!.url.split(':')[1]));
      // poolSize 1: the read after pass() travels behind the held command on the same connection.
      const client = new Memcached(`127.0.0.1:${proxy.port}`, { retries: 0, poolSize: 1 } as Memcached.options);
      const prefix = `late-${randomUUID().slice(0, 6)}:`;
      const direct = new MemcachedStore({ servers: memcached!.url, prefix });
      const stalled = new MemcachedStore({ client, prefix, timeoutMs: TIMEOUT });
      let armed = false;
      // Hold whichever storage command comes next (a correct store sends `cas`; a SET would be held too).
      for (const method of ['cas', 'set', 'add'] as const) {
        const original = (client[method] as (...args: unknown[]) => void).bind(client);
        (client as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
          if (armed) {
            armed = false;
            proxy.blackhole();
          }
          original(...args);
        };
      }
      cleanup.push(async () => {
        await direct.close();
        client.end();
        await proxy.close();
      });
      // Memcached removals are a cas to an expired tombstone too.
      return { direct, stalled, proxy, holdNext: () => void (armed = true), key: (sid) => direct.keyFor(sid) };
    },
  },
  {
    kind: 'mongo',
    skip: mongo ? false : skipReason('mongo'),
    async pair() {
      const proxy = await tcpProxy(Number(new URL(mongo!.url).port));
      const dbName = `kls_late_${randomUUID().slice(0, 8)}`;
      const directClient = await new MongoClient(mongo!.url).connect();
      // maxPoolSize 1: the read after pass() waits for the connection the held command occupies.
      const stalledClient = await new MongoClient(`mongodb://127.0.0.1:${proxy.port}/`, {
        maxPoolSize: 1,
        serverSelectionTimeoutMS: 2000,
      }).connect();
      const direct = new MongoStore({ collection: directClient.db(dbName).collection<MongoSessionDocument>('sessions'), timeoutMs: 5000 });
      const collection = stalledClient.db(dbName).collection<MongoSessionDocument>('sessions');
      const stalled = new MongoStore({ collection, timeoutMs: TIMEOUT });
      await stalled.ensureIndexes();
      let armed: 'replaceOne' | 'deleteOne' | undefined;
      for (const method of ['replaceOne', 'deleteOne'] as const) {
        const original = collection[method].bind(collection) as (...args: unknown[]) => Promise<unknown>;
        (collection as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
          if (armed === method) {
            armed = undefined;
            proxy.blackhole();
          }
          return original(...args);
        };
      }
      cleanup.push(async () => {
        await direct.close();
        await stalled.close();
        await directClient.close();
        await stalledClient.close(true);
        await proxy.close();
      });
      return { direct, stalled, proxy, holdNext: (remove) => void (armed = remove ? 'deleteOne' : 'replaceOne'), key: (sid) => sid };
    },
  },
];

for (const { kind, skip, pair } of kinds) {
  describe(`${kind}: a versioned write stalled past timeoutMs and delivered later`, { skip }, () => {
    it('a save never lands over the newer record written meanwhile', async () => {
      const { direct, stalled, proxy, holdNext, key } = await pair();
      const sid = `late${randomUUID().replace(/-/g, '')}`;
      assert.equal(await direct.write(sid, '{"n":1}', 1, TTL, null), true);

      holdNext(false);
      await rejectsWithoutKey(stalled.write(sid, '{"n":2,"late":true}', 2, TTL, 1), sid, key(sid));
      // The next scope (the lock was released at the timeout) saves on what it reads.
      const next = await saveOnTop(direct, sid, '{"n":2}');
      assert.ok(next !== undefined, 'the record is there');
      assert.equal(await direct.write(sid, '{"n":3}', next + 1, TTL, next), true);

      proxy.pass();
      // Same connection, behind the held command: it has been answered by now.
      assert.deepEqual(await stalled.read(sid), { value: '{"n":3}', version: next + 1 });
      assert.deepEqual(await direct.read(sid), { value: '{"n":3}', version: next + 1 });
    });

    it('a destroy (logout) never removes the newer record written meanwhile', async () => {
      const { direct, stalled, proxy, holdNext, key } = await pair();
      const sid = `late${randomUUID().replace(/-/g, '')}`;
      assert.equal(await direct.write(sid, '{"user":1}', 1, TTL, null), true);

      holdNext(true);
      await rejectsWithoutKey(stalled.write(sid, undefined, 2, 0, 1), sid, key(sid));
      const next = await saveOnTop(direct, sid, '{"user":1,"n":2}');

      proxy.pass();
      // The newer save, if there was one (the logout was not rolled forward), is still there.
      const want = next === undefined ? undefined : { value: '{"user":1,"n":2}', version: next };
      assert.deepEqual(await stalled.read(sid), want);
      assert.deepEqual(await direct.read(sid), want);
    });
  });
}
