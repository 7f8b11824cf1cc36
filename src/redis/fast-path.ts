/**
 * The contract through which RedisLocker recognises a RedisStore master and
 * fuses its lock with the store's record (one script for lock + read, one for
 * fenced write + release).
 *
 * A registry rather than a member: nothing duck-types `client`/`keyFor` (renaming
 * a public method can never silently turn fencing off), and nothing internal
 * shows in the store's published type. The registry lives under a
 * `Symbol.for` key on `globalThis`, so the ESM and CommonJS copies of this
 * package (dual-package hazard) recognise each other's stores.
 */
import type { ReplicaWait } from './replicas.js';
import type { Store } from '../contracts/store.js';

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

const REGISTRY = Symbol.for('koa-locked-session.redisFastPaths');
type Registry = WeakMap<object, RedisFastPath>;
const registry: Registry = ((globalThis as { [REGISTRY]?: Registry })[REGISTRY] ??= new WeakMap());

/** Called by RedisStore's constructor: `store` may be fused with a RedisLocker on `info.client`. */
export function registerRedisFastPath(store: object, info: RedisFastPath): void {
  registry.set(store, info);
}

/** The fast-path description of `store` when it is a RedisStore (or a subclass), else `undefined`. */
export function redisFastPathOf(store: Store | undefined): RedisFastPath | undefined {
  return store === undefined ? undefined : registry.get(store);
}
