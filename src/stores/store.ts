/**
 * The contract every session store implements. Records are opaque strings
 * (the serializer's output); the store only keeps them and enforces expiry.
 *
 * Rules every store follows (checked by `test/stores/conformance.ts`):
 * - Expiry is enforced **on read**: `get` never returns a record whose TTL has
 *   passed, even if the server has not evicted it yet.
 * - Keys reach the store already validated (`[A-Za-z0-9_-]` plus the session
 *   prefix); stores add their own prefix.
 * - Failures reject with a `StoreError` that names the store.
 */
export interface Store {
  /** Short name for logs, events and errors, e.g. `memory`, `redis`. */
  readonly name: string;
  /** The serialized record, or `undefined` when absent or expired. */
  get(key: string): Promise<string | undefined>;
  /** Write (create or overwrite) a record that expires after `ttlMs` milliseconds. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Delete a record; deleting an absent key is not an error. */
  destroy(key: string): Promise<void>;
  /** Extend a record's expiry to `ttlMs` from now without changing it. A no-op for an absent key (never recreates it). */
  touch?(key: string, ttlMs: number): Promise<void>;
  /** Release resources the store created itself (never a client it was given). */
  close?(): Promise<void>;
}

/** True when `value` has the shape of a {@link Store}. */
export function isStore(value: unknown): value is Store {
  const s = value as Partial<Store> | null;
  return (
    typeof s === 'object' && s !== null &&
    typeof s.name === 'string' &&
    typeof s.get === 'function' && typeof s.set === 'function' && typeof s.destroy === 'function'
  );
}

/**
 * A store whose records travel with the request itself (CookieStore). The
 * middleware binds it to each request lazily, on the first use of the session.
 */
export interface RequestStore extends Store {
  /**
   * Bind to one request. `sid` is the stable session id found in the request
   * (sealed inside the cookie), or `undefined` when the request brought none or
   * an invalid one (then `onInvalid` has been called with a short reason).
   * The returned store reads and writes this request's cookie.
   */
  bindRequest(ctx: import('koa').Context, hooks: RequestStoreHooks): BoundRequestStore;
}

/** What the middleware tells a {@link RequestStore} about the request's session. */
export interface RequestStoreHooks {
  /** Called once, with a short reason, when the request brought a session that does not open. */
  onInvalid(reason: string): void;
  /** The middleware's key prefix: keys given to get/set/destroy/touch are `prefix + sid`. */
  prefix?: string;
  /** The middleware's `cookie.maxAge` (`'session'`: browser-session cookies). */
  maxAge?: number | 'session';
}

/** A {@link RequestStore} bound to one request. */
export interface BoundRequestStore extends Store {
  /** The stable session id carried by the request, if valid. */
  readonly sid: string | undefined;
  /** Set by the middleware before a save: `true` for a browser-session cookie (login with `remember: false`). */
  sessionCookie?: boolean | undefined;
}

/** True when `store` is a {@link RequestStore} (its records live in the request). */
export function isRequestStore(store: Store): store is RequestStore {
  return typeof (store as Partial<RequestStore>).bindRequest === 'function';
}
