/**
 * The options of RedisStore and RedisStore.connect: their types (what a user
 * reads), the names each accepts, the hints for other Redis stores' options,
 * and the `waitForReplicas` check. Their own file, apart from the commands;
 * RedisLocker's options are in src/redis/options.ts.
 */
import type { RedisClientOptions } from 'redis';
import { Validator } from '../util/validate.js';
import type { RedisClientLike } from './clients.js';
import type { IoredisLike } from './ioredis.js';
import type { ReplicaWait } from './replicas.js';

const check: Validator = new Validator('RedisStore');

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions<C extends RedisClientLike = RedisClientLike> {
  /**
   * A connected node-redis client, cluster client or Sentinel client
   * (`createSentinel()`), or an ioredis `Redis` (also with `sentinels`) /
   * `Cluster` (wrapped with `fromIoredis()` for you). The store never closes it.
   * @example new RedisStore({ client: await createClient({ url }).connect() })
   */
  client: C | IoredisLike;
  /**
   * Prepended to every key. The key of session `abc` is `${prefix}{abc}`: the
   * braces are a Redis Cluster hash tag, so `sess:{abc}` and a locker's
   * `lock:{abc}` live in the same slot and one Lua script may touch both.
   * @default 'sess:'
   */
  prefix?: string;
  /**
   * Longest wait for one command (ms). A command that gets no reply by then
   * (server black-holed, cluster node down) fails with a `StoreError`.
   * @default 2000
   */
  timeoutMs?: number;
  /**
   * Acknowledge a save only once this many replicas confirmed it: every write
   * (the versioned write, `SET`, `DEL`, `PEXPIRE`, and RedisLocker's fenced
   * write on the same client) is followed by `WAIT waitForReplicas
   * waitForReplicasTimeoutMs` in the same pipeline (one round trip). A write
   * that fewer replicas confirmed in time fails with a `StoreError` (503,
   * outcome `'unknown'`): it is on the primary, and survives a failover only
   * if the promoted replica got it. With Sentinel, a save answered 200 then
   * survives the primary's loss as long as a replica that confirmed it is
   * promoted (set it to the number of replicas to be sure of that).
   * See docs/redis-sentinel.md. `0`: no wait (Redis's asynchronous
   * replication; a failover may lose the last acknowledged saves).
   * @default 0
   */
  waitForReplicas?: number;
  /**
   * How long `WAIT` waits for {@link waitForReplicas} replicas, in ms. Must be
   * below {@link timeoutMs} (which bounds the whole round trip).
   * @default timeoutMs / 2
   */
  waitForReplicasTimeoutMs?: number;
}

/** Options of {@link RedisStore.connect}: a store that creates (and closes) its own client. */
export interface RedisStoreConnectOptions extends Omit<RedisStoreOptions, 'client'> {
  /** Redis URL, e.g. `redis://127.0.0.1:6379`. */
  url: string;
  /**
   * Extra `createClient` options. By default the client fails fast while
   * disconnected (`disableOfflineQueue: true`) and reconnects with a backoff
   * capped at 1 s, so requests get a 503 quickly and the store recovers on
   * its own when Redis comes back.
   */
  clientOptions?: Omit<RedisClientOptions, 'url'>;
}

export const OPTIONS = ['client', 'prefix', 'timeoutMs', 'waitForReplicas', 'waitForReplicasTimeoutMs'] as const;
export const CONNECT_OPTIONS = ['url', 'clientOptions', 'prefix', 'timeoutMs', 'waitForReplicas', 'waitForReplicasTimeoutMs'] as const;
/** Options of other Redis session stores (koa-redis, connect-redis…), with what to use here. */
export const HINTS: Readonly<Record<string, string>> = {
  url: 'Pass a connected client, or let the store create one: `await RedisStore.connect({ url })`',
  host: "Pass a connected client, or let the store create one: `await RedisStore.connect({ url: 'redis://host:port' })`",
  port: "Pass a connected client, or let the store create one: `await RedisStore.connect({ url: 'redis://host:port' })`",
  db: 'Select the database in the client (`createClient({ database })`) or the URL (`redis://host:port/1`)',
  keyPrefix: 'Use `prefix`',
  ttl: 'The session TTL is an option of session(): `session({ ttl })`',
  maxAge: 'The session TTL is an option of session(): `session({ ttl })`',
  timeout: 'Use `timeoutMs`',
};

/** `waitForReplicas` and its timeout, validated (`undefined`: no WAIT). */
export function resolveReplicaWait(
  input: { waitForReplicas?: unknown; waitForReplicasTimeoutMs?: unknown },
  timeoutMs: number,
  client: RedisClientLike,
): ReplicaWait | undefined {
  const { waitForReplicas: replicas = 0, waitForReplicasTimeoutMs } = input;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    check.fail(
      'waitForReplicas',
      'a non-negative integer (the number of replicas that must confirm a save)',
      replicas,
      'Use 0 (the default) not to wait, or the number of replicas of your primary',
    );
  }
  const waitMs = check.positiveMs('waitForReplicasTimeoutMs', waitForReplicasTimeoutMs, Math.max(1, Math.floor(timeoutMs / 2)));
  if (!(waitMs < timeoutMs)) {
    check.fail(
      'waitForReplicasTimeoutMs',
      `below timeoutMs (${timeoutMs} ms), which bounds the write and its WAIT together`,
      waitMs,
      'Lower it, or raise timeoutMs',
    );
  }
  if (replicas === 0) return undefined;
  if (typeof client.multi !== 'function') {
    check.fail('client', 'a client with multi() (pipelines) when waitForReplicas is set', client);
  }
  return { replicas: replicas as number, timeoutMs: Math.ceil(waitMs) };
}
