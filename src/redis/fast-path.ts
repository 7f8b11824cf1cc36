/**
 * What a RedisStore registers for RedisLocker in the one fast-path registry
 * (src/contracts/fast-path.ts, which says why a registry): the locker then
 * fuses its lock with the store's record (one script for lock + read, one for
 * fenced write + release).
 */
import type { ReplicaWait } from './replicas.js';
import type { Store } from '../contracts/store.js';
import { fastPathOf, registerFastPath } from '../contracts/fast-path.js';

/** What a RedisStore tells RedisLocker about itself. */
export interface RedisFastPath {
  /** The client every command of the store goes through (the fast path needs the locker's own). */
  readonly client: object;
  /** The store's command timeout (ms): it also bounds the fused acquire-and-read. */
  readonly timeoutMs: number;
  /** The full Redis key of session `key`. */
  recordKey(key: string): string;
  /** The store's `waitForReplicas`: the locker's fenced writes wait for the same replicas (`undefined`: no WAIT). */
  readonly replicaWait?: ReplicaWait | undefined;
}

/** Called by RedisStore's constructor: `store` may be fused with a RedisLocker on `info.client`. */
export function registerRedisFastPath(store: object, info: RedisFastPath): void {
  registerFastPath(store, 'redis', info);
}

/** The fast-path description of `store` when it is a RedisStore (or a subclass), else `undefined`. */
export function redisFastPathOf(store: Store | undefined): RedisFastPath | undefined {
  return fastPathOf<RedisFastPath>(store, 'redis');
}
