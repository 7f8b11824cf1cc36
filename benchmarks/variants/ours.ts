/**
 * Every variant of koa-locked-session in one file, so an API change touches
 * only this file. The routes use the public API exactly as DESIGN §1 shows it:
 *
 *   app.use(session({ master, locker, ttl }))
 *   await ctx.session.withLock((s) => { s.count = (s.count ?? 0) + 1 })
 *   await ctx.session.get()
 *
 * Store calls are counted without changing what runs: server side for Redis
 * and Memcached (the harness diffs `INFO commandstats` / `stats`), with a
 * MemoryStore subclass (same class, so nothing can take a different path) and
 * with the MongoDB driver's command monitoring.
 */
import {
  CHANNELS,
  CookieStore,
  MemcachedStore,
  MemoryLocker,
  MemoryStore,
  MongoStore,
  passportUser,
  plainSession,
  RedisLocker,
  RedisStore,
  session,
} from '../../src/index.js';
import type { Locker, PlainSessionOptions, RequestStore, Store, VersionedRecord, WriteCondition } from '../../src/index.js';
import type { Middleware } from 'koa';
import { plainObjectOps } from '../peers/koa-session.js';
import { passportStack } from '../peers/passport.js';
import type { AppEnv, AppInstance, VariantFactory } from '../lib/types.js';
import { koaApp, countOf, type SessionOps } from '../lib/routes.js';
import { LockWaitRecorder } from '../lib/lock-waits.js';
import { variantInfo } from './index.js';

type Counter = { count?: number };

const ops: SessionOps = {
  async fresh(ctx) {
    await ctx.session.withLock((s) => {
      (s as Counter).count = 1;
    });
  },
  rmw(ctx) {
    return ctx.session.withLock((s) => ((s as Counter).count = (countOf(s) ?? 0) + 1));
  },
  async read(ctx) {
    return countOf(await ctx.session.get());
  },
};

/**
 * MemoryStore that counts its calls; a subclass, so the middleware sees the very same store.
 * The middleware reads and writes a versioned store through read() / write(); get / set /
 * destroy / touch are counted too, for any path that still takes them.
 */
class CountingMemoryStore extends MemoryStore {
  readonly calls: Record<string, number> = { read: 0, write: 0, get: 0, set: 0, destroy: 0, touch: 0 };
  override read(key: string): Promise<VersionedRecord | undefined> {
    this.calls.read!++;
    return super.read(key);
  }
  override write(key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition): Promise<boolean> {
    this.calls.write!++;
    return super.write(key, value, version, ttlMs, condition);
  }
  override get(key: string): Promise<string | undefined> {
    this.calls.get!++;
    return super.get(key);
  }
  override set(key: string, value: string, ttlMs: number): Promise<void> {
    this.calls.set!++;
    return super.set(key, value, ttlMs);
  }
  override destroy(key: string): Promise<void> {
    this.calls.destroy!++;
    return super.destroy(key);
  }
  override touch(key: string, ttlMs: number): Promise<void> {
    this.calls.touch!++;
    return super.touch(key, ttlMs);
  }
}

interface Parts {
  master: Store | RequestStore;
  locker?: Locker;
  storeCalls?: () => Record<string, number>;
  close: () => Promise<void>;
}

type SessionOptions = Parameters<typeof session>[0];

/**
 * The app of a variant: session() on its parts, plus the extra options its
 * metadata names (`sessionOptions` in variants/index.ts, e.g. `handoff: false`;
 * the harness has checked that session() accepts them).
 */
function build(
  env: AppEnv,
  parts: Parts,
  variantId?: string,
  plain?: PlainSessionOptions,
  stack?: { middleware: Middleware[]; ops: SessionOps },
): AppInstance {
  const extra = variantId ? variantInfo(variantId).sessionOptions : undefined;
  const options = { ...extra, master: parts.master, ttl: env.ttlMs, ...(parts.locker ? { locker: parts.locker } : {}) } as SessionOptions;
  // Subscribe (and count the locker's turns) before the first request, so warm-up and measured window take the same (published) path.
  const lockWaits = env.recordLockWaits ? new LockWaitRecorder(CHANNELS.lock) : undefined;
  if (lockWaits && parts.locker) lockWaits.countTurnsOf(parts.locker);
  // The plain-object view (plainSession()) runs koa-session's very code: `ctx.session.count = (ctx.session.count ?? 0) + 1`.
  const app = plain
    ? koaApp({ ops: stack?.ops ?? plainObjectOps, middleware: [session(options), plainSession(plain), ...(stack?.middleware ?? [])] })
    : koaApp({ ops, middleware: [session(options)] });
  return {
    listener: app.callback(),
    ...(parts.storeCalls ? { storeCalls: parts.storeCalls } : {}),
    ...(lockWaits ? { lockWaits } : {}),
    close: async () => {
      lockWaits?.close();
      await parts.close();
    },
  };
}

// --- the clients each store takes (connected, as DESIGN §1 shows) ---------

async function redisClient(env: AppEnv) {
  const { createClient } = await import('redis');
  const client = createClient({ url: env.servers.redis! });
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function redisLocker(env: AppEnv): Promise<{ locker: Locker; close: () => Promise<void> }> {
  const client = await redisClient(env);
  const locker = new RedisLocker({ client });
  return { locker, close: async () => void (await locker.close?.(), await client.quit()) };
}

async function redisParts(env: AppEnv, lockerKind: 'redis' | 'memory'): Promise<Parts> {
  const client = await redisClient(env);
  const master = new RedisStore({ client });
  // One client for store and locker, so the locker can fence the store's writes (DESIGN §4).
  const locker: Locker = lockerKind === 'redis' ? new RedisLocker({ client }) : new MemoryLocker();
  return { master, locker, close: async () => void (await locker.close?.(), await client.quit()) };
}

async function memcachedParts(env: AppEnv): Promise<Parts> {
  // The store creates its client with its fail-fast options and ends it on close().
  const master = new MemcachedStore({ servers: env.servers.memcached! });
  return { master, close: async () => void (await master.close?.()) };
}

async function mongoParts(env: AppEnv): Promise<Parts> {
  const { MongoClient } = await import('mongodb');
  const client = new MongoClient(env.servers.mongo!, { monitorCommands: true });
  const calls: Record<string, number> = {};
  client.on('commandStarted', (event) => {
    calls[event.commandName] = (calls[event.commandName] ?? 0) + 1;
  });
  await client.connect();
  const master = new MongoStore({ collection: client.db('bench').collection('sessions') });
  return { master, storeCalls: () => ({ ...calls }), close: () => client.close() };
}

/** Add RedisLocker (many processes) to a store's parts. */
async function withRedisLocker(env: AppEnv, parts: Parts): Promise<Parts> {
  const { locker, close } = await redisLocker(env);
  return { ...parts, locker, close: async () => void (await close(), await parts.close()) };
}

// --- the variants -----------------------------------------------------------

export const oursMemory: VariantFactory = async (env) => {
  const master = new CountingMemoryStore();
  return build(env, { master, storeCalls: () => ({ ...master.calls }), close: () => master.close() });
};

export const oursRedis: VariantFactory = async (env) => build(env, await redisParts(env, 'redis'));

/** The ladder of hot-session optimisations: per-request locking (no handoff), then handoff without group commit. */
export const oursRedisNoHandoff: VariantFactory = async (env) => build(env, await redisParts(env, 'redis'), 'ours-redis-nohandoff');

export const oursRedisNoGroupCommit: VariantFactory = async (env) => build(env, await redisParts(env, 'redis'), 'ours-redis-nogroupcommit');

export const oursRedisMemoryLocker: VariantFactory = async (env) => build(env, await redisParts(env, 'memory'));

export const oursMemcached: VariantFactory = async (env) => build(env, await memcachedParts(env));

export const oursMemcachedRedisLocker: VariantFactory = async (env) => build(env, await withRedisLocker(env, await memcachedParts(env)));

export const oursMongo: VariantFactory = async (env) => build(env, await mongoParts(env));

export const oursMongoRedisLocker: VariantFactory = async (env) => build(env, await withRedisLocker(env, await mongoParts(env)));

/**
 * The plain-object view (`plainSession()`, for koa-passport, koa-csrf, grant and
 * koa-session-style code) on the same workload as koa-session: `lock: 'request'`
 * (the default: the lock held for the whole request) and `lock: 'merge'` (an
 * unlocked read, the changed keys merged under a short lock at the end).
 */
export const oursPlainMemory: VariantFactory = async (env) => {
  const master = new CountingMemoryStore();
  return build(env, { master, storeCalls: () => ({ ...master.calls }), close: () => master.close() }, undefined, {});
};

export const oursPlainRedis: VariantFactory = async (env) => build(env, await redisParts(env, 'redis'), undefined, {});

export const oursPlainRedisMerge: VariantFactory = async (env) => build(env, await redisParts(env, 'redis'), undefined, { lock: 'merge' });

/** koa-passport + passport-local on the view (peers/passport.ts: the same code as on koa-session), as examples/passport.ts mounts it. */
export const oursPassportRedis: VariantFactory = async (env) =>
  build(env, await redisParts(env, 'redis'), undefined, { user: passportUser }, passportStack());

export const oursCookie: VariantFactory = async (env) => {
  const master = new CookieStore({ keys: ['benchmark cookie key, not a secret, 32+ chars long'] });
  return build(env, { master, close: async () => {} });
};

/** The same without encryption: koa-session's cookie mode signs but does not encrypt, so this is the like-for-like row. */
export const oursCookieSigned: VariantFactory = async (env) => {
  const master = new CookieStore({ keys: ['benchmark cookie key, not a secret, 32+ chars long'], encrypt: false });
  return build(env, { master, close: async () => {} });
};
