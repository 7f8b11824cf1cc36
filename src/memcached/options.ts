/**
 * The options of MemcachedStore and of the `memcached` client it creates (the
 * fail-fast defaults). Their own file: the types a user reads, apart from the
 * store's mechanics.
 */
import type Memcached from 'memcached';

/**
 * Options for a `memcached` client that fails fast and recovers by itself:
 * a dead server makes requests fail within about 150 ms (connection refused)
 * or `timeout` ms (black-holed) instead of after the library's multi-second
 * retries, and the next request after the server comes back succeeds.
 * {@link MemcachedStore} uses them for the client it creates.
 */
export const MEMCACHED_FAIL_FAST_OPTIONS = Object.freeze({
  /** Connection-pool retries per request, with a short backoff (20, 40, 80 ms): they absorb a burst that fills the pool, not an outage. */
  retries: 3,
  /** Each pool retry waits twice as long as the one before. */
  factor: 2,
  /** The first pool retry waits 20 ms. */
  minTimeout: 20,
  /** No pool retry waits longer than 200 ms. */
  maxTimeout: 200,
  /** Connect timeout (ms). */
  timeout: 1000,
  /** Close connections idle for this long (ms). */
  idle: 5000,
  /** Never drop a server from the hash ring: its sessions would silently vanish. */
  remove: false,
} satisfies MemcachedClientOptions);

/** `memcached` client options, including the pool-retry ones its typings leave out. */
export type MemcachedClientOptions = Memcached.options & {
  /** Pool retry backoff factor. @default 3 */
  factor?: number;
  /** Pool retry first delay (ms). @default 1000 */
  minTimeout?: number;
  /** Pool retry longest delay (ms). @default 60000 */
  maxTimeout?: number;
};

/** Options of {@link MemcachedStore}: pass `client` or `servers`. */
export type MemcachedStoreOptions = MemcachedStoreCommonOptions &
  (
    | {
        /** A `memcached` client you created; the store never ends it. */
        client: Memcached;
        /** Not with `client`: the client already knows its servers. */
        servers?: never;
        /** Not with `client`: configure the client you created. */
        clientOptions?: never;
      }
    | {
        /**
         * Server location(s) for a client the store creates on first use (and
         * ends on `close()`): `'127.0.0.1:11211'`, an array, or `{ 'host:port': weight }`.
         * @example new MemcachedStore({ servers: process.env.MEMCACHED_URL ?? '127.0.0.1:11211' })
         */
        servers: Memcached.Location;
        /** Extra `memcached` client options, merged over {@link MEMCACHED_FAIL_FAST_OPTIONS}. */
        clientOptions?: MemcachedClientOptions;
        /** Not with `servers`: pass one or the other. */
        client?: never;
      }
  );

/** Options every {@link MemcachedStore} takes. */
export interface MemcachedStoreCommonOptions {
  /**
   * Prepended to every key (after the client's own `namespace`, if any). The
   * full key must fit in 250 bytes.
   * @default 'sess:'
   */
  prefix?: string;
  /**
   * Longest wait for one operation (ms). The `memcached` library never calls
   * back for a command that was in flight when a server died: this bound
   * turns that into a `StoreError`.
   * @default 2000
   */
  timeoutMs?: number;
  /**
   * Largest value accepted (bytes). By default it is read once from the
   * server (`stats settings` → `item_size_max`, memcached `-I`) less a small
   * allowance for the item header, so an oversized session fails with a clear
   * `StoreError` before anything is sent.
   */
  maxValueBytes?: number;
}
