/**
 * The servers behind each configuration of the history workload, started on
 * loopback for one run, with a TCP fault proxy ({@link tcpProxy}) in front of
 * every server connection the app processes make, so connections can be
 * delayed, black-holed and cut.
 *
 * | config          | master                    | locker                  | Redis restart (AOF, fsync always) |
 * | --------------- | ------------------------- | ----------------------- | --------------------------------- |
 * | `redis`         | RedisStore                | RedisLocker, same client | yes                              |
 * | `redis-cluster` | RedisStore on 3 masters   | RedisLocker, same client | no (the cluster helper has none) |
 * | `memcached`     | MemcachedStore            | RedisLocker             | yes (Redis holds only the locks)  |
 * | `mongo`         | MongoStore (FerretDB)     | RedisLocker             | yes (Redis holds only the locks)  |
 * | `memory`        | MemoryStore               | MemoryLocker            | no server: one process            |
 */
import { randomUUID } from 'node:crypto';
import { redisCluster, CLUSTER_KIND } from '../helpers/redis-cluster.js';
import { memcachedServer, mongoServer, redisServer, skipReason, tcpProxy, type StartedServer, type TcpProxy, type TestServer } from '../helpers/servers.js';
import type { WorkerConfig } from './worker.js';

export const CONFIGS = ['redis', 'redis-cluster', 'memcached', 'mongo', 'memory'] as const;
export type ConfigName = (typeof CONFIGS)[number];

/** Timings shared by every process of a run. */
export interface Timings {
  readonly leaseMs: number;
  readonly storeTimeout: number;
  readonly lockTimeout: number;
}

export interface Backend {
  readonly name: ConfigName;
  /** The servers' connections through the proxies (`direct: false`) or straight to them (the final read). */
  workerConfig(direct: boolean): WorkerConfig;
  /** Proxies in front of the servers (empty for `memory`). */
  readonly proxies: readonly TcpProxy[];
  /** Restart the Redis that holds the locks (and the sessions for `redis`), or undefined when there is none to restart. */
  readonly restartRedis: (() => Promise<void>) | undefined;
  /** More than one process can share the sessions (false for `memory`). */
  readonly shared: boolean;
  stop(): Promise<void>;
}

const port = (url: string): number => Number(new URL(url.includes('://') ? url : `tcp://${url}`).port);

/** Start the servers of `name`, or return why they cannot run here (a loud skip; under `CI` the helpers throw instead). */
export async function startBackend(name: ConfigName, timings: Timings): Promise<Backend | { skip: string }> {
  const prefix = `hist-${randomUUID().slice(0, 8)}:`;
  const base = { store: name, prefix, ...timings };
  const stops: Array<() => Promise<unknown>> = [];
  const proxies: TcpProxy[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  const proxy = async (target: number): Promise<TcpProxy> => {
    const p = await tcpProxy(target);
    proxies.push(p);
    stops.push(() => p.close());
    return p;
  };
  /** A Redis with AOF and `appendfsync always`: a restart keeps every acknowledged write (and every lock). */
  const durableRedis = async (): Promise<StartedServer | undefined> => {
    const server = await redisServer({ useEnv: false, extraArgs: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    if (server) stops.push(() => server.stop());
    return server as StartedServer | undefined;
  };

  if (name === 'memory') {
    return { name, workerConfig: () => base, proxies, restartRedis: undefined, shared: false, stop };
  }
  if (name === 'redis-cluster') {
    const cluster = await redisCluster();
    if (!cluster) return { skip: skipReason(CLUSTER_KIND) };
    stops.push(() => cluster.stop());
    const map: Record<string, { host: string; port: number }> = {};
    const rootUrls: string[] = [];
    for (const url of cluster.urls) {
      const p = await proxy(port(url));
      map[`127.0.0.1:${port(url)}`] = { host: '127.0.0.1', port: p.port };
      rootUrls.push(`redis://127.0.0.1:${p.port}`);
    }
    return {
      name,
      workerConfig: (direct) => ({ ...base, clusterRootUrls: direct ? cluster.urls : rootUrls, clusterAddressMap: direct ? {} : map }),
      proxies,
      restartRedis: undefined,
      shared: true,
      stop,
    };
  }

  const redis = await durableRedis();
  if (!redis) {
    await stop();
    return { skip: skipReason('redis') };
  }
  const redisProxy = await proxy(redis.port);
  const redisUrls = { redisUrl: `redis://127.0.0.1:${redisProxy.port}` };
  const restartRedis = () => redis.restart();
  if (name === 'redis') {
    return { name, workerConfig: (direct) => ({ ...base, redisUrl: direct ? redis.url : redisUrls.redisUrl }), proxies, restartRedis, shared: true, stop };
  }

  let other: TestServer | undefined;
  if (name === 'memcached') other = await memcachedServer({ useEnv: false });
  else other = await mongoServer({ useEnv: false });
  if (!other) {
    await stop();
    return { skip: skipReason(name) };
  }
  const server = other;
  stops.push(() => server.stop());
  const otherProxy = await proxy(port(server.url));
  const via = name === 'memcached' ? `127.0.0.1:${otherProxy.port}` : `mongodb://127.0.0.1:${otherProxy.port}/`;
  return {
    name,
    workerConfig: (direct) => ({
      ...base,
      redisUrl: direct ? redis.url : redisUrls.redisUrl,
      ...(name === 'memcached' ? { memcachedUrl: direct ? server.url : via } : { mongoUrl: direct ? server.url : via, mongoDb: `kls_${prefix.slice(5, 13)}` }),
    }),
    proxies,
    restartRedis,
    shared: true,
    stop,
  };
}
