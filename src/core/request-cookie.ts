import type { Context } from 'koa';
import type { RequestWriteOptions } from '../contracts/store.js';
import { SessionError } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import type { SidTransport } from '../sid/transport.js';
import type { RecordFormat, SessionMeta } from './record.js';

/**
 * When one request sends, re-sends or clears its sid cookie, and with what
 * lifetime: the cookie rules of docs/architecture.md step 8 in one place, apart
 * from the session state that request.ts keeps (it calls these at each outcome
 * of a scope and at the end of the request). The sid cookie goes out when the
 * sid changed, on every save of a persistent cookie (the save renewed the
 * session's expiry, and a cookie's lifetime counts from the response), or when
 * its signature was made with an older key; it is cleared when the session is
 * gone, and never touched once the response headers are out. A request store
 * (CookieStore) writes its own cookie on each master write: for it, this only
 * decides the cookie kind that travels with the write.
 */
export class RequestCookie {
  /** The request's master is a bound request store: it writes its own cookie (set by `RequestSession.resolve`). */
  requestStore = false;
  /** The request's sid was verified with an older key: the next save re-signs its cookie. */
  stale = false;
  /** This request sent or cleared the cookie (or chose not to re-send it): no rolling renewal at its end. */
  written = false;

  constructor(
    private readonly ctx: Context,
    private readonly transport: SidTransport,
    private readonly options: ResolvedOptions,
    private readonly format: RecordFormat,
  ) {}

  /** What a save of a record with `meta` tells a request store: the cookie kind (`undefined`: no request store). */
  kind(meta: SessionMeta | undefined): RequestWriteOptions | undefined {
    if (!this.requestStore) return undefined;
    return meta?.remember === false || this.options.cookie.maxAge === 'session' ? SESSION_COOKIE : PERSISTENT_COOKIE;
  }

  /**
   * A save put the session under `sid` (`moved`: not the sid the request had).
   * `resend` false: the record is gone already (see `ScopePort.adopted`), so
   * nothing is sent, nor renewed at the end of the request.
   */
  saved(sid: string, moved: boolean, meta: SessionMeta | undefined, resend: boolean): void {
    this.written = true;
    if (!resend) return;
    // The client already holds this sid: re-send it only when the cookie has an expiry to move
    // (every save renews the session's), or its signature was made with an older key.
    if (moved || this.stale || this.#expiry(meta) !== 'session') this.write(sid, meta);
  }

  /** The session is gone: clear the client's cookie, if the request brought a sid (`had`) and the headers are not out. */
  cleared(had: boolean): void {
    if (had && !this.requestStore && !this.ctx.headerSent) this.transport.clear(this.ctx);
    this.written = true;
  }

  /**
   * A save that must send a new cookie is refused before anything is written
   * once the response headers are out (a scope started after the response):
   * the browser could never learn the new sid.
   */
  checkWritable(): void {
    if (this.ctx.headerSent && !this.requestStore) {
      throw new SessionError(
        'koa-locked-session: the response was already sent, so a new session cookie cannot be set; nothing was saved. Open session scopes before the response is sent (await them in the middleware)',
        { status: 500 },
      );
    }
  }

  /** Send the cookie of `sid`, with the lifetime of a session whose record has `meta`. */
  write(sid: string, meta: SessionMeta | undefined): void {
    this.written = true;
    if (this.requestStore) return; // a request store (CookieStore) writes its own cookie on set/touch
    if (this.ctx.headerSent) return; // a scope run after the response: same sid, the cookie already sent stays valid
    this.transport.write(this.ctx, sid, this.#expiry(meta));
    this.stale = false;
  }

  /** The sid cookie's lifetime for this session: ms, or `'session'` (a browser-session cookie, or the header transport). */
  #expiry(meta: SessionMeta | undefined): number | 'session' {
    if (this.options.header !== undefined) return 0; // the header transport answers every save, as it always did
    const { maxAge } = this.options.cookie;
    if (meta?.remember === false || maxAge === 'session') return 'session';
    return meta?.ttl !== undefined || meta?.created !== undefined ? Math.min(maxAge, this.format.ttl(meta)) : maxAge;
  }
}

/** What a save tells a request-bound master: the cookie kind (shared, never mutated). */
const SESSION_COOKIE: RequestWriteOptions = Object.freeze({ sessionCookie: true });
const PERSISTENT_COOKIE: RequestWriteOptions = Object.freeze({ sessionCookie: false });
