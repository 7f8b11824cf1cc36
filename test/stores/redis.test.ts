/**
 * RedisStore against a real redis-server (REDIS_URL, or one started here), and
 * against a real 3-node Redis Cluster: the conformance suite, then Redis
 * specifics (key layout, client ownership) and faults (server down, black-holed,
 * restarted).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { createClient, createCluster } from 'redis';
import { StoreError } from '../../src/errors.js';
import { unwrap } from '../../src/contracts/envelope.js';
import { RedisStore } from '../../src/redis/store.js';
import { redisServer, skipReason, tcpProxy, type StartedServer } from '../helpers/servers.js';
import { CLUSTER_KIND, redisCluster } from '../helpers/redis-cluster.js';
import { storeConformance } from './conformance.js';

const server = await redisServer();
const cluster = await redisCluster();
after(async () => {
  await server?.stop();
  await cluster?.stop();
});
const skip = server ? false : skipReason('redis');

type Client = ReturnType<typeof createClient>;
const clients: Array<{ close(): Promise<void> }> = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
});

async function connectedClient(url: string, options: Parameters<typeof createClient>[0] = {}): Promise<Client> {
  const client = createClient({ url, ...options });
  client.on('error', () => {}); // reconnect errors are expected in fault tests
  await client.connect();
  clients.push(client);
  return client as Client;
}

/** Resolve once `client` has noticed that its server is gone (at once when it has). */
async function noticedDown(client: { isReady: boolean }): Promise<void> {
  if (!client.isReady) return;
  const emitter = client as unknown as import('node:events').EventEmitter;
  await Promise.race([once(emitter, 'error'), once(emitter, 'end'), once(emitter, 'reconnecting')]);
}

/** Resolve once `client` is ready (at once when it already is): node-redis reconnects on its own. */
async function ready(client: { isReady: boolean; once(event: 'ready', fn: () => void): unknown }): Promise<void> {
  if (client.isReady) return;
  await once(client as unknown as import('node:events').EventEmitter, 'ready');
}

storeConformance('redis', async () => new RedisStore({ client: await connectedClient(server!.url) }), {
  skip,
  extraTests: (ctx) => {
    const { key } = ctx;
    it('stores session `abc` under `sess:{abc}` (a cluster hash tag shared with `lock:{abc}`)', async () => {
      const redis = ctx.store as RedisStore;
      assert.equal(redis.keyFor('abc'), 'sess:{abc}');
      assert.equal(new RedisStore({ client: redis.client, prefix: 'app1:' }).keyFor('abc'), 'app1:{abc}');
      await redis.set(key('layout'), '{"l":1}', 60_000);
      const raw = redis.client as unknown as Client;
      assert.equal(await raw.get(`sess:{${key('layout')}}`), '{"l":1}');
      const pttl = await raw.pTTL(`sess:{${key('layout')}}`);
      assert.ok(pttl > 59_000 && pttl <= 60_000, `PTTL ${pttl}`);
    });

    it('a fractional TTL is rounded up to whole ms (Redis rejects fractions)', async () => {
      await ctx.store.set(key('fraction'), '{"f":1}', 1500.25);
      assert.equal(await ctx.store.get(key('fraction')), '{"f":1}');
    });

    it('rejects a non-positive TTL with a StoreError instead of sending it', async () => {
      await assert.rejects(
        ctx.store.set(key('bad-ttl'), '{}', 0),
        (error: unknown) => error instanceof StoreError && /^\[redis\] SET failed: expected ttlMs/.test(error.message),
      );
    });

    it('close() leaves a client it was given open', async () => {
      const client = await connectedClient(server!.url);
      const s = new RedisStore({ client: client });
      await s.close();
      assert.equal(client.isReady, true);
      assert.equal(await client.ping(), 'PONG');
    });

    it('connect() creates its own client and close() closes it', async () => {
      const s = await RedisStore.connect({ url: server!.url });
      await s.set(key('owned'), '{"o":1}', 60_000);
      assert.equal(await s.get(key('owned')), '{"o":1}');
      await s.close();
      assert.equal(s.client.isOpen, false);
      await assert.rejects(s.get(key('owned')), StoreError);
    });

    it('the write script reads a stored string exactly as unwrap() does (hand-written, legacy and odd values)', async () => {
      const redis = ctx.store as RedisStore;
      const raw = redis.client as unknown as Client;
      const stored = [
        '{"a":1}',
        'v7:{"a":1}',
        'v7!',
        'v007:x',
        `v${'1'.repeat(16)}:x`,
        `v${'1'.repeat(17)}:x`,
        'v:x',
        'v7x',
        'vv1:x',
        'v7:',
        '',
      ];
      for (const [i, value] of stored.entries()) {
        const k = key(`lua-${i}`);
        await raw.set(redis.keyFor(k), value, { PX: 60_000 });
        const parsed = unwrap(value);
        assert.deepEqual(await redis.read(k), parsed, `read of ${JSON.stringify(value)}`);
        // The script must see the same version and kind: a write expecting it applies exactly when unwrap says it should.
        const applies = parsed.value !== undefined;
        assert.equal(
          await redis.write(k, 'new', parsed.version + 1, 60_000, parsed.version),
          applies,
          `write over ${JSON.stringify(value)}`,
        );
        assert.equal(await redis.write(k, 'newer', parsed.version + 1, 60_000, 'newer'), !applies, `newer over ${JSON.stringify(value)}`);
      }
    });

    it('a conditional write after SCRIPT FLUSH falls back to EVAL and still applies', async () => {
      const redis = ctx.store as RedisStore;
      await (redis.client as unknown as Client).scriptFlush();
      assert.equal(await redis.write(key('noscript'), '{"s":1}', 1, 60_000, null), true);
      assert.deepEqual(await redis.read(key('noscript')), { value: '{"s":1}', version: 1 });
    });

    it('a write with a bad TTL or version is refused before anything is sent (StoreError 500)', async () => {
      const redis = ctx.store as RedisStore;
      const bad = (e: unknown) => e instanceof StoreError && e.status === 500;
      await assert.rejects(redis.write(key('bad'), '{}', 1, 0, null), bad); // a record needs a TTL; 0 only deletes
      await assert.rejects(redis.write(key('bad'), '{}', 1.5, 60_000, null), bad);
      await assert.rejects(redis.write(key('bad'), '{}', 2, 60_000, 0.5), bad);
      assert.equal(await redis.read(key('bad')), undefined);
    });

    it('rejects a non-client with a TypeError naming the option', () => {
      // @ts-expect-error a JS caller passing a url as the client
      assert.throws(() => new RedisStore({ client: 'redis://127.0.0.1' }), /Expected RedisStore `client`/);
    });
  },
});

describe('RedisStore faults', {
  skip: server && !server.external ? false : skip || 'REDIS_URL is set: fault tests need a server started here (they stop and restart it)',
}, () => {
  const started = server as StartedServer;

  for (const kind of ['a client it was given (offline queue on)', 'its own client from connect()'] as const) {
    it(`server down: ${kind} rejects with a StoreError at once, and works again once Redis is back`, async () => {
      // "At once": the refused connection ends each call, not the deadline, so the
      // deadline is set far beyond anything a refusal takes.
      const timeoutMs = 30_000;
      const store = kind.startsWith('a client')
        ? new RedisStore({ client: await connectedClient(started.url), timeoutMs })
        : await RedisStore.connect({ url: started.url, timeoutMs });
      try {
        await store.set('fault-1', '{"before":1}', 60_000);
        await started.halt();
        await noticedDown(store.client);
        const t0 = Date.now();
        await assert.rejects(
          store.get('fault-1'),
          (error: unknown) =>
            error instanceof StoreError &&
            error.status === 503 &&
            /^\[redis\] GET failed/.test(error.message) &&
            !/no reply within/.test(error.message),
        );
        await assert.rejects(
          store.set('fault-1', '{"during":1}', 60_000),
          (error: unknown) =>
            error instanceof StoreError && /^\[redis\] SET failed/.test(error.message) && !/no reply within/.test(error.message),
        );
        const took = Date.now() - t0;
        assert.ok(took < timeoutMs, `took ${took} ms: the refusals, not the ${timeoutMs} ms deadline, ended the calls`);

        await started.resume();
        await ready(store.client as unknown as Client);
        // Same store object: no re-creation needed. (No persistence: the old record is gone.)
        await store.set('fault-1', '{"after":1}', 60_000);
        assert.equal(await store.get('fault-1'), '{"after":1}');
      } finally {
        await started.resume(); // a no-op when running: never leave the server down for the next test
        await store.close();
      }
    });
  }

  it('connect() to a server that is down rejects with a StoreError instead of waiting', async () => {
    await started.halt();
    try {
      await assert.rejects(
        RedisStore.connect({ url: started.url }),
        (error: unknown) => error instanceof StoreError && /^\[redis\] connect to redis:\/\/127\.0\.0\.1:\d+ failed/.test(error.message),
      );
    } finally {
      await started.resume();
    }
  });

  it('a black-holed server fails each command with a StoreError within timeoutMs', async () => {
    const proxy = await tcpProxy(started.port);
    const client = await connectedClient(`redis://127.0.0.1:${proxy.port}`);
    const store = new RedisStore({ client: client, timeoutMs: 300 });
    try {
      await store.set('blackhole', '{"b":1}', 60_000);
      proxy.blackhole();
      const t0 = Date.now();
      await assert.rejects(
        store.get('blackhole'),
        (error: unknown) => error instanceof StoreError && /^\[redis\] GET failed: no reply within 300 ms/.test(error.message),
      );
      // Ended by the deadline (the message says so), which cannot fire before it is due.
      assert.ok(Date.now() - t0 >= 300 - 1, `rejected ${Date.now() - t0} ms after the call, before the 300 ms deadline`);
      // The partition heals: the same store answers again.
      proxy.pass();
      assert.equal(await store.get('blackhole'), '{"b":1}');
    } finally {
      client.destroy();
      await proxy.close();
    }
  });
});

describe('RedisStore on a Redis Cluster', { skip: cluster ? false : skipReason(CLUSTER_KIND) }, () => {
  let clusterClient: ReturnType<typeof createCluster> | undefined;
  after(async () => {
    await clusterClient?.close().catch(() => {});
  });

  storeConformance(
    'redis (cluster)',
    async () => {
      clusterClient = createCluster({ rootNodes: cluster!.urls.map((url) => ({ url })) });
      clusterClient.on('error', () => {});
      await clusterClient.connect();
      return new RedisStore({ client: clusterClient });
    },
    {
      extraTests: (ctx) => {
        const { key } = ctx;
        it('puts `sess:{sid}` and `lock:{sid}` in the same slot', async () => {
          const redis = ctx.store as RedisStore;
          const c = redis.client as unknown as ReturnType<typeof createCluster>;
          await redis.set(key('slot'), '{"s":1}', 60_000);
          // A multi-key command across slots fails with CROSSSLOT on a cluster: this one must not.
          const n = await c.exists([redis.keyFor(key('slot')), `lock:{${key('slot')}}`]);
          assert.equal(n, 1);
        });
      },
    },
  );
});
