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

// ---- request-bound stores: records that travel with the request ----------

/**
 * The one seam through which the core knows a store whose records live in
 * the request itself (CookieStore): it is not a {@link Store} — outside a
 * request there is nothing to read or write — but a factory the middleware
 * binds to each request, lazily, on the first use of the session (koa-session's
 * `ContextStore` constructed per request, in one method). Recognised by the
 * `bindRequest` member of this type ({@link isRequestStore}); pass it as
 * `session({ master })`, never as a mirror.
 */
export interface RequestStore {
  /** Short name for logs, events and errors, e.g. `cookie`. */
  readonly name: string;
  /**
   * Bind to one request. The returned store's `sid` is the stable session id
   * found in the request, or `undefined` when the request brought none or an
   * invalid one (then `hooks.onInvalid` has been called with a short reason).
   * The returned store reads and writes this request's records.
   */
  bindRequest(ctx: import('koa').Context, hooks: RequestStoreHooks): BoundRequestStore;
  /** Release what the store keeps in process (never a client's cookie). */
  close?(): Promise<void>;
}

/** What the middleware tells a {@link RequestStore} about the request's session. */
export interface RequestStoreHooks {
  /** Called once, with a short reason, when the request brought a session that does not open. */
  onInvalid(reason: string): void;
  /** The middleware's `cookie.maxAge` (`'session'`: browser-session cookies). */
  maxAge?: number | 'session';
}

/** What a save tells a {@link BoundRequestStore} besides the record (the other stores need nothing). */
export interface RequestWriteOptions {
  /**
   * `true`: a browser-session cookie (login with `remember: false`, or
   * `cookie.maxAge: 'session'`); `false`: a persistent one. Omitted: keep what
   * the session's cookie already was.
   */
  sessionCookie?: boolean;
}

/**
 * A {@link RequestStore} bound to one request: a Store for that request's
 * session (the middleware uses it as the master, in front of the mirrors).
 * Its keys are bare session ids (the middleware's `prefix` is for server-side
 * stores and locks only).
 */
export interface BoundRequestStore extends Store {
  /** The stable session id carried by the request, if valid. */
  readonly sid: string | undefined;
  set(key: string, value: string, ttlMs: number, options?: RequestWriteOptions): Promise<void>;
  touch(key: string, ttlMs: number, options?: RequestWriteOptions): Promise<void>;
}

/** True when `store` is a {@link RequestStore} (its records live in the request). */
export function isRequestStore(store: Store | RequestStore): store is RequestStore {
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
