import { setTimeout as sleep } from 'node:timers/promises';
import { debuglog } from 'node:util';
import type { Collection, MongoClient } from 'mongodb';
import { storeCall } from '../util/deadline.js';
import { StoreError } from '../errors.js';
import { checkTtl, checkVersionedWrite } from '../util/validate.js';
import { closeOwned, own } from '../contracts/owned.js';
import { loadPeer } from '../contracts/peer.js';
import type { VersionedRecord, VersionedStore, WriteCondition } from '../contracts/store.js';
import { errorMessage, redactUrl } from '../util/format.js';
import { applyChange, Claims, serverNeedsClaims, type Change } from './claims.js';
import { codeOf, DUPLICATE_KEY, isDuplicateKey, versionOf, type MongoSessionDocument } from './document.js';
import { createIndexes, type MongoExpiryMode } from './indexes.js';
import { type MongoStoreConnectOptions, type MongoStoreOptions, resolveMongoConnectOptions, resolveMongoStoreOptions } from './options.js';

export type { MongoSessionDocument } from './document.js';
export type { MongoExpiryMode } from './indexes.js';
export type { MongoStoreCommonOptions, MongoStoreConnectOptions, MongoStoreOptions } from './options.js';

const debug = debuglog('koa-locked-session');

/** The name of {@link MongoStore} in logs, events and errors. */
export const MONGO_STORE_NAME = 'mongo';

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
  readonly #claimProtocol: Claims;
  #indexes: Promise<MongoExpiryMode> | undefined;
  #expiry: MongoExpiryMode | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: MongoStoreOptions) {
    const { collection, timeoutMs, ttlIndex, sweepIntervalMs, claims } = resolveMongoStoreOptions(options);
    this.collection = collection;
    this.timeoutMs = timeoutMs;
    this.#ttlIndex = ttlIndex;
    this.#sweepIntervalMs = sweepIntervalMs;
    this.#claims = claims;
    this.#claimProtocol = new Claims(this.collection, (command, run) => this.#op(command, run), timeoutMs);
  }

  /**
   * A store with its own client, created from `url` (the driver is loaded only
   * here) and connected; `close()` closes it.
   */
  static async connect(options: MongoStoreConnectOptions): Promise<MongoStore> {
    const { url, dbName, collectionName, clientOptions, timeoutMs, rest } = resolveMongoConnectOptions(options);
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
    this.#indexes ??= createIndexes(this.collection, (command, run) => this.#op(command, run), this.#ttlIndex, this.#sweepIntervalMs).then(
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
   * version `c` is the one claimed by inserting `<key>#cas<c>`: see
   * src/mongo/claims.ts for the protocol and why it is safe.
   */
  async write(key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition): Promise<boolean> {
    checkVersionedWrite(this.name, 'WRITE', version, condition);
    const remove = value === undefined && !(ttlMs > 0);
    const expiresAt = remove ? new Date() : expiry('WRITE', ttlMs);
    const doc: Omit<MongoSessionDocument, '_id'> = value === undefined ? { v: version, expiresAt } : { value, v: version, expiresAt };
    await this.ensureIndexes();

    if (typeof condition === 'number') {
      return (await this.#claimed({ key, from: condition, doc, remove, match: { live: true } })) === true;
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
      const applied = await this.#claimed({ key, from: current, doc, remove, match: { live: false, expiresAt: found.expiresAt } });
      if (applied === true) return true;
      if (attempt >= NEWER_ATTEMPTS) {
        throw new StoreError(this.name, `WRITE failed: the record changed under ${NEWER_ATTEMPTS} attempts in a row; nothing was written`);
      }
      // Moved on meanwhile (false), or another writer's claimed change came first (undefined): look again shortly.
      if (applied === undefined) await sleep(5 * attempt);
    }
  }

  /** Whether writes need claims: asked of the server once with `claims: 'auto'` (FerretDB says who it is in buildInfo). */
  #useClaims(): boolean | Promise<boolean> {
    if (this.#claims !== 'auto') return this.#claims;
    const asked = serverNeedsClaims(this.collection);
    this.#claims = asked;
    void asked.then((claims) => (this.#claims = claims));
    return asked;
  }

  /**
   * Make `change` (the move away from version `change.from`): with claims,
   * through the claim protocol (`undefined`: another writer's claimed change
   * came first); without, one filtered write.
   */
  async #claimed(change: Change): Promise<boolean | undefined> {
    if (!(await this.#useClaims())) return applyChange(this.collection, (command, run) => this.#op(command, run), change);
    return this.#claimProtocol.change(change);
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

/** Rounds of a mirror ('newer') write racing other writers before it reports contention. */
const NEWER_ATTEMPTS = 16;
