/**
 * `fromKoaStore(store)`: a koa-session external store or a koa-generic-session
 * store (koa-redis, koa-mysql-session, …) as our {@link Store}. Both APIs are
 * promise based: `get(key, maxAge?, opts?)`, `set(key, sess, maxAge, opts?)`
 * (maxAge in ms), `destroy(key, opts?)`.
 *
 * Like {@link fromConnectStore}: locked (overlapping requests never lose an
 * update), but not versioned (a save stalled past `storeTimeout` can land
 * late; RedisLocker warns), and no `touch()` (rolling expiry moves on saves).
 * Our expiry is kept inside the record and checked on read, because these
 * stores round `maxAge` to whole seconds.
 */
import { StoreError } from '../errors.js';
import { errorMessage } from '../util/format.js';
import { withDeadline } from '../util/deadline.js';
import type { Store } from '../contracts/store.js';
import { checkAdaptedTtl, checkPeerStore } from './peer-store.js';
import { fromAdapted, toAdapted } from './record.js';

/** The part of a koa-session / koa-generic-session store the adapter calls. */
export interface KoaStoreLike {
  /** The session stored under `key` (a promise; null/undefined when none). */
  get(key: string, maxAge?: number, options?: { rolling: boolean }): unknown;
  /** Store `session` under `key` for `maxAge` ms (a promise). */
  set(key: string, session: object, maxAge: number, options?: { rolling: boolean; changed: boolean }): unknown;
  /** Delete the session under `key` (a promise). */
  destroy(key: string, options?: object): unknown;
}

/** Options of {@link fromKoaStore}. */
export interface KoaStoreAdapterOptions {
  /**
   * The store's name in logs, events and errors.
   * @default `koa:<class name>` (e.g. `koa:RedisStore`)
   */
  name?: string;
  /**
   * Longest wait for one call (ms): a store that never settles fails with a
   * `StoreError` instead of holding the session lock forever.
   * @default 2000
   */
  timeoutMs?: number;
}

/**
 * Wrap a koa-session external store or a koa-generic-session store so it can
 * be a `master` or a mirror. Keys it gets are ours (`prefix + sid`); koa-redis
 * adds no prefix of its own, so give our `prefix` option one (e.g. `'kls:'`)
 * to keep our records apart from the old library's keys.
 *
 * @example
 * import redisStore from 'koa-redis';
 * app.use(session({ prefix: 'kls:', master: fromKoaStore(redisStore({ url })) }));
 */
export function fromKoaStore(store: KoaStoreLike, options: KoaStoreAdapterOptions = {}): Store {
  const { name, timeoutMs } = checkPeerStore(store, options, {
    fn: 'fromKoaStore',
    takes: 'a koa-session or koa-generic-session store',
    namePrefix: 'koa',
  });

  async function call<T>(what: string, fn: () => unknown): Promise<T> {
    try {
      return await withDeadline(
        async () => (await fn()) as T,
        timeoutMs,
        () => new StoreError(name, `${what} failed: no reply within ${timeoutMs} ms`),
      );
    } catch (error) {
      if (error instanceof StoreError) throw error;
      throw new StoreError(name, `${what} failed: ${errorMessage(error)}`, { cause: error });
    }
  }

  return {
    name,
    async get(key) {
      return fromAdapted(await call<unknown>('get', () => store.get(key, undefined, { rolling: false })));
    },
    async set(key, value, ttlMs) {
      checkAdaptedTtl(name, ttlMs);
      const record = toAdapted(value, ttlMs);
      await call('set', () => store.set(key, record, record.cookie.originalMaxAge, { rolling: false, changed: true }));
    },
    async destroy(key) {
      await call('destroy', () => store.destroy(key, {}));
    },
  };
}
