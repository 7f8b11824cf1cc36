/**
 * `fromConnectStore(store)`: an express-session ("connect") store — connect-redis,
 * connect-mongo, connect-pg-simple, … — as our {@link Store}.
 *
 * What it is and is not:
 * - Locked: requests of one session still take the session lock and read the
 *   record fresh under it, so overlapping requests never lose an update.
 * - Not versioned: a connect store has no conditional write, so the adapted
 *   store is a plain {@link Store}. A save that stalls past `storeTimeout` (or
 *   a lost lease) can still land late over newer data; a RedisLocker warns
 *   about this at startup. Use a built-in store as master where that matters.
 * - No `touch()`: the connect `touch(sid, sess)` only moves the peer's own
 *   expiry, not the expiry kept in our record, and a read-modify-write touch
 *   outside the lock could undo a concurrent save. With `rolling`, the
 *   server-side expiry of an adapted store therefore moves on saves only.
 */
import { withDeadline } from '../util/deadline.js';
import { StoreError } from '../errors.js';
import { errorMessage } from '../util/format.js';
import type { Store } from '../contracts/store.js';
import { checkAdaptedTtl, checkPeerStore } from './peer-store.js';
import { fromAdapted, toAdapted } from './record.js';

/** A node-style callback, as express-session stores take. */
export type ConnectCallback<T = unknown> = (error?: unknown, result?: T) => void;

/**
 * The part of an express-session `Store` the adapter calls (callback style, as
 * in express-session's own `Store` class). Structural, so that no express
 * types are needed.
 */
export interface ConnectStoreLike {
  /** Call back with the session stored under `sid` (null/undefined when none). */
  get(sid: string, callback: ConnectCallback<unknown>): unknown;
  /** Store `session` under `sid`; its lifetime comes from `session.cookie.expires`. */
  set(sid: string, session: object, callback?: ConnectCallback): unknown;
  /** Delete the session under `sid`. */
  destroy(sid: string, callback?: ConnectCallback): unknown;
}

/** Options of {@link fromConnectStore}. */
export interface ConnectStoreAdapterOptions {
  /**
   * The store's name in logs, events and errors.
   * @default `connect:<class name>` (e.g. `connect:RedisStore`)
   */
  name?: string;
  /**
   * Longest wait for one call (ms): a store that never calls back fails with a
   * `StoreError` instead of holding the session lock forever.
   * @default 2000
   */
  timeoutMs?: number;
}

/**
 * Wrap an express-session store so it can be a `master` or a mirror.
 * The store keeps its own key prefix (connect-redis: `sess:`); keys it gets are
 * ours (`prefix + sid`), so our records never collide with the old library's.
 *
 * @example
 * import { RedisStore as ConnectRedis } from 'connect-redis';
 * app.use(session({ master: fromConnectStore(new ConnectRedis({ client })) }));
 */
export function fromConnectStore(store: ConnectStoreLike, options: ConnectStoreAdapterOptions = {}): Store {
  const { name, timeoutMs } = checkPeerStore(store, options, {
    fn: 'fromConnectStore',
    takes: 'an express-session store',
    namePrefix: 'connect',
  });

  /** Call the store with a node-style callback, bounded by `timeoutMs` (the shared deadline sweeper, no timer per call). */
  function call<T>(what: string, invoke: (callback: ConnectCallback<T>) => unknown): Promise<T> {
    const settle = () =>
      new Promise<T>((resolve, reject) => {
        const done: ConnectCallback<T> = (error, result) => (error ? reject(error) : resolve(result as T));
        try {
          const returned = invoke(done);
          // Some stores (connect-redis >= 8) also return a promise: a rejection there must not go unhandled.
          if (returned && typeof (returned as Promise<unknown>).then === 'function') (returned as Promise<unknown>).then(undefined, done);
        } catch (error) {
          done(error);
        }
      });
    return withDeadline(settle, timeoutMs, () => new StoreError(name, `${what} failed: no callback within ${timeoutMs} ms`)).catch(
      (error: unknown) => {
        if (error instanceof StoreError) throw error;
        throw new StoreError(name, `${what} failed: ${errorMessage(error)}`, { cause: error });
      },
    );
  }

  return {
    name,
    async get(key) {
      return fromAdapted(await call<unknown>('get', (cb) => store.get(key, cb)));
    },
    async set(key, value, ttlMs) {
      checkAdaptedTtl(name, ttlMs);
      await call('set', (cb) => store.set(key, toAdapted(value, ttlMs), cb));
    },
    async destroy(key) {
      await call('destroy', (cb) => store.destroy(key, cb));
    },
  };
}
