/**
 * The servers behind each configuration of the history workload, started on
 * loopback for one run. Each app process reaches them through TCP fault proxies
 * of its own (./processes.ts), so one process's connections can be delayed,
 * black-holed or cut while the others carry on: {@link Backend.workerConfig}
 * builds a process's connection settings from a port mapping.
 *
 * | config          | master                    | locker                   | server restart                                  |
 * | --------------- | ------------------------- | ------------------------ | ----------------------------------------------- |
 * | `redis`         | RedisStore                | RedisLocker, same client | Redis (AOF, fsync always)                       |
 * | `redis-cluster` | RedisStore on 3 masters   | RedisLocker, same client | none (the cluster helper has none)              |
 * | `redis-sentinel`| RedisStore, `waitForReplicas: 1`, via Sentinel | RedisLocker, same client | the primary SIGKILLed, failed over, rejoined as a replica |
 * | `memcached`     | MemcachedStore            | RedisLocker              | Redis, which holds only the locks               |
 * | `mongo`         | MongoStore (FerretDB)     | RedisLocker              | Redis, which holds only the locks               |
 * | `postgres`      | PostgresStore             | PostgresLocker (the row) | PostgreSQL (immediate shutdown, WAL recovery)   |
 * | `memory`        | MemoryStore               | MemoryLocker             | none: one process                               |
 */
import { randomUUID } from 'node:crypto';
import { postgresServer } from '../helpers/postgres-server.js';
import { redisCluster, CLUSTER_KIND } from '../helpers/redis-cluster.js';
import { redisSentinel } from '../helpers/redis-sentinel.js';
import { memcachedServer, mongoServer, redisServer, skipReason, type StartedServer, type TestServer } from '../helpers/servers.js';
import type { WorkerConfig } from './worker.js';

export const CONFIGS = ['redis', 'redis-cluster', 'redis-sentinel', 'memcached', 'mongo', 'postgres', 'memory'] as const;
export type ConfigName = (typeof CONFIGS)[number];

/** Timings shared by every process of a run. */
export interface Timings {
  readonly leaseMs: number;
  readonly storeTimeout: number;
  readonly lockTimeout: number;
}

/** Where a process connects for a server port: a proxy's port, or the port itself (direct). */
export type Route = (port: number) => number;

export interface Backend {
  readonly name: ConfigName;
  /** The loopback ports of the servers the app processes connect to (empty for `memory`). */
  readonly ports: readonly number[];
  /** A process's settings, reaching server port P at `route(P)`. */
  workerConfig(route: Route): WorkerConfig;
  /**
   * Restart the server that holds the locks (Redis, which also holds the
   * sessions for `redis`; PostgreSQL, which holds both), or undefined when
   * there is none to restart.
   */
  readonly restart: { readonly server: string; run(): Promise<void> } | undefined;
  /** More than one process can share the sessions (false for `memory`). */
  readonly shared: boolean;
  stop(): Promise<void>;
}

const portOf = (url: string): number => Number(new URL(url.includes('://') ? url : `tcp://${url}`).port);

/** Start the servers of `name`, or return why they cannot run here (a loud skip; under `CI` the helpers throw instead). */
export async function startBackend(name: ConfigName, timings: Timings): Promise<Backend | { skip: string }> {
  const prefix = `hist-${randomUUID().slice(0, 8)}:`;
  const base = { store: name, prefix, ...timings };
  const stops: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };

  if (name === 'memory') {
    return { name, ports: [], workerConfig: () => base, restart: undefined, shared: false, stop };
  }
  if (name === 'redis-cluster') {
    const cluster = await redisCluster();
    if (!cluster) return { skip: skipReason(CLUSTER_KIND) };
    stops.push(() => cluster.stop());
    const ports = cluster.urls.map(portOf);
    return {
      name,
      ports,
      workerConfig: (route) => ({
        ...base,
        clusterRootUrls: ports.map((p) => `redis://127.0.0.1:${route(p)}`),
        // The nodes announce their own ports: map each to this process's route.
        clusterAddressMap: Object.fromEntries(ports.map((p) => [`127.0.0.1:${p}`, { host: '127.0.0.1', port: route(p) }])),
      }),
      restart: undefined,
      shared: true,
      stop,
    };
  }
  if (name === 'redis-sentinel') {
    const sentinel = await redisSentinel();
    if (!sentinel) return { skip: skipReason('redis') };
    stops.push(() => sentinel.stop());
    const ports = [...sentinel.sentinelPorts, ...sentinel.dataPorts];
    return {
      name,
      ports,
      workerConfig: (route) => ({
        ...base,
        sentinelRootUrls: sentinel.sentinelPorts.map((p) => `redis://127.0.0.1:${route(p)}`),
        // The Sentinels name nodes by their own ports: map each to this process's route.
        clusterAddressMap: Object.fromEntries(ports.map((p) => [`127.0.0.1:${p}`, { host: '127.0.0.1', port: route(p) }])),
      }),
      // The "restart" of this configuration is a failover: the primary SIGKILLed, a replica promoted, the old one back as a replica.
      restart: {
        server: 'the Redis primary (SIGKILL, Sentinel failover, rejoin)',
        run: async () => {
          await sentinel.killPrimary();
          await sentinel.rejoin();
        },
      },
      shared: true,
      stop,
    };
  }
  if (name === 'postgres') {
    const server = (await postgresServer({ useEnv: false })) as StartedServer | undefined;
    if (!server) return { skip: skipReason('postgres') };
    stops.push(() => server.stop());
    const pgTable = `hist_${prefix.slice(5, 13)}`;
    return {
      name,
      ports: [server.port],
      workerConfig: (route) => ({ ...base, pgUrl: `postgres://postgres@127.0.0.1:${route(server.port)}/postgres`, pgTable }),
      restart: { server: 'PostgreSQL', run: () => server.restart() },
      shared: true,
      stop,
    };
  }

  // A Redis with AOF and `appendfsync always`: a restart keeps every acknowledged write (and every lock).
  const redis = (await redisServer({ useEnv: false, extraArgs: ['--appendonly', 'yes', '--appendfsync', 'always'] })) as
    | StartedServer
    | undefined;
  if (!redis) return { skip: skipReason('redis') };
  stops.push(() => redis.stop());
  const restart = { server: 'Redis', run: () => redis.restart() };
  const redisUrl = (route: Route) => `redis://127.0.0.1:${route(redis.port)}`;
  if (name === 'redis') {
    return { name, ports: [redis.port], workerConfig: (route) => ({ ...base, redisUrl: redisUrl(route) }), restart, shared: true, stop };
  }

  const other: TestServer | undefined =
    name === 'memcached' ? await memcachedServer({ useEnv: false }) : await mongoServer({ useEnv: false });
  if (!other) {
    await stop();
    return { skip: skipReason(name) };
  }
  stops.push(() => other.stop());
  const otherPort = portOf(other.url);
  const mongoDb = `kls_${prefix.slice(5, 13)}`;
  return {
    name,
    ports: [redis.port, otherPort],
    workerConfig: (route) => ({
      ...base,
      redisUrl: redisUrl(route),
      ...(name === 'memcached'
        ? { memcachedUrl: `127.0.0.1:${route(otherPort)}` }
        : { mongoUrl: `mongodb://127.0.0.1:${route(otherPort)}/`, mongoDb }),
    }),
    restart,
    shared: true,
    stop,
  };
}
