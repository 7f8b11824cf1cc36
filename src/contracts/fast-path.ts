/**
 * The one fast-path mechanism: how a locker recognises a master store it can
 * fuse its lock with (RedisLocker + RedisStore on one client: lock and read in
 * one script, fenced write + release in another; PostgresLocker + PostgresStore
 * on one pool: the row read and written inside the lock's transaction).
 *
 * A store registers what its locker needs under its backend's name when it is
 * constructed; the locker looks it up by the store object and decides whether
 * it applies (same client, same pool, same hash slot…).
 *
 * A registry rather than a member: nothing duck-types public members (renaming
 * one can never silently turn fencing off), and nothing internal shows in the
 * store's published type. The registry lives under a `Symbol.for` key on
 * `globalThis`, so the ESM and CommonJS copies of this package (dual-package
 * hazard) recognise each other's stores. Keyed by the object: a wrapper around
 * a store is not that store, and gets no fast path.
 */
/** The backends with a fast path; each defines the shape of what its store registers. */
export type FastPathBackend = 'redis' | 'postgres';

const REGISTRY = Symbol.for('koa-locked-session.fastPaths');
type Registry = WeakMap<object, Partial<Record<FastPathBackend, unknown>>>;
const registry: Registry = ((globalThis as { [REGISTRY]?: Registry })[REGISTRY] ??= new WeakMap());

/** Called by a store's constructor: `store` may be fused with a locker of `backend` (`info`: what that locker needs). */
export function registerFastPath<T>(store: object, backend: FastPathBackend, info: T): void {
  const entry = registry.get(store) ?? {};
  entry[backend] = info;
  registry.set(store, entry);
}

/** What `store` registered for `backend` (a store of that backend, or a subclass), else `undefined`. */
export function fastPathOf<T>(store: unknown, backend: FastPathBackend): T | undefined {
  if (typeof store !== 'object' || store === null) return undefined;
  return registry.get(store)?.[backend] as T | undefined;
}
