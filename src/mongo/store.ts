import { setTimeout as sleep } from 'node:timers/promises';
import { debuglog } from 'node:util';
import type { Collection, Db, Filter, MongoClient, MongoClientOptions } from 'mongodb';
import { storeCall } from '../util/deadline.js';
import { StoreError } from '../errors.js';
import { checkTtl, checkVersionedWrite, Validator } from '../util/validate.js';
import { closeOwned, own } from '../contracts/owned.js';
import { loadPeer } from '../contracts/peer.js';
import type { VersionedRecord, VersionedStore, WriteCondition } from '../contracts/store.js';
import { errorMessage, redactUrl } from '../util/format.js';

const debug = debuglog('koa-locked-session');

/** The name of {@link MongoStore} in logs, events and errors. */
export const MONGO_STORE_NAME = 'mongo';

/**
 * A session document: the serialized record, its version and when it expires.
 * A tombstone (a record deleted a moment ago, kept so that older writes landing
 * later are refused) has no `value` (or `value: null`). A document without `v`
 * (written by `set()`, by hand or by an older release) is version 0.
 */
export interface MongoSessionDocument {
  /** The record's key (the middleware's `prefix` + the session id). */
  _id: string;
  /** The serialized record; absent or `null` in a tombstone. */
  value?: string | null;
  /** The record's version; absent means 0. */
  v?: number;
  /** When the record (or tombstone) expires: reads ignore it from then on, the TTL index deletes it. */
  expiresAt: Date;
}

/**
 * How expired documents leave the collection (reads ignore them in every mode):
 * - `'ttl-index'`: MongoDB's TTL monitor deletes them (`expireAfterSeconds: 0` on `expiresAt`).
 * - `'sweep'`: the server has no TTL indexes (FerretDB 1.x) or an index on
 *   `expiresAt` without a TTL already exists: the store deletes them itself
 *   every `sweepIntervalMs` (a process warning says so once).
 * - `'none'`: `ttlIndex: 'off'`; you remove expired documents yourself.
 */
export type MongoExpiryMode = 'ttl-index' | 'sweep' | 'none';

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
   * document (`<key>#cas<version>`, inserted first: a unique `_id` is atomic
   * everywhere). FerretDB 1.x evaluates an update's filter and applies the
   * update in separate steps, so without claims two writers expecting the
   * same version could both apply. Real MongoDB applies a filtered
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

const INDEX_NAME = 'expiresAt_1';
/** Collections (`db.collection`) already warned about a missing TTL index. */
const warned = new Set<string>();
const check = new Validator('MongoStore');
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
/** Error codes for "an index like this exists already" (concurrent or earlier creation). */
const INDEX_EXISTS_CODES = new Set([68 /* IndexAlreadyExists */, 85 /* IndexOptionsConflict */, 86 /* IndexKeySpecsConflict */]);
/** Error codes for "this server cannot do that" (FerretDB 1.x answers 238 for `expireAfterSeconds`). */
const UNSUPPORTED_CODES = new Set([115 /* CommandNotSupported */, 238 /* NotImplemented */]);

/**
 * Sessions in MongoDB (the `mongodb` driver), one document per session:
 * `{ _id: sid, value, v, expiresAt }` (`v`: the record's version, missing =
 * 0; a tombstone has no `value`).
 *
 * - Versioned writes are single-document operations filtered on the version
 *   (see {@link MongoStore.write}), arbitrated by claims unless `claims: false`.
 * - Reads apply `expiresAt > now`, so expiry is exact even before the TTL
 *   monitor (which runs once a minute) deletes the document; a document
 *   without a valid `expiresAt` date reads as absent.
 * - The TTL index is created once, on the first write or by
 *   {@link MongoStore.ensureIndexes} (idempotent: concurrent creation by many
 *   processes is fine). Where the server does not support TTL indexes
 *   (FerretDB 1.x), the store degrades explicitly: see {@link MongoExpiryMode}.
 * - `touch` only extends a live document: it never recreates one or a tombstone.
 * - Failures reject with a `StoreError` (`[mongo] …`, status 503) within `timeoutMs`.
 */
export class MongoStore implements VersionedStore {
  readonly name = MONGO_STORE_NAME;
  /** The collection holding the sessions (given, or `db.collection(collectionName)`). */
  readonly collection: Collection<MongoSessionDocument>;
  /** @see MongoStoreCommonOptions.timeoutMs */
  readonly timeoutMs: number;
  readonly #ttlIndex: 'auto' | 'require' | 'off';
  readonly #sweepIntervalMs: number;
  #claims: boolean | Promise<boolean> | 'auto';
  #indexes: Promise<MongoExpiryMode> | undefined;
  #expiry: MongoExpiryMode | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: MongoStoreOptions) {
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
    const collectionName = check.string('collectionName', input.collectionName, 'sessions', /./, 'a non-empty string');
    const timeoutMs = check.positiveMs('timeoutMs', input.timeoutMs, 2000);
    const ttlIndex = check.oneOf('ttlIndex', input.ttlIndex, ['auto', 'require', 'off'], 'auto');
    const claims = check.oneOf('claims', input.claims, ['auto', true, false], 'auto');
    const sweepIntervalMs = check.positiveMs('sweepIntervalMs', input.sweepIntervalMs, 60_000);
    this.collection =
      (collection as Collection<MongoSessionDocument> | undefined) ?? (db as Db).collection<MongoSessionDocument>(collectionName);
    this.timeoutMs = timeoutMs;
    this.#ttlIndex = ttlIndex;
    this.#sweepIntervalMs = sweepIntervalMs;
    this.#claims = claims;
  }

  /**
   * A store with its own client, created from `url` (the driver is loaded only
   * here) and connected; `close()` closes it.
   */
  static async connect(options: MongoStoreConnectOptions): Promise<MongoStore> {
    const connect = new Validator('MongoStore.connect');
    const input = connect.object('options', options);
    connect.known(input, CONNECT_OPTIONS, HINTS);
    const { url, dbName, collectionName = 'sessions', clientOptions = {}, ...rest } = input;
    connect.string('url', url, '', /^mongodb(\+srv)?:\/\/./, 'a mongodb:// or mongodb+srv:// URL');
    connect.object('clientOptions', clientOptions);
    const timeoutMs = connect.positiveMs('timeoutMs', rest.timeoutMs, 2000);
    const { MongoClient } = await loadPeer(MONGO_STORE_NAME, 'mongodb', () => import('mongodb'));
    let client: MongoClient;
    try {
      client = new MongoClient(url, { serverSelectionTimeoutMS: timeoutMs, connectTimeoutMS: timeoutMs, ...clientOptions });
    } catch (error) {
      // A malformed URL or option: the driver throws a MongoParseError while parsing it.
      throw new StoreError(MONGO_STORE_NAME, `invalid url ${redactUrl(url)}: ${errorMessage(error)}`, {
        cause: error,
        status: 500,
        outcome: 'none',
      });
    }
    try {
      await client.connect();
    } catch (error) {
      await client.close().catch(() => {});
      throw new StoreError(MONGO_STORE_NAME, `connect to ${redactUrl(url)} failed: ${errorMessage(error)}`, { cause: error });
    }
    const store = new MongoStore({ ...rest, db: client.db(dbName), collectionName });
    own(store, () => client.close());
    return store;
  }

  /** How expired documents are removed; `undefined` until the indexes have been ensured. */
  get expiry(): MongoExpiryMode | undefined {
    return this.#expiry;
  }

  /**
   * Create the TTL index (once; later calls return the same result). Called by
   * the first write; call it at startup to fail early. Resolves to the expiry
   * mode in force.
   */
  ensureIndexes(): Promise<MongoExpiryMode> {
    this.#indexes ??= this.#createIndexes().then(
      (mode) => {
        this.#expiry = mode;
        if (mode === 'sweep' && !this.#closed) {
          this.#sweeper = setInterval(() => {
            this.sweep().catch((error: unknown) => debug('mongo sweep failed: %s', errorMessage(error)));
          }, this.#sweepIntervalMs).unref();
        }
        return mode;
      },
      (error: unknown) => {
        this.#indexes = undefined; // e.g. server down: try again on the next write
        throw error;
      },
    );
    return this.#indexes;
  }

  /** Delete every expired document now; resolves to how many. The sweeper calls this in `'sweep'` mode. */
  async sweep(): Promise<number> {
    const result = await this.#op('DELETE EXPIRED', () => this.collection.deleteMany({ expiresAt: { $lte: new Date() } }));
    return result.deletedCount;
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.read(key))?.value;
  }

  async read(key: string): Promise<VersionedRecord | undefined> {
    // Look up by _id only and apply `expiresAt > now` to the document found:
    // the same result as filtering in the query, and FerretDB 1.x (SQLite)
    // answers a pure _id lookup about 4x faster than one with a second condition.
    const doc = await this.#op('FIND', (signal) =>
      this.collection.findOne({ _id: key }, { projection: { value: 1, v: 1, expiresAt: 1 }, signal }),
    );
    if (!doc || !(doc.expiresAt instanceof Date) || !(doc.expiresAt.getTime() > Date.now())) return undefined;
    const version = versionOf(doc.v);
    if (doc.value === undefined || doc.value === null) return { value: undefined, version };
    // A hand-written document whose value is not a string is handed on as
    // text, so the session layer reports it instead of it vanishing silently.
    return { value: typeof doc.value === 'string' ? doc.value : String(doc.value), version };
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    const expiresAt = expiry('SET', ttlMs);
    await this.ensureIndexes();
    const write = (): Promise<unknown> =>
      this.#op('SET', () => this.collection.replaceOne({ _id: key }, { value, expiresAt }, { upsert: true }));
    try {
      await write();
    } catch (error) {
      // Two concurrent upserts of one new _id: the loser gets E11000 from
      // MongoDB; a replace now finds the document and succeeds.
      if (isDuplicateKey(error)) await write();
      else throw error;
    }
  }

  /**
   * Every condition is checked by the filter of one single-document operation,
   * so a write that lands late (stalled on the network past `timeoutMs`)
   * matches nothing once the record has moved on:
   * - a version `c`: `replaceOne`/`deleteOne` filtered on `v: c` (a missing
   *   `v` is 0), a live record (`value` not null) and `expiresAt > now`;
   * - `null`: `insertOne` (E11000: something is there), then a replace
   *   filtered on "expired", so that an expired document the TTL monitor has
   *   not removed yet does not block the new sid;
   * - `'newer'`: a replace (upsert when absent) filtered on the version read,
   *   retried when it moved, refused once it is not older.
   * With {@link MongoStoreCommonOptions.claims} (the default) the change from
   * version `c` is made only by the writer whose claim `<key>#cas<c>` was
   * inserted: see there why.
   */
  async write(key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition): Promise<boolean> {
    checkVersionedWrite(this.name, 'WRITE', version, condition);
    const remove = value === undefined && !(ttlMs > 0);
    const expiresAt = remove ? new Date() : expiry('WRITE', ttlMs);
    const doc: Omit<MongoSessionDocument, '_id'> = value === undefined ? { v: version, expiresAt } : { value, v: version, expiresAt };
    await this.ensureIndexes();

    if (typeof condition === 'number') {
      const filter: Filter<MongoSessionDocument> = {
        _id: key,
        ...versionIs(condition),
        value: { $ne: null },
        expiresAt: { $gt: new Date() },
      };
      return (await this.#claimed(key, condition, () => this.#replace(filter, doc, remove))) === true;
    }

    if (condition === null) {
      // Nothing live may be there; a removal of nothing changes nothing.
      if (remove) return (await this.read(key)) === undefined;
      try {
        await this.#op('WRITE', () => this.collection.insertOne({ _id: key, ...doc }));
        return true;
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
      }
      // Something is there: replace it only if it has expired (not arbitrated by
      // a claim: two inserts of one fresh random sid do not race).
      const replaced = await this.#op('WRITE', () =>
        this.collection.replaceOne({ _id: key, expiresAt: { $not: { $gt: new Date() } } }, doc),
      );
      return replaced.matchedCount === 1;
    }

    // 'newer' (a mirror write): read the version there, replace exactly that
    // version if it is older (or expired); retry while other writers move it.
    for (let attempt = 1; ; attempt++) {
      const found = await this.#op('WRITE', () => this.collection.findOne({ _id: key }, { projection: { v: 1, expiresAt: 1, value: 1 } }));
      if (!found) {
        if (remove) return true;
        try {
          await this.#op('WRITE', () => this.collection.insertOne({ _id: key, ...doc }));
          return true;
        } catch (error) {
          if (!isDuplicateKey(error)) throw error;
          continue; // inserted meanwhile: look again
        }
      }
      const current = versionOf(found.v);
      const live = found.expiresAt instanceof Date && found.expiresAt.getTime() > Date.now();
      if (live && current >= version) return false;
      const filter: Filter<MongoSessionDocument> = { _id: key, ...versionIs(current), expiresAt: found.expiresAt };
      const applied = await this.#claimed(key, current, () => this.#replace(filter, doc, remove));
      if (applied === true) return true;
      if (attempt >= NEWER_ATTEMPTS) {
        throw new StoreError(this.name, `WRITE failed: the record changed under ${NEWER_ATTEMPTS} attempts in a row; nothing was written`);
      }
      // Moved on meanwhile (false), or another writer holds the claim (undefined): look again shortly.
      if (applied === undefined) await sleep(5 * attempt);
    }
  }

  /** Whether writes need claims: asked of the server once with `claims: 'auto'` (FerretDB says who it is in buildInfo). */
  #useClaims(): boolean | Promise<boolean> {
    if (this.#claims !== 'auto') return this.#claims;
    const asked = this.collection.db
      .admin()
      .command({ buildInfo: 1 })
      .then(
        (info) => typeof (info as { ferretdbVersion?: unknown }).ferretdbVersion === 'string',
        () => true, // cannot tell: the safe choice
      );
    this.#claims = asked;
    void asked.then((claims) => (this.#claims = claims));
    return asked;
  }

  /** The filtered replace (or delete, for a removal): true when it matched. */
  async #replace(filter: Filter<MongoSessionDocument>, doc: Omit<MongoSessionDocument, '_id'>, remove: boolean): Promise<boolean> {
    if (remove) return (await this.#op('WRITE', () => this.collection.deleteOne(filter))).deletedCount === 1;
    return (await this.#op('WRITE', () => this.collection.replaceOne(filter, doc))).matchedCount === 1;
  }

  /**
   * Run `change` (the move away from version `from`) as the only writer doing
   * so: with claims on, first insert the claim `<key>#cas<from>`; resolves
   * `undefined` when another writer holds it. The claim expires after
   * 5 x `timeoutMs`: a writer that died (or whose write is lost) between claim
   * and change blocks the record for that long at most; a change still stalled
   * past then meets the version filter alone. A claim is removed after the
   * change, and is never needed again: versions only grow.
   */
  async #claimed(key: string, from: number, change: () => Promise<boolean>): Promise<boolean | undefined> {
    if (!(await this.#useClaims())) return change();
    const _id = `${key}#cas${from}`;
    const claim = (): Promise<unknown> =>
      this.#op('WRITE', () =>
        this.collection.insertOne({ _id, v: from, expiresAt: new Date(Date.now() + CLAIM_LIFE_TIMEOUTS * this.timeoutMs) }),
      );
    try {
      await claim();
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      // Held: take it over only if it has expired (its writer died or was cut off).
      const dead = await this.#op('WRITE', () => this.collection.deleteOne({ _id, expiresAt: { $lte: new Date() } }));
      if (dead.deletedCount !== 1) return undefined;
      try {
        await claim();
      } catch (again) {
        if (isDuplicateKey(again)) return undefined;
        throw again;
      }
    }
    try {
      return await change();
    } finally {
      await this.#op('WRITE', () => this.collection.deleteOne({ _id })).catch((error: unknown) =>
        debug('mongo claim release failed (it expires by itself): %s', errorMessage(error)),
      );
    }
  }

  async destroy(key: string): Promise<void> {
    await this.#op('DELETE', () => this.collection.deleteOne({ _id: key }));
  }

  async touch(key: string, ttlMs: number): Promise<void> {
    const expiresAt = expiry('TOUCH', ttlMs);
    // Only a live document is extended (no upsert): an absent or expired one stays gone.
    // A tombstone (no value) is not extended either.
    await this.#op('TOUCH', () =>
      this.collection.updateOne({ _id: key, value: { $ne: null }, expiresAt: { $gt: new Date() } }, { $set: { expiresAt } }),
    );
  }

  /** Stop the sweeper, and close the client if this store created it ({@link MongoStore.connect}). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    await closeOwned(this);
  }

  async #createIndexes(): Promise<MongoExpiryMode> {
    if (this.#ttlIndex === 'off') return 'none';
    try {
      await this.#op('CREATE INDEX', () => this.collection.createIndex({ expiresAt: 1 }, { name: INDEX_NAME, expireAfterSeconds: 0 }));
      return 'ttl-index';
    } catch (error) {
      const cause = (error as StoreError).cause;
      const code = codeOf(cause);
      if (code !== undefined && INDEX_EXISTS_CODES.has(code)) {
        // An index on expiresAt exists already, created differently: use it if it is a TTL index.
        const existing = await this.#op('LIST INDEXES', () => this.collection.listIndexes().toArray());
        const onExpiresAt = existing.find((index) => isExpiresAtIndex(index.key));
        if (onExpiresAt && typeof onExpiresAt.expireAfterSeconds === 'number') return 'ttl-index';
        return this.#degrade(
          `an index on \`expiresAt\` without expireAfterSeconds exists already (${String(onExpiresAt?.name ?? 'unknown name')}); drop it to let MongoStore create its TTL index`,
          error,
        );
      }
      if ((code !== undefined && UNSUPPORTED_CODES.has(code)) || /expireAfterSeconds/i.test(errorMessage(cause))) {
        return this.#degrade(`the server does not support TTL indexes (${errorMessage(cause)})`, error);
      }
      throw error;
    }
  }

  /** No TTL index: say so once, keep an index for the sweep, and sweep. */
  async #degrade(reason: string, error: unknown): Promise<MongoExpiryMode> {
    if (this.#ttlIndex === 'require') {
      throw new StoreError(this.name, `CREATE INDEX failed: ${reason} (ttlIndex: 'require')`, { cause: error, status: 500 });
    }
    try {
      await this.#op('CREATE INDEX', () => this.collection.createIndex({ expiresAt: 1 }, { name: INDEX_NAME }));
    } catch (indexError) {
      const code = codeOf((indexError as StoreError).cause);
      if (code === undefined || !INDEX_EXISTS_CODES.has(code)) throw indexError;
    }
    // Once per collection and process, however many stores share it.
    if (!warned.has(this.collection.namespace)) {
      warned.add(this.collection.namespace);
      process.emitWarning(
        `[mongo] ${reason}: expired sessions in ${this.collection.namespace} are ignored on read and deleted by MongoStore every ${this.#sweepIntervalMs} ms instead`,
        { code: 'KOA_LOCKED_SESSION_NO_TTL_INDEX' },
      );
    }
    return 'sweep';
  }

  /**
   * Run one driver call, bounded by `timeoutMs` through the shared store-call
   * wrapper, failures as `StoreError`. A call that takes `signal` (reads) is
   * aborted in the driver when the deadline passes.
   */
  #op<T>(command: string, run: (signal?: AbortSignal) => Promise<T>): Promise<T> {
    const controller = run.length > 0 ? new AbortController() : undefined;
    return storeCall(this.name, command, this.timeoutMs, () => run(controller?.signal), {
      onTimeout:
        controller && (() => controller.abort(new StoreError(this.name, `${command} failed: no reply within ${this.timeoutMs} ms`))),
      // The server's E11000 message quotes the duplicate key (the sid): never pass it on.
      mapError: (error) =>
        codeOf(error) === 11000
          ? new StoreError(this.name, `${command} failed: duplicate key (E11000)`, { cause: DUPLICATE_KEY })
          : undefined,
    });
  }
}

function expiry(command: string, ttlMs: number): Date {
  return new Date(Date.now() + checkTtl(MONGO_STORE_NAME, command, ttlMs));
}

/** How many `timeoutMs` a claim lives (see MongoStore#claimed). */
const CLAIM_LIFE_TIMEOUTS = 5;
/** Rounds of a mirror ('newer') write racing other writers before it reports contention. */
const NEWER_ATTEMPTS = 16;

/** Filter on version `v`; documents without `v` (set(), by hand, older releases) are version 0. */
function versionIs(v: number): Filter<MongoSessionDocument> {
  return v === 0 ? { $or: [{ v: 0 }, { v: { $exists: false } }] } : { v };
}

function versionOf(v: unknown): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0;
}

/** The cause of a duplicate-key StoreError: the code without the server's message (which names the key). */
const DUPLICATE_KEY = Object.freeze(Object.assign(new Error('E11000 duplicate key'), { code: 11000 }));

function isDuplicateKey(error: unknown): boolean {
  return error instanceof StoreError && codeOf(error.cause) === 11000;
}

function isExpiresAtIndex(key: unknown): boolean {
  if (typeof key !== 'object' || key === null) return false;
  const fields = Object.keys(key);
  return fields.length === 1 && fields[0] === 'expiresAt';
}

function isCollection(value: unknown): value is Collection<MongoSessionDocument> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Collection).findOne === 'function' &&
    typeof (value as Collection).replaceOne === 'function'
  );
}

function codeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}
