/**
 * Events emitted on `ctx.app` (Koa's app is an EventEmitter), named
 * `session:<event>` like koa-session. Payloads never contain session data.
 */

/** Why a client's session reference was refused. */
export type InvalidReason = 'bad-signature' | 'bad-format' | 'bad-record' | (string & {});

/**
 * The events, by name, with their payload: `app.on('session:invalid', ({ name, reason }) => …)`.
 * A payload never holds session data.
 */
export interface SessionEvents {
  /** The client sent a sid (or sealed cookie) that failed the signature or format check, or its record could not be parsed. It gets a fresh session. */
  'session:invalid': {
    /** The request's Koa context. */
    ctx: import('koa').Context;
    /** The session's name (`'default'`, or the name given to `session()`). */
    name: string;
    /** Why the reference was refused. */
    reason: InvalidReason;
  };
  /** A well-formed sid had no record in the master any more (expired or destroyed). It gets a fresh session. */
  'session:expired': {
    /** The request's Koa context. */
    ctx: import('koa').Context;
    /** The session's name (`'default'`, or the name given to `session()`). */
    name: string;
  };
  /** A mirror store failed; the request was not failed. */
  'session:mirror-error': {
    /** The failing mirror's `name`. */
    store: string;
    /** The record's key in the mirror (the `prefix` + the session id). */
    sid: string;
    /** The store call that failed. */
    op: 'set' | 'destroy' | 'touch';
    /** What the store threw. */
    error: unknown;
  };
}

/** The name of one of the {@link SessionEvents}. */
export type SessionEventName = keyof SessionEvents;
