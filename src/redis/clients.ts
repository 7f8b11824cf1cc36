/**
 * The shapes of the Redis clients the store and the locker accept, in a file of
 * their own so that the ioredis adapter (which produces both), RedisStore and
 * RedisLocker can all import them without importing each other (no import circle).
 */
/**
 * A node-redis (v5+) client: a single-node client from `createClient()`, a
 * cluster client from `createCluster()` or a Sentinel client from
 * `createSentinel()`, already connected. Structural on
 * purpose: `RedisClusterType<any, …>` rejects real `createCluster()` clients
 * (its `_handleAsk` parameter is invariant in the modules), so whatever modules,
 * scripts, RESP version or type mapping a client has, it is accepted here.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
export interface RedisClientLike {
  /** Connected and ready: a command sent now is not queued behind a reconnect (else the store fails fast). */
  readonly isReady: boolean;
  /** Not closed (it may be reconnecting): tells a reconnecting client from a closed one in errors. */
  readonly isOpen: boolean;
  /** `GET`: reads a plain record. */
  get(...args: any[]): Promise<unknown>;
  /** `SET … PX`: writes a plain record with its TTL. */
  set(...args: any[]): Promise<unknown>;
  /** `DEL`: destroys a record. */
  del(...args: any[]): Promise<unknown>;
  /** `PEXPIRE`: `touch`. */
  pExpire(...args: any[]): Promise<unknown>;
  /** `EVALSHA`: the versioned read and conditional write scripts. */
  evalSha(...args: any[]): Promise<unknown>;
  /** `EVAL`: loads a script the server does not know yet (after a restart or `SCRIPT FLUSH`). */
  eval(...args: any[]): Promise<unknown>;
  /** A view of the client with per-command options (the store's command timeout). */
  withCommandOptions(...args: any[]): unknown;
  /** A pipeline: the write and `WAIT` in one round trip (only used with `waitForReplicas`). */
  multi?(...args: any[]): unknown;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/**
 * What RedisLocker needs of a node-redis (v5+) client: a `createClient()` or a
 * `createCluster()` client, whatever its modules, scripts, RESP version or type
 * mapping, and the client of `RedisStore.connect()`. Typed by shape rather than
 * as `RedisClientType<any…> | RedisClusterType<any…>`: a real cluster client is
 * not assignable to `RedisClusterType<any, any, any, any, any>` (its
 * `_handleAsk` parameter is invariant in the modules), so that union would
 * reject `createCluster()`.
 *
 * `withCommandOptions` (node-redis 5+) is used when present, to send the
 * locker's own commands without node-redis's per-command timeout (the locker
 * bounds each one itself); `duplicate` opens the pub/sub connection for
 * wake-ups (without it waiters only poll).
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
export interface RedisLockerClient {
  /** Connected and ready: an acquire sent now is not queued behind a reconnect. */
  readonly isReady: boolean;
  /** Not closed (it may be reconnecting). */
  readonly isOpen: boolean;
  /** `EVALSHA`: the acquire, renew and release scripts. */
  evalSha(...args: any[]): Promise<unknown>;
  /** `EVAL`: loads a script the server does not know yet (after a restart or `SCRIPT FLUSH`). */
  eval(...args: any[]): Promise<unknown>;
  /** A view of the client with per-command options: bounds each lock command in time. */
  withCommandOptions?(...args: any[]): unknown;
  /** Opens the pub/sub connection for release wake-ups (without it, waiters only poll). */
  duplicate?(...args: any[]): unknown;
}
/* eslint-enable @typescript-eslint/no-explicit-any */
