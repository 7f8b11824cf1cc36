/**
 * Every store kind as a {@link Stallable}: MemoryStore behind an in-process
 * hold, and Redis, Memcached and MongoDB (FerretDB) reached through a
 * {@link stallProxy}, each on a fresh key prefix / database. Plus RedisLocker on
 * its own direct client (never through the proxy): the "store and locker on
 * different clients" setups.
 */
import { randomUUID } from 'node:crypto';
import Memcached from 'memcached';
import { MongoClient } from 'mongodb';
import { createClient } from 'redis';
import {
  MEMCACHED_FAIL_FAST_OPTIONS,
  MemcachedStore,
  MemoryStore,
  MongoStore,
  RedisLocker,
  RedisStore,
  type Locker,
  type MongoSessionDocument,
  type Store,
} from '../../src/index.js';
import { after } from 'node:test';
import { memcachedServer, mongoServer, redisServer, skipReason, type TestServer } from './servers.js';
import { stallingStore, stallProxy, type Stallable } from './stall.js';

export type Kind = 'memory' | 'redis' | 'memcached' | 'mongo';

export interface Servers {
  redis: TestServer | undefined;
  memcached: TestServer | undefined;
  mongo: TestServer | undefined;
}

/**
 * Start (or find) a Redis, a Memcached and a FerretDB for one test file, and
 * stop them after it; `cleanup` runs first, last registered first.
 */
export async function allServers(): Promise<{ servers: Servers; cleanup: Array<() => Promise<unknown>> }> {
  const [redis, memcached, mongo] = await Promise.all([redisServer(), memcachedServer(), mongoServer()]);
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
    await Promise.all([redis?.stop(), memcached?.stop(), mongo?.stop()]);
  });
  return { servers: { redis, memcached, mongo }, cleanup };
}

/** The port of a test server's URL (memcached URLs are bare `host:port`). */
export function portOf(server: TestServer, kind: Kind): number {
  return Number(new URL(kind === 'memcached' ? `tcp://${server.url}` : server.url).port);
}

/** Why a kind cannot run here, or false. */
export function skipFor(servers: Servers, kind: Kind | 'redis-locker'): string | false {
  if (kind === 'memory') return false;
  const k = kind === 'redis-locker' ? 'redis' : kind;
  return servers[k] ? false : skipReason(k);
}

/**
 * Wait until `store` answers a read again (its client reconnected after a
 * connection was abandoned): there is no event for that, so ask, boundedly.
 */
export async function untilAnswers(store: Store, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      // A probe sent on the abandoned connection before its client noticed
      // the close may never be answered: give each probe its own bound.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        store.get('kls-probe'),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('probe unanswered')), 500))),
      ]).finally(() => clearTimeout(timer));
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** A stallable store of `kind`; `cleanup` collects what to close at the end. */
export async function stallable(servers: Servers, kind: Kind, cleanup: Array<() => Promise<unknown>>): Promise<Stallable> {
  const tag = randomUUID().slice(0, 8);
  if (kind === 'memory') return stallingStore(new MemoryStore());
  const server = servers[kind]!;
  const proxy = await stallProxy(portOf(server, kind));
  cleanup.push(() => proxy.close());
  let store: Store;
  let reader: Store;
  if (kind === 'redis') {
    const client = await createClient({ url: `redis://127.0.0.1:${proxy.port}`, socket: { reconnectStrategy: () => 20 } })
      .on('error', () => {})
      .connect();
    cleanup.push(async () => client.destroy());
    store = new RedisStore({ client, prefix: `late-${tag}:`, timeoutMs: 30_000 });
    reader = new RedisStore({ client, prefix: `late-${tag}:`, timeoutMs: 30_000 });
  } else if (kind === 'memcached') {
    // Clients owned here, not by the stores: the session layer's close() leaves them readable.
    const client = new Memcached(`127.0.0.1:${proxy.port}`, { ...MEMCACHED_FAIL_FAST_OPTIONS });
    cleanup.push(async () => client.end());
    store = new MemcachedStore({ client, prefix: `late-${tag}:`, timeoutMs: 30_000 });
    reader = new MemcachedStore({ client, prefix: `late-${tag}:`, timeoutMs: 30_000 });
  } else {
    const client = await new MongoClient(`mongodb://127.0.0.1:${proxy.port}/`, { serverSelectionTimeoutMS: 10_000 }).connect();
    cleanup.push(() => client.close());
    const collection = client.db(`kls_late_${tag}`).collection<MongoSessionDocument>('sessions');
    store = new MongoStore({ collection, timeoutMs: 30_000 });
    reader = new MongoStore({ collection, timeoutMs: 30_000 });
  }
  return {
    store,
    reader,
    stallNextWrite: (marker) => proxy.stallNextWrite(marker),
    close: async () => {},
  };
}

/** A RedisLocker on its own direct client (not the store's, not through any proxy). */
export async function directRedisLocker(servers: Servers, cleanup: Array<() => Promise<unknown>>): Promise<Locker> {
  const client = await createClient({ url: servers.redis!.url })
    .on('error', () => {})
    .connect();
  cleanup.push(async () => client.destroy());
  return new RedisLocker({ client, prefix: `lock-${randomUUID().slice(0, 8)}:` });
}

/** `storeTimeout` per kind: well above a normal round trip on a loaded machine, so only the held write times out. */
export function storeTimeoutFor(kind: Kind): number {
  return kind === 'memory' ? 200 : kind === 'mongo' ? 2000 : 1000;
}
