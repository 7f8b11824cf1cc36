import './koa.js';

export { session, type SessionMiddleware } from './middleware.js';
export { CHANNELS, type LockMessage, type StoreMessage, type MirrorErrorMessage } from './diagnostics.js';
export { SessionHandle, type LockedSession, type LoginOptions, type UserOf } from './session.js';
export { requireLogin, type RequireLoginOptions } from './auth.js';
export { plainSession, plainSessionOf, passportUser, type PlainSessionOptions } from './plain/middleware.js';
export { PlainSessionView, type PlainSession, type NodeCallback } from './plain/view.js';
export type { SessionData } from './session-data.js';
export { DEFAULTS, type SessionOptions, type CookieOptions, type AuthOptions } from './options.js';
export { MemoryStore, type MemoryStoreOptions } from './stores/memory.js';
export { isVersioned, isRequestStore, type Store, type VersionedStore, type VersionedRecord, type WriteCondition, type RequestStore, type BoundRequestStore, type RequestStoreHooks, type RequestWriteOptions } from './stores/store.js';
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
export { RedisStore, type RedisStoreOptions, type RedisStoreConnectOptions, type RedisClientLike } from './stores/redis.js';
export {
  MemcachedStore,
  memcachedLifetime,
  MEMCACHED_FAIL_FAST_OPTIONS,
  type MemcachedStoreOptions,
  type MemcachedStoreCommonOptions,
  type MemcachedClientOptions,
} from './stores/memcached.js';
export {
  MongoStore,
  type MongoStoreOptions,
  type MongoStoreCommonOptions,
  type MongoStoreConnectOptions,
  type MongoSessionDocument,
  type MongoExpiryMode,
} from './stores/mongo.js';
export {
  PostgresStore,
  type PostgresStoreOptions,
  type PostgresStoreCommonOptions,
  type PostgresStoreConnectOptions,
  type PgPoolLike,
  type PgClientLike,
} from './stores/postgres.js';
export { MemoryLocker, type MemoryLockerOptions } from './lockers/memory.js';
export { RedisLocker, type RedisLockerOptions, type RedisLockerClient, type RedisLease } from './lockers/redis.js';
export { PostgresLocker, PostgresLease, type PostgresLockerOptions } from './lockers/postgres.js';
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
  SessionMovedError,
  ConflictError,
  type SessionErrorCode,
  type WriteOutcome,
} from './errors.js';
export { fromConnectStore, type ConnectCallback, type ConnectStoreLike, type ConnectStoreAdapterOptions } from './adapters/connect-store.js';
export { fromKoaStore, type KoaStoreLike, type KoaStoreAdapterOptions } from './adapters/koa-store.js';
export { fromIoredis, isIoredis, type IoredisLike, type IoredisAdapter } from './adapters/ioredis.js';
export { koaSessionCookie, type KoaSessionSourceOptions } from './migrate/koa-session.js';
export { genericSession, type GenericSessionSourceOptions, type GenericSessionStoreLike } from './migrate/generic-session.js';
export { expressSession, unsignExpressCookie, type ExpressSessionSourceOptions } from './migrate/express-session.js';
export type { MigrationSource, MigrationSourceOptions, FoundSession } from './migrate/source.js';
export { findOldSession, moveOnce, migrateRequest, markerKey, type MoveOptions, type MoveResult } from './migrate/move.js';
export type { CookieAttributes } from './cookie-attributes.js';
export type { HandoffOptions } from './local-queue.js';
export type { GroupCommitOptions } from './group-commit.js';
