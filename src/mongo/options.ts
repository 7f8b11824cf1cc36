/**
 * The options of MongoStore (src/mongo/store.ts): a collection or a db, or a
 * URL for a store with its own client, and what every store takes.
 */
import type { Collection, Db, MongoClientOptions } from 'mongodb';
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
