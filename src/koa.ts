import type { SessionHandle } from './session.js';
import type { SessionData } from './session-data.js';

export type { SessionData } from './session-data.js';

declare module 'koa' {
  // ExtendableContext is part of every ParameterizedContext, so the handle is
  // typed in any middleware. Named sessions: add `cart: SessionHandle<CartData>` here.
  interface ExtendableContext {
    /** The lockable session handle installed by `session()` (default name). */
    session: SessionHandle<SessionData>;
  }
}
