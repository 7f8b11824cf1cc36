/**
 * Which master a RedisLocker can fuse its lock with (the fast path, registered
 * by RedisStore: src/redis/fast-path.ts), and the warning for a master that
 * cannot refuse a late write. Its own file: it is about the store, not the lock.
 */
import { debuglog } from 'node:util';
import { isVersioned, type Store, type VersionedStore } from '../contracts/store.js';
import { redisFastPathOf, type RedisFastPath } from './fast-path.js';
import { hashTag } from './identity.js';

const debug = debuglog('koa-locked-session');

/** The fast-path view of a RedisStore master, with the store itself. */
export interface FastPath extends RedisFastPath {
  readonly store: VersionedStore;
}

/**
 * The master store, when the fast path (one-script acquire+read, fenced
 * writes) applies: a RedisStore on `client` (the locker's) whose record key
 * shares the lock key's hash tag on a cluster (`clusterLockKey`: the lock key
 * when on a cluster; else a cluster refuses the script: CROSSSLOT).
 */
export function fastPathFor(
  store: Store | undefined,
  client: object,
  key: string,
  clusterLockKey: string | undefined,
): FastPath | undefined {
  const fast = redisFastPathOf(store);
  if (!fast || fast.client !== client || !isVersioned(store!)) return undefined;
  if (clusterLockKey !== undefined && hashTag(fast.recordKey(key)) !== hashTag(clusterLockKey)) {
    debug('redis locker: the record key and the lock key of a session are in different slots (prefixes with braces?): no fast path');
    return undefined;
  }
  return {
    client: fast.client,
    timeoutMs: fast.timeoutMs,
    recordKey: fast.recordKey,
    replicaWait: fast.replicaWait,
    store: store! as VersionedStore,
  };
}

/**
 * Warn when the master cannot refuse a late write (true: warned, the caller
 * warns once): with a versioned master (every built-in server-side store) a
 * write that lands after its lease was lost is refused by the store itself; a
 * custom store without `read`/`write` gets only the lease check before the save.
 */
export function warnIfUnfenced(store: Store | undefined): boolean {
  if (!store || isVersioned(store)) return false;
  // A request-bound store (CookieStore) keeps the record in the response: nothing can land late.
  if ('sid' in store) return false;
  process.emitWarning(
    `koa-locked-session: RedisLocker cannot fence the master store "${store.name}": it has no versioned read()/write() (VersionedStore), so a save that stalls past its lease or past storeTimeout can still land over newer data. Use a built-in store (RedisStore, MemcachedStore, MongoStore, MemoryStore) as master, or implement read() and write() in your store`,
    { code: 'KOA_LOCKED_SESSION_UNFENCED_MASTER' },
  );
  return true;
}
