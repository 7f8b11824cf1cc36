import type { SessionHandle } from './session.js';

/**
 * Your session data. Extend it by declaration merging and `ctx.session` is
 * typed everywhere without casts:
 *
 * @example
 * declare module 'koa-locked-session' {
 *   interface SessionData { count?: number; user?: { id: string } }
 * }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface SessionData {}

declare module 'koa' {
  // ExtendableContext is part of every ParameterizedContext, so the handle is
  // typed in any middleware. Named sessions: add `cart: SessionHandle<CartData>` here.
  interface ExtendableContext {
    /** The lockable session handle installed by `session()` (default name). */
    session: SessionHandle<SessionData>;
  }
}
