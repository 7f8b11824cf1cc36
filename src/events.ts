/**
 * Events emitted on `ctx.app` (Koa's app is an EventEmitter), named
 * `session:<event>` like koa-session. Payloads never contain session data.
 */

/** Why a client's session reference was refused. */
export type InvalidReason =
  | 'bad-signature'
  | 'bad-format'
  | 'bad-record'
  | (string & {});

export interface SessionEvents {
  /** The client sent a sid (or sealed cookie) that failed the signature or format check, or its record could not be parsed. It gets a fresh session. */
  'session:invalid': { ctx: import('koa').Context; name: string; reason: InvalidReason };
  /** A well-formed sid had no record in the master any more (expired or destroyed). It gets a fresh session. */
  'session:expired': { ctx: import('koa').Context; name: string };
  /** A mirror store failed; the request was not failed. */
  'session:mirror-error': { store: string; sid: string; op: 'set' | 'destroy' | 'touch'; error: unknown };
}

export type SessionEventName = keyof SessionEvents;
