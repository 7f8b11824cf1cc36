import './koa.js';

export { session, type SessionMiddleware } from './middleware.js';
export { CHANNELS, type LockMessage, type StoreMessage, type MirrorErrorMessage } from './diagnostics.js';
export { SessionHandle, type LockedSession, type LoginOptions, type UserOf } from './session.js';
export { requireLogin, type RequireLoginOptions } from './auth.js';
export type { SessionData } from './koa.js';
export { DEFAULTS, type SessionOptions, type CookieOptions, type AuthOptions } from './options.js';
export { MemoryStore, type MemoryStoreOptions } from './stores/memory.js';
export type { Store, RequestStore, BoundRequestStore, RequestStoreHooks } from './stores/store.js';
export {
  CookieStore,
  type BoundCookieStore,
  type CookieBindHooks,
  type CookieSetOptions,
  type CookieStoreOptions,
  type CookieStoreCookieOptions,
  type ResolvedCookieStoreCookie,
} from './stores/cookie.js';
export type { KeyInput } from './seal.js';
export { MemoryLocker } from './lockers/memory.js';
export type { Locker, Lease, AcquireOptions } from './lockers/locker.js';
export { Replica, type MirrorError, type MirrorWrites, type ReplicaOptions } from './replica.js';
export { jsonSerializer, type Serializer } from './serialize.js';
export type { SessionEvents, SessionEventName, InvalidReason } from './events.js';
export {
  SessionError,
  LockTimeoutError,
  LockLostError,
  StoreError,
  SerializationError,
  CookieTooLargeError,
  type SessionErrorCode,
} from './errors.js';
