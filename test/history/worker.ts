/**
 * One app process of the history workload (forked by ./processes.ts with
 * `--import tsx` and an IPC channel): a Koa app with the library's public API
 * on its own loopback port, its store and locker given by `HISTORY_WORKER`
 * (JSON, {@link WorkerConfig}).
 *
 * Routes, all on one list in the session:
 * - `GET /append?el=X`: `withLock(s => { s.historyList = [...(s.historyList ?? []), X] })`
 *   (or, with `unsafeAppend`, the broken variant the checker must catch);
 *   answers `{ handedOver }`: whether the scope of an existing session got its
 *   lease from the scope before it in this process (lease handoff, session()
 *   option `handoff`, on by default and on here) instead of from the locker,
 *   and `masterWrites`: how many master writes the request itself made (0: with
 *   group commit, on by default and on here, a later scope's write carried its
 *   change).
 * - `GET /read`: `{ list }` from `get()` (the unlocked snapshot).
 * An error answers `{ code, outcome }` (the SessionError's code and, for a
 * StoreError, whether the write may have happened) so the driver can tell
 * "nothing was written" from "unknown".
 *
 * Messages from the parent:
 * - `{ type: 'arm', ms }`: the next append scope entered within `ms` tells the
 *   parent `{ type: 'holding' }` and waits for `{ type: 'go' }` before it
 *   writes, so the parent can SIGSTOP a process that holds the lock.
 * - `{ type: 'inflight?' }`: answered with `{ type: 'inflight', count }`, the
 *   requests still being processed (a request the driver gave up on may still
 *   run here).
 * Messages to the parent: `{ type: 'listening', port }`.
 */
import Koa from 'koa';
import { AsyncLocalStorage } from 'node:async_hooks';
import Memcached from 'memcached';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { createClient, createCluster, createSentinel } from 'redis';
import {
  MEMCACHED_FAIL_FAST_OPTIONS,
  MemcachedStore,
  MemoryLocker,
  MemoryStore,
  MongoStore,
  PostgresLocker,
  PostgresStore,
  RedisLocker,
  RedisStore,
  session,
  type Locker,
  type MongoSessionDocument,
  type RedisLockerClient,
  type Store,
} from '../../src/index.js';
import { serveForParent } from '../helpers/worker-serve.js';
import { MASTER_NAME } from '../helpers/redis-sentinel.js';

declare module '../../src/index.js' {
  interface SessionData {
    historyList?: string[];
  }
}

/** How a worker reaches its servers (URLs may point at fault proxies). */
export interface WorkerConfig {
  readonly store: 'redis' | 'redis-cluster' | 'redis-sentinel' | 'memcached' | 'mongo' | 'postgres' | 'memory';
  /** Redis for RedisStore and/or RedisLocker. */
  readonly redisUrl?: string;
  /** Cluster: root nodes, and where each node's announced address is really reached (a proxy). */
  readonly clusterRootUrls?: readonly string[];
  readonly clusterAddressMap?: Readonly<Record<string, { host: string; port: number }>>;
  /** Sentinel: the Sentinels (the data nodes they name are mapped by `clusterAddressMap`). */
  readonly sentinelRootUrls?: readonly string[];
  readonly memcachedUrl?: string;
  readonly mongoUrl?: string;
  readonly mongoDb?: string;
  /** PostgresStore + PostgresLocker (the lock is the session's row): the server and the run's own table. */
  readonly pgUrl?: string;
  readonly pgTable?: string;
  /** Key prefix of the stores and the locker: one run never sees another's keys. */
  readonly prefix: string;
  readonly leaseMs: number;
  readonly storeTimeout: number;
  readonly lockTimeout: number;
  /**
   * Broken on purpose, to show the checker catches a real lost update: append
   * to the list read by the unlocked `get()` before the scope, not to the one
   * read under the lock.
   */
  readonly unsafeAppend?: boolean;
}

const raw = process.env.HISTORY_WORKER;
if (!raw || !process.send) throw new Error('history worker: run me with child_process.fork() and HISTORY_WORKER');
const config = JSON.parse(raw) as WorkerConfig;
const send = (message: object): void => {
  if (process.connected) process.send!(message);
};
const closers: Array<() => Promise<unknown>> = [];
const reconnectStrategy = () => 50;

async function redisClient(): Promise<RedisLockerClient & { close(): Promise<void> }> {
  if (config.store === 'redis-cluster') {
    const cluster = createCluster({
      rootNodes: config.clusterRootUrls!.map((url) => ({ url, socket: { reconnectStrategy } })),
      defaults: { socket: { reconnectStrategy } },
      nodeAddressMap: { ...config.clusterAddressMap },
    });
    cluster.on('error', () => {}); // reconnects by itself; requests report failures
    await cluster.connect();
    return cluster as unknown as RedisLockerClient & { close(): Promise<void> };
  }
  if (config.store === 'redis-sentinel') {
    const sentinel = createSentinel({
      name: MASTER_NAME,
      sentinelRootNodes: config.sentinelRootUrls!.map((url) => ({ host: '127.0.0.1', port: Number(new URL(url).port) })),
      nodeAddressMap: { ...config.clusterAddressMap },
      nodeClientOptions: { socket: { reconnectStrategy } },
      sentinelClientOptions: { socket: { reconnectStrategy } },
    });
    sentinel.on('error', () => {}); // rediscovers the primary by itself; requests report failures
    await sentinel.connect();
    return sentinel as unknown as RedisLockerClient & { close(): Promise<void> };
  }
  const client = createClient({ url: config.redisUrl!, socket: { reconnectStrategy } });
  client.on('error', () => {});
  await client.connect();
  return client as unknown as RedisLockerClient & { close(): Promise<void> };
}

let store: Store;
let locker: Locker;
if (config.store === 'memory') {
  store = new MemoryStore();
  locker = new MemoryLocker();
} else if (config.store === 'postgres') {
  const pool = new pg.Pool({ connectionString: config.pgUrl!, max: 20 });
  pool.on('error', () => {}); // connections cut or closed by a restart: replaced on the next checkout
  closers.push(() => pool.end());
  const pgStore = new PostgresStore({ pool, table: config.pgTable!, timeoutMs: config.storeTimeout });
  await pgStore.ensureTable(); // every process at once: the creation is safe
  store = pgStore;
  locker = new PostgresLocker({ store: pgStore, leaseMs: config.leaseMs });
} else {
  const redis = await redisClient();
  const redisLocker = new RedisLocker({ client: redis, prefix: `${config.prefix}lock:`, leaseMs: config.leaseMs });
  locker = redisLocker;
  closers.push(
    () => redisLocker.close(),
    () => redis.close(),
  );
  if (config.store === 'redis' || config.store === 'redis-cluster' || config.store === 'redis-sentinel') {
    // Through a failover, a save is acknowledged only once the replica has it.
    const waitForReplicas = config.store === 'redis-sentinel' ? 1 : 0;
    store = new RedisStore({ client: redis as never, prefix: `${config.prefix}sess:`, timeoutMs: config.storeTimeout, waitForReplicas });
  } else if (config.store === 'memcached') {
    const client = new Memcached(config.memcachedUrl!, { ...MEMCACHED_FAIL_FAST_OPTIONS });
    closers.push(async () => client.end());
    store = new MemcachedStore({ client, prefix: `${config.prefix}sess:`, timeoutMs: config.storeTimeout });
  } else {
    const client = await new MongoClient(config.mongoUrl!, { serverSelectionTimeoutMS: 2000 }).connect();
    closers.push(() => client.close());
    store = new MongoStore({
      collection: client.db(config.mongoDb!).collection<MongoSessionDocument>('sessions'),
      timeoutMs: config.storeTimeout,
    });
  }
}

/**
 * Per append request: the versions its own context wrote to the master (a
 * successful conditional write of the session's record; mirror writes, with
 * condition 'newer', are not master writes). With group commit an append can
 * be acknowledged without any: a later scope's write carried its change. A
 * Proxy counts them without touching the library: on the lease's guarded view
 * where the locker gives one (Redis fast path, PostgreSQL row), else on the
 * master itself (memcached, mongo, memory; a RedisStore or PostgresStore is
 * never wrapped, its fast-path registration is keyed by the object).
 */
const scopeWrites = new AsyncLocalStorage<{ versions: Set<number> }>();
function countingStore<T extends object>(target: T): T {
  return new Proxy(target, {
    get(t, prop) {
      const value = Reflect.get(t, prop, t) as unknown;
      if (typeof value !== 'function') return value;
      if (prop !== 'write') return value.bind(t);
      return async (...args: unknown[]) => {
        const applied = await (value as (...a: unknown[]) => Promise<boolean>).apply(t, args);
        const writes = scopeWrites.getStore();
        if (applied && writes && args[4] !== 'newer') writes.versions.add(args[2] as number);
        return applied;
      };
    },
  });
}
if (config.store === 'memcached' || config.store === 'mongo' || config.store === 'memory') store = countingStore(store);
function countingLease<L extends object>(lease: L): L {
  const guarded = (lease as { store?: object }).store;
  if (guarded === undefined) return lease;
  const counted = countingStore(guarded);
  const proxy = new Proxy(lease, {
    get(t, prop) {
      if (prop === 'store') return counted;
      const value = Reflect.get(t, prop, t) as unknown;
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
  return proxy;
}

/**
 * Per append request: how many times its scope went to the locker. A scope
 * that ran without going there got its lease handed over by the scope before
 * it in this process. The wrapper keeps `leaseMs`, which caps the handoff.
 */
const scopeAcquires = new AsyncLocalStorage<{ acquires: number }>();
const inner = locker;
locker = {
  name: inner.name,
  ...('leaseMs' in inner ? { leaseMs: (inner as { leaseMs: number }).leaseMs } : {}),
  acquire(key, options) {
    const counter = scopeAcquires.getStore();
    if (counter) counter.acquires++;
    return inner.acquire(key, options).then(countingLease);
  },
  close: () => inner.close?.() ?? Promise.resolve(),
} as Locker;

let armedUntil = 0;
let go: (() => void) | undefined;
let inflight = 0;
process.on('message', (message: { type?: string; ms?: number }) => {
  if (message?.type === 'arm') armedUntil = performance.now() + (message.ms ?? 1000);
  else if (message?.type === 'go') go?.();
  else if (message?.type === 'inflight?') send({ type: 'inflight', count: inflight });
});

/** Inside a scope: if armed, tell the parent we hold the lock and wait for its word (bounded). */
async function maybeHold(): Promise<void> {
  if (performance.now() >= armedUntil) return;
  armedUntil = 0;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 15_000);
    go = () => {
      clearTimeout(timer);
      go = undefined;
      resolve();
    };
    send({ type: 'holding' });
  });
}

const app = new Koa();
app.keys = ['history-workload-key']; // the same in every process: any of them verifies the cookie
app.silent = true;
app.use(async (ctx, next) => {
  inflight++;
  try {
    await next();
  } catch (error) {
    const e = error as { status?: number; code?: string; outcome?: string; message?: string };
    ctx.status = typeof e.status === 'number' && e.status >= 400 ? e.status : 500;
    ctx.body = { code: e.code ?? 'ERR_UNEXPECTED', outcome: e.outcome, message: e.message };
  } finally {
    inflight--;
  }
});
app.use(session({ master: store, locker, lockTimeout: config.lockTimeout, storeTimeout: config.storeTimeout }));
app.use(async (ctx) => {
  if (ctx.path === '/append') {
    const element = String(ctx.query.el);
    const stale = config.unsafeAppend ? ((await ctx.session.get()).historyList ?? []) : undefined;
    // A new session's scope takes no lock at all (nobody else knows its id): not a handoff.
    const existing = ctx.session.id !== undefined;
    const counter = { acquires: 0 };
    const writes = { versions: new Set<number>() };
    await scopeWrites.run(writes, () =>
      scopeAcquires.run(counter, () =>
        ctx.session.withLock(async (s) => {
          await maybeHold();
          s.historyList = [...(stale ?? s.historyList ?? []), element];
        }),
      ),
    );
    ctx.body = { pid: process.pid, handedOver: existing && counter.acquires === 0, masterWrites: writes.versions.size };
  } else if (ctx.path === '/read') {
    ctx.body = { pid: process.pid, list: (await ctx.session.get()).historyList ?? [] };
  } else {
    ctx.status = 404;
  }
});

serveForParent(app, send, () =>
  closers.reduce((chain, close) => chain.then(() => close().catch(() => {})), Promise.resolve<unknown>(undefined)),
);
