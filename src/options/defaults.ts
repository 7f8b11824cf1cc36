/**
 * Every default of session() in one object (`DEFAULTS`, exported), which the
 * TSDoc @default of each option states and ./resolve.ts applies. Stores and
 * lockers are not here: they are created per session() call.
 */
import type { MirrorWrites } from '../core/replica.js';
import { COOKIE_DEFAULTS } from '../sid/cookie-attributes.js';

/** Defaults in one place (stores and lockers are created per `session()` call). */
export const DEFAULTS = Object.freeze({
  /** Context property of the handle: `ctx.session`. */
  name: 'session',
  /** A scope ends after the mirrors are written. */
  mirrorWrites: 'await' as MirrorWrites,
  /** Most background mirror writes in flight at once; more are dropped and reported. */
  maxPendingMirrorWrites: 1000,
  /** Bound on every store call, in ms. */
  storeTimeout: 2000,
  /** Server-side idle expiry in ms (24 h). */
  ttl: 24 * 60 * 60 * 1000,
  /** Most ms a scope waits for the lock. */
  lockTimeout: 5000,
  /** Lease handoff bounds (measured: 50 connections on one session, RedisStore + RedisLocker). */
  handoff: Object.freeze({
    /** Most handoffs in a row before the lease goes back to the locker's queue. */
    maxHandoffs: 64,
    /** Most ms the lease stays in this process by handoffs, counted from its acquire. */
    maxMs: 250,
  }),
  /** Group commit bounds (measured: 50 connections on one session, RedisStore + RedisLocker). */
  groupCommit: Object.freeze({
    /** Most scopes whose changes one master write carries. */
    maxScopes: 32,
    /** Most ms a batch takes new scopes, counted from its first. */
    maxMs: 20,
  }),
  /** The expiry is renewed on saves and `touch()` only, not on every request. */
  rolling: false,
  /** No key prefix in the stores and the locker. */
  prefix: '',
  /** The sid cookie: path `/`, HttpOnly, SameSite=Lax, Secure on HTTPS, not partitioned, signed. */
  cookie: Object.freeze({
    /** Cookie name of the default session (a named session uses `<name>.sid`). */
    name: 'sid',
    ...COOKIE_DEFAULTS,
    /** Signed with `app.keys`. */
    signed: true,
  }),
  /** The login helpers (`auth`): the user under `user`, its id from `user.id`, 100 sessions per user, no deprecated `user()`. */
  auth: Object.freeze({
    /** Session data key the logged-in user is stored under. */
    userKey: 'user',
    /** The user's id: `user.id`, or the user itself when it is a string or number. */
    userId: defaultUserId as (user: unknown) => string | number,
    /** Most sessions listed per user in the user index. */
    maxSessionsPerUser: 100,
    /** `ctx.session.user` throws a TypeError naming `currentUser()`. */
    legacyUserMethod: false,
  }),
});

function defaultUserId(user: unknown): string | number {
  if (typeof user === 'string' || typeof user === 'number') return user;
  const id = (user as { id?: unknown } | null)?.id;
  if (typeof id === 'string' || typeof id === 'number') return id;
  throw new TypeError(
    "koa-locked-session: cannot tell the logged-in user's id: give the user an `id` (string or number) or pass `auth: { userId: (user) => ... }` to session()",
  );
}
