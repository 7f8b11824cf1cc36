/**
 * A connection cut in the middle of a save (a TCP proxy forwards half of the
 * command carrying the new record, then cuts): the master holds either the old
 * or the new record, never a torn one, and a mirror never holds a record the
 * master does not.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { createClient } from 'redis';
import request from 'supertest';
import { MemcachedStore, MemoryStore, MongoStore, RedisStore, type Store } from '../src/index.js';
import { cookieHeader, makeApp, sidOf } from './helpers/app.js';
import { memcachedServer, mongoServer, redisServer, skipReason, tcpProxy, type TcpProxy, type TestServer } from './helpers/servers.js';

declare module '../src/index.js' {
  interface SessionData {
    blob?: string;
  }
}

const [redis, memcached, mongo] = await Promise.all([redisServer(), memcachedServer(), mongoServer()]);
const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  await Promise.all([redis?.stop(), memcached?.stop(), mongo?.stop()]);
});

const portOf = (server: TestServer, kind: string) => Number(new URL(kind === 'memcached' ? `tcp://${server.url}` : server.url).port);

const cases: Array<{ kind: string; server: TestServer | undefined; store(proxy: TcpProxy): Promise<Store> }> = [
  {
    kind: 'redis',
    server: redis,
    store: async (proxy) => {
      const client = await createClient({ url: `redis://127.0.0.1:${proxy.port}`, socket: { reconnectStrategy: () => 20 } })
        .on('error', () => {})
        .connect();
      cleanup.push(async () => client.destroy());
      return new RedisStore({ client, prefix: `torn-${randomUUID().slice(0, 6)}:` });
    },
  },
  {
    kind: 'memcached',
    server: memcached,
    store: async (proxy) => {
      const store = new MemcachedStore({
        servers: `127.0.0.1:${proxy.port}`,
        prefix: `torn-${randomUUID().slice(0, 6)}:`,
        timeoutMs: 1000,
      });
      cleanup.push(() => store.close());
      return store;
    },
  },
  {
    kind: 'mongo',
    server: mongo,
    store: async (proxy) => {
      const store = await MongoStore.connect({
        url: `mongodb://127.0.0.1:${proxy.port}/`,
        dbName: `kls_torn_${randomUUID().slice(0, 8)}`,
        timeoutMs: 5000,
        clientOptions: { serverSelectionTimeoutMS: 2000 },
      });
      cleanup.push(() => store.close());
      return store;
    },
  },
];

describe('a connection cut in the middle of a save', () => {
  for (const { kind, server, store: makeStore } of cases) {
    it(`${kind}: the master holds the old or the new record, never a torn one; the mirror is never ahead`, {
      skip: server ? false : skipReason(kind),
    }, async () => {
      const proxy = await tcpProxy(portOf(server!, kind));
      cleanup.push(() => proxy.close());
      const master = await makeStore(proxy);
      const mirror = new MemoryStore();
      const server_ = makeApp({ master, mirrors: [mirror], storeTimeout: 5000 }, async (ctx) => {
        // ?big=<marker>: a 100 KB record, so the command spans many TCP chunks.
        const value = ctx.query.big ? `${String(ctx.query.big)}${'n'.repeat(100_000)}` : String(ctx.query.v);
        await ctx.session.withLock((s) => void (s.blob = value));
        ctx.body = 'ok';
      }).callback();
      const oldValue = `old-${'o'.repeat(200)}`;
      const first = await request(server_).get(`/?v=${oldValue}`);
      assert.equal(first.status, 200);
      const sid = sidOf(first);
      const oldRecord = JSON.stringify({ blob: oldValue });
      assert.equal(await master.get(sid), oldRecord);

      const marker = `NEW${randomUUID().replaceAll('-', '')}`;
      const newValue = `${marker}${'n'.repeat(100_000)}`;
      proxy.cutOnNextWrite((chunk) => chunk.includes(marker));
      const cut = await request(server_).get(`/?big=${marker}`).set('Cookie', cookieHeader(first.headers['set-cookie']));
      assert.equal(cut.status, 503, 'the save failed');

      // Read back through a fresh path once the client has reconnected.
      if (master instanceof RedisStore && !master.client.isReady) {
        await new Promise((resolve) => (master.client as unknown as import('node:events').EventEmitter).once('ready', resolve));
      }
      let stored: string | undefined;
      for (let attempt = 0; ; attempt++) {
        try {
          stored = await master.get(sid);
          break;
        } catch (error) {
          if (attempt > 50) throw error;
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      const newRecord = JSON.stringify({ blob: newValue });
      assert.ok(stored === oldRecord || stored === newRecord, `old or new, not torn (got ${stored?.length ?? 'nothing'} chars)`);
      const mirrored = await mirror.get(sid);
      assert.ok(
        mirrored === undefined || mirrored === stored || mirrored === oldRecord,
        'the mirror never holds a record the master does not',
      );
      if (stored === oldRecord) assert.notEqual(mirrored, newRecord);
    });
  }
});
