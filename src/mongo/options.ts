/**
 * The options of MongoStore (src/mongo/store.ts): a collection or a db, or a
 * URL for a store with its own client, and what every store takes. Their
 * types (what a user reads), their defaults, the names each accepts with the
 * hints for other Mongo stores' options, and their validation, apart from the
 * store's reads and writes (as RedisStore's are in src/redis/store-options.ts).
 */
import type { Collection, Db, MongoClientOptions } from 'mongodb';
import { Validator } from '../util/validate.js';
import type { MongoSessionDocument } from './document.js';

/** Options every {@link MongoStore} takes. */
export interface MongoStoreCommonOptions {
  /**
   * Longest wait for one operation (ms), server selection included: a server
   * that is down or unreachable fails the operation with a `StoreError` by then.
   * @default 2000
   */
  timeoutMs?: number;
  /**
   * The TTL index on `expiresAt`:
   * - `'auto'`: create it once (idempotent, safe when many processes start
   *   together); if the server cannot (FerretDB 1.x), fall back to a plain
   *   index plus a periodic sweep, with a process warning;
   * - `'require'`: create it, and fail (`StoreError`) where it is unsupported;
   * - `'off'`: create nothing (you manage indexes and cleanup).
   * @default 'auto'
   */
  ttlIndex?: 'auto' | 'require' | 'off';
  /**
   * How often expired documents are deleted when the server has no TTL
   * indexes (`expiry === 'sweep'`). The timer is `unref`'d.
   * @default 60_000
   */
  sweepIntervalMs?: number;
  /**
   * Arbitrate concurrent conditional writes of one session with a claim
   * document (`<key>#cas<version>`, carrying the change, inserted first: a
   * unique `_id` is atomic everywhere; see src/mongo/claims.ts).
   * FerretDB 1.x evaluates an update's filter and applies the update in
   * separate steps, so without claims two writers expecting the same version
   * could both apply. Real MongoDB applies a filtered
   * single-document update atomically: without claims it saves two round
   * trips per write (one filtered `replaceOne`/`deleteOne` instead of claim,
   * write, release). `'auto'` asks the server once (`buildInfo`): claims on
   * FerretDB, or when the server cannot be asked; none on MongoDB.
   * @default 'auto'
   */
  claims?: boolean | 'auto';
}

/** Options of {@link MongoStore}: a collection, or a db and a collection name. */
export type MongoStoreOptions = MongoStoreCommonOptions &
  (
    | {
        /**
         * The collection holding the sessions.
         * @example new MongoStore({ collection: client.db('app').collection('sessions') })
         */
        collection: Collection<MongoSessionDocument>;
        /** Not with `collection`. */
        db?: never;
        /** Not with `collection`. */
        collectionName?: never;
      }
    | {
        /** The database; the collection is `collectionName`. */
        db: Db;
        /** The collection's name in `db`. @default 'sessions' */
        collectionName?: string;
        /** Not with `db`. */
        collection?: never;
      }
  );

/** Options of {@link MongoStore.connect}: a store that creates (and closes) its own client. */
export interface MongoStoreConnectOptions extends MongoStoreCommonOptions {
  /** MongoDB URL, e.g. `mongodb://127.0.0.1:27017/`. */
  url: string;
  /** Database name. @default the URL's database, else the driver's default (`test`) */
  dbName?: string;
  /** @default 'sessions' */
  collectionName?: string;
  /** Extra `MongoClient` options. `serverSelectionTimeoutMS` defaults to `timeoutMs`. */
  clientOptions?: MongoClientOptions;
}

/** The defaults of {@link MongoStoreOptions} and {@link MongoStoreConnectOptions} (their TSDoc @default). */
const MONGO_STORE_DEFAULTS = Object.freeze({
  collectionName: 'sessions',
  timeoutMs: 2000,
  ttlIndex: 'auto' as const,
  sweepIntervalMs: 60_000,
  claims: 'auto' as const,
});

const OPTIONS = ['collection', 'db', 'collectionName', 'timeoutMs', 'ttlIndex', 'sweepIntervalMs', 'claims'] as const;
const CONNECT_OPTIONS = ['url', 'dbName', 'collectionName', 'clientOptions', 'timeoutMs', 'ttlIndex', 'sweepIntervalMs', 'claims'] as const;
/** Options of other Mongo session stores (connect-mongo, koa-generic-session-mongo…), with what to use here. */
const HINTS: Readonly<Record<string, string>> = {
  mongoUrl: 'Let the store create its client with `await MongoStore.connect({ url })`',
  url: 'Pass a collection or a db, or let the store create its client: `await MongoStore.connect({ url })`',
  client: "Pass `db: client.db(name)` or `collection: client.db(name).collection('sessions')`",
  clientPromise: 'Await the client, then pass `db: client.db(name)`',
  collection: 'Use `collectionName` with `MongoStore.connect()`, or pass a Collection to `new MongoStore({ collection })`',
  ttl: 'The session TTL is an option of session(): `session({ ttl })`',
  autoRemove: "Use `ttlIndex` ('auto', 'require' or 'off')",
  touchAfter: 'No counterpart: a save always writes the session; `session({ rolling })` renews it on every request',
  stringify: 'Records are already strings: the serializer is an option of session(): `session({ serializer })`',
};

/** {@link MongoStoreOptions} validated, with every default filled in. */
export interface ResolvedMongoStoreOptions {
  readonly collection: Collection<MongoSessionDocument>;
  readonly timeoutMs: number;
  readonly ttlIndex: 'auto' | 'require' | 'off';
  readonly sweepIntervalMs: number;
  readonly claims: boolean | 'auto';
}

/** Validate `options` (a TypeError naming the option and the fix) and apply the defaults. */
export function resolveMongoStoreOptions(options: MongoStoreOptions): ResolvedMongoStoreOptions {
  const check = new Validator('MongoStore');
  const input = check.object(
    'options',
    options as (MongoStoreCommonOptions & { collection?: unknown; db?: unknown; collectionName?: unknown }) | undefined,
  );
  check.known(input, OPTIONS, HINTS);
  const { collection, db } = input;
  if ((collection === undefined) === (db === undefined)) {
    throw new TypeError(
      'koa-locked-session: MongoStore needs exactly one of `collection` (a mongodb Collection) or `db` (a mongodb Db, with an optional `collectionName`)',
    );
  }
  if (collection !== undefined && !isCollection(collection)) check.fail('collection', 'a mongodb Collection', collection);
  if (db !== undefined && (typeof db !== 'object' || db === null || typeof (db as Db).collection !== 'function'))
    check.fail('db', 'a mongodb Db', db);
  const collectionName = check.string(
    'collectionName',
    input.collectionName,
    MONGO_STORE_DEFAULTS.collectionName,
    /./,
    'a non-empty string',
  );
  const timeoutMs = check.positiveMs('timeoutMs', input.timeoutMs, MONGO_STORE_DEFAULTS.timeoutMs);
  const ttlIndex = check.oneOf('ttlIndex', input.ttlIndex, ['auto', 'require', 'off'], MONGO_STORE_DEFAULTS.ttlIndex);
  const claims = check.oneOf('claims', input.claims, ['auto', true, false], MONGO_STORE_DEFAULTS.claims);
  const sweepIntervalMs = check.positiveMs('sweepIntervalMs', input.sweepIntervalMs, MONGO_STORE_DEFAULTS.sweepIntervalMs);
  return {
    collection: (collection as Collection<MongoSessionDocument> | undefined) ?? (db as Db).collection<MongoSessionDocument>(collectionName),
    timeoutMs,
    ttlIndex,
    sweepIntervalMs,
    claims,
  };
}

/** {@link MongoStoreConnectOptions} checked before the driver is loaded; `rest` goes on to the store. */
export interface ResolvedMongoConnectOptions {
  readonly url: string;
  readonly dbName: string | undefined;
  readonly collectionName: string;
  readonly clientOptions: MongoClientOptions;
  readonly timeoutMs: number;
  readonly rest: MongoStoreCommonOptions;
}

/** Validate the options of `MongoStore.connect` (the store's own options are validated by the store). */
export function resolveMongoConnectOptions(options: MongoStoreConnectOptions): ResolvedMongoConnectOptions {
  const connect = new Validator('MongoStore.connect');
  const input = connect.object('options', options);
  connect.known(input, CONNECT_OPTIONS, HINTS);
  const { url, dbName, collectionName = MONGO_STORE_DEFAULTS.collectionName, clientOptions = {}, ...rest } = input;
  connect.string('url', url, '', /^mongodb(\+srv)?:\/\/./, 'a mongodb:// or mongodb+srv:// URL');
  connect.object('clientOptions', clientOptions);
  const timeoutMs = connect.positiveMs('timeoutMs', rest.timeoutMs, MONGO_STORE_DEFAULTS.timeoutMs);
  return { url, dbName, collectionName, clientOptions, timeoutMs, rest };
}

function isCollection(value: unknown): value is Collection<MongoSessionDocument> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Collection).findOne === 'function' &&
    typeof (value as Collection).replaceOne === 'function'
  );
}
