import './koa.js';

export { session, type SessionMiddleware } from './middleware.js';
export { CHANNELS, type LockMessage, type StoreMessage, type MirrorErrorMessage } from './diagnostics.js';
export { SessionHandle, type LockedSession, type LoginOptions, type UserOf } from './session.js';
export { requireLogin, type RequireLoginOptions } from './auth/auth.js';
export { plainSession, plainSessionOf, passportUser, type PlainSessionOptions } from './plain/middleware.js';
export { PlainSessionView, type PlainSession, type NodeCallback } from './plain/view.js';
export type { SessionData } from './session-data.js';
export { DEFAULTS, type SessionOptions, type CookieOptions, type AuthOptions } from './options.js';
export { MemoryStore, type MemoryStoreOptions } from './memory/store.js';
export {
  isVersioned,
  isRequestStore,
  type Store,
  type VersionedStore,
  type VersionedRecord,
  type WriteCondition,
  type RequestStore,
  type BoundRequestStore,
  type RequestStoreHooks,
  type RequestWriteOptions,
} from './contracts/store.js';
export {
  CookieStore,
  type BoundCookieStore,
  type CookieBindHooks,
  type CookieSetOptions,
  type CookieStoreOptions,
  type CookieStoreCookieOptions,
  type ResolvedCookieStoreCookie,
} from './cookie/store.js';
export type { KeyInput } from './cookie/seal.js';
export { RedisStore, type RedisStoreOptions, type RedisStoreConnectOptions, type RedisClientLike } from './redis/store.js';
export {
  MemcachedStore,
  memcachedLifetime,
  MEMCACHED_FAIL_FAST_OPTIONS,
  type MemcachedStoreOptions,
  type MemcachedStoreCommonOptions,
  type MemcachedClientOptions,
} from './memcached/store.js';
export {
  MongoStore,
  type MongoStoreOptions,
  type MongoStoreCommonOptions,
  type MongoStoreConnectOptions,
  type MongoSessionDocument,
  type MongoExpiryMode,
} from './mongo/store.js';
export {
  PostgresStore,
  type PostgresStoreOptions,
  type PostgresStoreCommonOptions,
  type PostgresStoreConnectOptions,
  type PgPoolLike,
  type PgClientLike,
} from './postgres/store.js';
export { MemoryLocker, type MemoryLockerOptions } from './memory/locker.js';
export { RedisLocker, type RedisLockerOptions, type RedisLockerClient, type RedisLease } from './redis/locker.js';
export { PostgresLocker, PostgresLease, type PostgresLockerOptions } from './postgres/locker.js';
export type { Locker, Lease, AcquireOptions } from './contracts/locker.js';
export { Replica, type MirrorError, type MirrorWrites, type ReplicaOptions } from './core/replica.js';
export { jsonSerializer, type Serializer } from './core/serialize.js';
export type { SessionEvents, SessionEventName, InvalidReason } from './events.js';
export {
  SessionError,
  LockTimeoutError,
  LockLostError,
  StoreError,
  SerializationError,
  CookieTooLargeError,
  SessionMovedError,
  ConflictError,
  type SessionErrorCode,
  type WriteOutcome,
} from './errors.js';
export {
  fromConnectStore,
  type ConnectCallback,
  type ConnectStoreLike,
  type ConnectStoreAdapterOptions,
} from './adapters/connect-store.js';
export { fromKoaStore, type KoaStoreLike, type KoaStoreAdapterOptions } from './adapters/koa-store.js';
export { fromIoredis, isIoredis, type IoredisLike, type IoredisAdapter } from './redis/ioredis.js';
export { koaSessionCookie, type KoaSessionSourceOptions } from './migrate/koa-session.js';
export { genericSession, type GenericSessionSourceOptions, type GenericSessionStoreLike } from './migrate/generic-session.js';
export { expressSession, unsignExpressCookie, type ExpressSessionSourceOptions } from './migrate/express-session.js';
export type { MigrationSource, MigrationSourceOptions, FoundSession } from './migrate/source.js';
export { findOldSession, moveOnce, migrateRequest, markerKey, type MoveOptions, type MoveResult } from './migrate/move.js';
export type { CookieAttributes } from './sid/cookie-attributes.js';
export type { HandoffOptions } from './core/local-queue.js';
export type { GroupCommitOptions } from './core/group-commit.js';
