/**
 * Your session data. Extend it by declaration merging and `ctx.session` is
 * typed everywhere without casts:
 *
 * @example
 * declare module 'koa-locked-session' {
 *   interface SessionData { count?: number; user?: { id: string } }
 * }
 */
// Its own file so that the handle (session.ts) and the Koa augmentation (koa.ts) both import it without importing each other.
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface SessionData {}
