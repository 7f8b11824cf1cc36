import type { IndexHost } from '../auth/index-upkeep.js';
import type { RequestWriteOptions } from '../contracts/store.js';
import type { Lifecycle } from './lifecycle.js';
import type { SessionMeta } from './record.js';

/**
 * What a scope knows of its request's session, and all it tells it: the one
 * way between a `Scope` (scope.ts) and `RequestSession` (request.ts), which
 * implements it. The scope reads the sid, the replica, the record format and
 * options (with the per-user index: {@link IndexHost}) and the request's open
 * scope; it tells the outcomes of its saves. `Scope` is the type of the open
 * scope, a parameter so that this file imports no scope (no import circle).
 */
export interface ScopePort<Scope> extends IndexHost {
  readonly lifecycle: Lifecycle;
  /** The open scope of this request, if any (nested and parallel scopes join it). */
  active: Scope | undefined;
  /** The sid the request's session lives under now (`undefined`: new or gone); read from the request on first use. */
  readonly sid: string | undefined;
  /** The request's records live in the client (CookieStore): no server-side user index, the store writes its own cookie. */
  readonly clientSide: boolean;

  // ---- the outcomes of a scope ----

  /**
   * The settings of the record about to be saved (they decide the cookie's expiry);
   * returns what the save tells a request-bound master (the cookie kind), if any.
   */
  saving(meta: SessionMeta | undefined): RequestWriteOptions | undefined;
  /**
   * A new sid for the session. Throws before anything is written when the
   * response headers are out: the browser could never learn it.
   */
  newSid(): string;
  /**
   * The session now lives under `sid` with record `value` (cookie sent).
   * `resend` false: the record was saved but is gone already (group commit: a
   * later scope of the batch moved or ended the session in the same write), so
   * no cookie of `sid` is sent, nor renewed at the end of the request.
   */
  adopted(sid: string, value: string, resend?: boolean): void;
  /** This request destroyed its session (get() now answers `{}`). */
  destroyed(): void;
  /**
   * The client's sid is dead: later scopes start a new session and the stale
   * cookie is cleared. `why`: its record was found gone, past its
   * `absoluteTtl`, or not decodable (reported as session:expired /
   * session:invalid); none: the request ended it itself (destroy).
   */
  forgotten(why?: 'gone' | 'absolute-ttl' | 'bad-record'): void;
  /** The cookie of `sid` is re-sent (a touch moved its expiry). */
  cookieRefreshed(sid: string): void;
}
