/**
 * Error classes of koa-locked-session. Each carries a `code`, a Koa `status`
 * and `expose = false`, so Koa's default error handler answers with the right
 * status without leaking internals (Koa reads `status`, `expose` and `headers`).
 */

import { redactSids, scrubError } from './util/format.js';

/**
 * The `code` of every {@link SessionError}: compare `err.code`, not
 * `instanceof` (the ESM and CommonJS builds each have their own classes).
 */
export type SessionErrorCode =
  | 'ERR_SESSION'
  | 'ERR_SESSION_LOCK_TIMEOUT'
  | 'ERR_SESSION_LOCK_LOST'
  | 'ERR_SESSION_STORE'
  | 'ERR_SESSION_SERIALIZATION'
  | 'ERR_SESSION_COOKIE_TOO_LARGE'
  | 'ERR_SESSION_CLOSED'
  | 'ERR_SESSION_MOVED'
  | 'ERR_SESSION_CONFLICT'
  | 'ERR_SESSION_INDEX_LOST';

/**
 * Base class: every error this library throws on purpose is a `SessionError`.
 * Its message, and the message and stack of its `cause` chain, never contain a
 * session id or a key derived from one (SECURITY.md): they are scrubbed here,
 * whoever built the message (a store quoting a driver's error, say).
 */
export class SessionError extends Error {
  /** The class name (`'StoreError'`, …), as in `err.name`. */
  override name = 'SessionError';
  /** What went wrong, stable across versions and builds: test this, not `instanceof`. */
  readonly code: SessionErrorCode;
  /** HTTP status Koa answers with when the error escapes the middleware. */
  readonly status: number;
  /** Koa: do not show the message to the client. */
  readonly expose = false;
  /** Extra response headers Koa sets when the error escapes (e.g. `Retry-After`). */
  readonly headers?: Record<string, string>;

  constructor(
    message: string,
    options: { code?: SessionErrorCode; status?: number; cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(redactSids(message), options.cause === undefined ? undefined : { cause: options.cause });
    if (options.cause !== undefined) scrubError(options.cause);
    this.code = options.code ?? 'ERR_SESSION';
    this.status = options.status ?? 500;
    if (options.headers) this.headers = options.headers;
  }
}

/** The lock for a session could not be acquired within `lockTimeout`. Status 503 with `Retry-After: 1`. */
export class LockTimeoutError extends SessionError {
  /** `'LockTimeoutError'`. */
  override name = 'LockTimeoutError';
  constructor(timeoutMs: number, options: { cause?: unknown } = {}) {
    super(
      `koa-locked-session: timed out after ${timeoutMs} ms waiting for the session lock (raise \`lockTimeout\` or shorten the work done under the lock)`,
      {
        code: 'ERR_SESSION_LOCK_TIMEOUT',
        status: 503,
        headers: { 'Retry-After': '1' },
        ...options,
      },
    );
  }
}

/** The lease on the lock expired or was taken over before the scope ended: nothing was saved. Status 503. */
export class LockLostError extends SessionError {
  /** `'LockLostError'`. */
  override name = 'LockLostError';
  constructor(
    message = "koa-locked-session: the session lock lease was lost before the save; nothing was saved (raise the locker's `leaseMs` or shorten the work done under the lock)",
    options: { cause?: unknown } = {},
  ) {
    super(message, { code: 'ERR_SESSION_LOCK_LOST', status: 503, headers: { 'Retry-After': '1' }, ...options });
  }
}

/**
 * What a failed store call did to the data:
 * - `'none'`: nothing was written (a read, or a write refused before it could apply);
 * - `'unknown'`: a write that got no answer (timed out, connection lost): it
 *   may have been applied or may still be applied later. Because every write
 *   is conditional on the version it read, a late write can only land if no
 *   other write of that session landed first (then it counts as if it ran
 *   last); it never overwrites newer data.
 */
export type WriteOutcome = 'none' | 'unknown';

/** A store operation failed (server down, timeout, value too large…). The message names the store. Status 503. */
export class StoreError extends SessionError {
  /** `'StoreError'`. */
  override name = 'StoreError';
  /** Name of the store that failed, e.g. `redis`. */
  readonly store: string;
  /**
   * Whether the failed call may have written anything: see {@link WriteOutcome}.
   * Set by the session layer for every failed store call it makes; a store
   * sets `'none'` itself when it knows the command never left (not connected).
   */
  outcome: WriteOutcome | undefined;
  constructor(store: string, message: string, options: { cause?: unknown; status?: number; outcome?: WriteOutcome } = {}) {
    super(`[${store}] ${message}`, { code: 'ERR_SESSION_STORE', status: options.status ?? 503, cause: options.cause });
    this.store = store;
    this.outcome = options.outcome;
  }
}

/**
 * The session this request names was replaced a moment ago by `regenerate()`
 * or `login()` of a request of the same browser (its sid moved): nothing was
 * read or written and no cookie is set. Status 409: the client retries the
 * request, this time with the new cookie it got from the request that moved
 * the session. The old sid never leads to the new session (session fixation).
 */
export class SessionMovedError extends SessionError {
  /** `'SessionMovedError'`. */
  override name = 'SessionMovedError';
  constructor() {
    super(
      'koa-locked-session: this session was regenerated (login or regenerate()) by a concurrent request; nothing was saved. Retry the request with the new session cookie',
      {
        code: 'ERR_SESSION_MOVED',
        status: 409,
      },
    );
  }
}

/**
 * The master refused the save because the record is no longer the version the
 * scope read under the lock (the lock was lost, or a write that had timed out
 * landed in between). Nothing was saved. Status 503 with `Retry-After: 1`.
 */
export class ConflictError extends SessionError {
  /** `'ConflictError'`. */
  override name = 'ConflictError';
  constructor() {
    super(
      'koa-locked-session: the session record changed under the lock (a lost lease or a late write landed first); nothing was saved. Retry the request',
      {
        code: 'ERR_SESSION_CONFLICT',
        status: 503,
        headers: { 'Retry-After': '1' },
      },
    );
  }
}

/** Session data could not be serialized (BigInt, circular reference…) or a custom serializer failed. Nothing was saved. Status 500. */
export class SerializationError extends SessionError {
  /** `'SerializationError'`. */
  override name = 'SerializationError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { code: 'ERR_SESSION_SERIALIZATION', status: 500, ...options });
  }
}

/** A sealed session cookie would exceed the browser limit (4096 bytes). Nothing was sent. Status 500. */
export class CookieTooLargeError extends SessionError {
  /** `'CookieTooLargeError'`. */
  override name = 'CookieTooLargeError';
  /** Size of the sealed cookie that was refused, in bytes. */
  readonly size: number;
  constructor(size: number, limit = 4096) {
    super(
      `koa-locked-session: the sealed session cookie is ${size} bytes, over the ${limit}-byte browser limit; keep large data in a server-side store (RedisStore, MongoStore…) and only ids in the cookie`,
      {
        code: 'ERR_SESSION_COOKIE_TOO_LARGE',
        status: 500,
      },
    );
    this.size = size;
  }
}
