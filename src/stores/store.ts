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
  /**
   * The store's own bound on each call (ms), when it has one: every call that
   * gets no answer within `timeoutMs` rejects with a `StoreError`; `0` for a
   * store whose calls never wait on I/O (MemoryStore). The session then adds
   * no deadline of its own to the store's calls while its `storeTimeout` is at
   * least this long (one deadline per call, not two); a store without it is
   * bounded by `storeTimeout`. Leave it out unless your store bounds every call.
   */
  readonly timeoutMs?: number;
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

// ---- versioned records: writes that refuse to overwrite newer data ----------

/**
 * A record with its version. Every write of a session made by the middleware
 * carries the version it creates (the version it read + 1; 1 for a new sid), so
 * a write that lands late (stalled past `storeTimeout`, a paused process) can
 * be refused by the store itself instead of erasing a newer record. A record
 * written without a version (by `set()`, by hand, by an older release) is
 * version 0.
 */
export interface VersionedRecord {
  /** The serialized record; `undefined` for a tombstone (a deleted record whose version is kept for a while). */
  readonly value: string | undefined;
  /** Its version: 0 for a record written without one, else the number of the write that made it. */
  readonly version: number;
}

/**
 * When a versioned write applies, checked atomically where the record lives:
 * - a number: the master write of a scope; it applies only if the live record
 *   has exactly this version (it is the record the scope read under the lock);
 * - `null`: a new sid; it applies only if nothing (no record, no tombstone) is
 *   stored under the key;
 * - `'newer'`: a mirror write; it applies only if the key holds no record and
 *   no tombstone with this version or a later one (out-of-order and late
 *   mirror writes are dropped, never applied over newer data).
 */
export type WriteCondition = number | null | 'newer';

/**
 * A store whose writes are conditional on the record's version (every built-in
 * store but CookieStore). The middleware uses these methods when a store has
 * them; a store without them gets plain `get/set/destroy`, and a write that
 * times out on it may land late (a startup warning says so).
 */
export interface VersionedStore extends Store {
  /**
   * The record and its version (`value` undefined: a tombstone), or
   * `undefined` when nothing unexpired is stored under the key.
   */
  read(key: string): Promise<VersionedRecord | undefined>;
  /**
   * Write `value` as `version` if `condition` holds, atomically; resolves
   * `false`, having changed nothing, when it does not. With `value ===
   * undefined` it deletes: `ttlMs > 0` leaves a tombstone of `version` for
   * `ttlMs` (so that an older write landing later is refused too, and readers
   * can tell "deleted a moment ago" from "never existed"); `ttlMs === 0`
   * removes the key.
   */
  write(key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition): Promise<boolean>;
}

/** True when `store` supports versioned, conditional writes. */
export function isVersioned(store: Store): store is VersionedStore {
  return typeof (store as Partial<VersionedStore>).read === 'function' && typeof (store as Partial<VersionedStore>).write === 'function';
}
