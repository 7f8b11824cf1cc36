/**
 * The claim protocol of MongoStore: one change away from a version at a time
 * on a server whose filtered single-document writes are not atomic. FerretDB
 * 1.x runs `replaceOne(filter, doc)` as "find the matching document, then
 * update it by `_id`" (and `deleteOne` likewise), so two writers expecting
 * version `c` can both match and the last one wins. The one operation that is
 * atomic everywhere is an insert of a duplicate `_id`: it is refused.
 *
 * A change of `key` away from version `c` (its filter: `v: c` plus a
 * condition, see {@link ClaimMatch}; its result: the document `doc`, version
 * `c + 1` or later, or a removal):
 * 1. The writer inserts the claim `<key>#cas<c>`, which carries the change
 *    itself (`doc`, the condition, a random token). Its insertion decides,
 *    once, what the change from `c` is.
 * 2. It applies the change with the filter. Matched: done, the claim is
 *    deleted. Matched nothing: if the record holds `doc` (another writer
 *    applied the claim, step 3) the change is done; otherwise it was refused
 *    and nothing of it can land (the filter fails on the record at `c`, or the
 *    record is past `c`): the claim is deleted. Threw (timeout, connection
 *    lost: the outcome is unknown and the write may still land): the claim
 *    stays and is marked for anyone to roll forward.
 * 3. A writer whose insert meets a claim whose claimant is still writing
 *    (the claim is younger than the claimant's deadline and was not marked
 *    "outcome unknown") is refused as before, without touching the claim.
 *    Any other claim it rolls forward: it applies the claimed change with the claimed filter (idempotent: it only matches the
 *    record at `c` and makes exactly the claimed change, however many writers
 *    apply it and whenever the claimant's own held write arrives), then
 *    reports "moved" (a master write conflicts, a mirror write retries on the
 *    new version). A claim whose change matches nothing while the record is
 *    still at `c` can never apply (its condition failed at `c`, and only a
 *    write, which moves the version, changes that): it is replaced.
 *
 * Why this is safe without timing: every write filtered on version `c` is the
 * claimed change (a claim is replaced only once its change can no longer
 * match), so a write that "may still land", however long it was held in the
 * network, can only land as the same change away from `c` that every later
 * writer has already read and built upon, or find the record past `c` and
 * match nothing. Nothing waits for a claim to expire: a claim is rolled
 * forward as soon as its writer marked its outcome unknown, or, when it could
 * not (the server unreachable), once its write is past its deadline; that
 * bound only decides when others may proceed, never what lands. A claim's
 * `expiresAt` is only its garbage collection (TTL index or
 * sweep), at least as long as the record it writes. What remains is
 * FerretDB's own step inside one command: a write whose "find" ran before a
 * roll-forward made `c + 1` and whose "update" runs after a later writer made
 * `c + 2` would restore `c + 1` (no network stall can cause it: the bytes
 * have arrived; the same holds for the takeover's filtered delete).
 *
 * A claim written by an older release (no `token`) carries no change: it is
 * taken over only once expired, as that release did.
 */
import { randomUUID } from 'node:crypto';
import { debuglog } from 'node:util';
import type { Collection, Filter } from 'mongodb';
import { errorMessage } from '../util/format.js';
import { isDuplicateKey, versionIs, versionOf, type MongoOp, type MongoSessionDocument } from './document.js';

const debug = debuglog('koa-locked-session');

/**
 * The condition of a change besides the version, kept in its claim:
 * - `{ live: true }`: a master write; the record must be live (`value` not
 *   null, `expiresAt > now` when the write is applied);
 * - `{ live: false, expiresAt }`: a mirror write over the record read; it must
 *   still have the `expiresAt` read (a touch moves it).
 */
export type ClaimMatch = { readonly live: true } | { readonly live: false; readonly expiresAt: unknown };

/** One change away from version `from`: `doc` written (or the record removed) if the record matches. */
export interface Change {
  readonly key: string;
  readonly from: number;
  readonly doc: Omit<MongoSessionDocument, '_id'>;
  /** Delete the record instead of writing `doc` (a removal without tombstone). */
  readonly remove: boolean;
  readonly match: ClaimMatch;
}

/** A claim document: `<key>#cas<from>`, with the change it decided (none in an older release's claim). */
interface ClaimDocument {
  _id: string;
  v: number;
  expiresAt: Date;
  token?: string;
  /**
   * From when another writer may roll the change forward: when the claimant
   * said its outcome is unknown, else once the claimant's own write is past
   * its deadline. Before, the claimant is still writing and the claim is
   * simply held (two applications of one change at once would leave FerretDB
   * two read-then-update steps to interleave with the next change).
   */
  rollForwardAt?: Date;
  doc?: Omit<MongoSessionDocument, '_id'>;
  remove?: boolean;
  match?: ClaimMatch;
}

/** How many `timeoutMs` a claim lives at least (its garbage collection; an older release's claim is taken over after it). */
export const CLAIM_LIFE_TIMEOUTS = 5;
/** After how many `timeoutMs` the claimant's own write is past its deadline (the claim's insert, then the write). */
const CLAIM_WRITE_TIMEOUTS = 2;

/** The filter of `change`: version `from` and its condition, evaluated when the write is applied. */
function filterOf(change: Pick<Change, 'key' | 'from' | 'match'>): Filter<MongoSessionDocument> {
  const condition: Filter<MongoSessionDocument> = change.match.live
    ? { value: { $ne: null }, expiresAt: { $gt: new Date() } }
    : { expiresAt: change.match.expiresAt as Date };
  return { _id: change.key, ...versionIs(change.from), ...condition };
}

/**
 * Whether writes on this server need claims (`claims: 'auto'`): FerretDB says
 * who it is in `buildInfo`; real MongoDB applies a filtered single-document
 * write atomically and needs none. A server that cannot be asked gets claims.
 */
export function serverNeedsClaims(collection: Collection<MongoSessionDocument>): Promise<boolean> {
  return collection.db
    .admin()
    .command({ buildInfo: 1 })
    .then(
      (info) => typeof (info as { ferretdbVersion?: unknown }).ferretdbVersion === 'string',
      () => true, // cannot tell: the safe choice
    );
}

/**
 * Apply `change` with its filter (no claim): true when it matched. The
 * single-document write every MongoStore version check rests on.
 */
export async function applyChange(collection: Collection<MongoSessionDocument>, op: MongoOp, change: Change): Promise<boolean> {
  const filter = filterOf(change);
  if (change.remove) return (await op('WRITE', () => collection.deleteOne(filter))).deletedCount === 1;
  return (await op('WRITE', () => collection.replaceOne(filter, change.doc))).matchedCount === 1;
}

/** Whether `found` (the record now) is what `change` writes. */
function holds(found: MongoSessionDocument | null, change: Change): boolean {
  if (change.remove) return false; // a missing record does not tell whether we removed it
  if (!found) return false;
  const { doc } = change;
  return (
    versionOf(found.v) === doc.v &&
    (found.value ?? null) === (doc.value ?? null) &&
    found.expiresAt instanceof Date &&
    found.expiresAt.getTime() === doc.expiresAt.getTime()
  );
}

/** The claim protocol for one collection (see the module comment). */
export class Claims {
  readonly #collection: Collection<MongoSessionDocument>;
  readonly #claims: Collection<ClaimDocument>;
  readonly #op: MongoOp;
  readonly #timeoutMs: number;

  constructor(collection: Collection<MongoSessionDocument>, op: MongoOp, timeoutMs: number) {
    this.#collection = collection;
    // Claims live in the sessions collection (one TTL index, one sweep); their `_id`s never collide with a key.
    this.#claims = collection as unknown as Collection<ClaimDocument>;
    this.#op = op;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Make `change` as the only writer moving the record from `change.from`:
   * true when it is made, false when refused (nothing written), `undefined`
   * when another writer's claimed change was there first (rolled forward: the
   * record has moved on, or is moving). Throws when the outcome is unknown
   * (the claim then stays, see the module comment).
   */
  async change(change: Change): Promise<boolean | undefined> {
    const _id = `${change.key}#cas${change.from}`;
    const token = randomUUID();
    const life = Math.max(change.doc.expiresAt.getTime(), Date.now() + CLAIM_LIFE_TIMEOUTS * this.#timeoutMs);
    const rollForwardAt = new Date(Date.now() + CLAIM_WRITE_TIMEOUTS * this.#timeoutMs);
    const claim: ClaimDocument = {
      _id,
      v: change.from,
      expiresAt: new Date(life),
      token,
      rollForwardAt,
      doc: change.doc,
      remove: change.remove,
      match: change.match,
    };
    if (!(await this.#insert(claim))) {
      const taken = await this.#resolveHeld(_id, change);
      if (!taken || !(await this.#insert(claim))) return undefined;
    }
    let applied: boolean;
    try {
      applied = await applyChange(this.#collection, this.#op, change);
    } catch (error) {
      // Outcome unknown, the write may still land: the claim stays, and the next writer may roll it forward now.
      await this.#op('WRITE', () => this.#claims.updateOne({ _id, token }, { $set: { rollForwardAt: new Date() } })).catch(
        (markError: unknown) =>
          debug('mongo claim mark failed (it may be rolled forward once its write is past its deadline): %s', errorMessage(markError)),
      );
      throw error;
    }
    const done = applied || holds(await this.#op('WRITE', () => this.#collection.findOne({ _id: change.key })), change);
    await this.#op('WRITE', () => this.#claims.deleteOne({ _id, token })).catch((error: unknown) =>
      debug('mongo claim release failed (it is garbage-collected by itself): %s', errorMessage(error)),
    );
    return done;
  }

  /** Insert a claim: false when one is there already. */
  async #insert(claim: ClaimDocument): Promise<boolean> {
    try {
      await this.#op('WRITE', () => this.#claims.insertOne(claim));
      return true;
    } catch (error) {
      if (isDuplicateKey(error)) return false;
      throw error;
    }
  }

  /**
   * A claim on `change.from` is there: roll its change forward. Resolves true
   * when the claim was removed and ours may be inserted (it was released
   * meanwhile, its change can never apply, or it is an older release's expired
   * claim), false when the record has moved on (or may be moving).
   */
  async #resolveHeld(_id: string, change: Change): Promise<boolean> {
    const held = await this.#op('WRITE', () => this.#claims.findOne({ _id }));
    if (!held) return true; // released meanwhile: try once more
    const { token } = held;
    if (token === undefined || held.doc === undefined || held.match === undefined) {
      // An older release's claim: its change is unknown; take it over only once expired.
      const dead = await this.#op('WRITE', () => this.#claims.deleteOne({ _id, expiresAt: { $lte: new Date() } }));
      return dead.deletedCount === 1;
    }
    if (held.rollForwardAt instanceof Date && held.rollForwardAt.getTime() > Date.now()) return false; // its writer is still at it
    const claimed: Change = { key: change.key, from: change.from, doc: held.doc, remove: held.remove === true, match: held.match };
    if (await applyChange(this.#collection, this.#op, claimed)) return false; // rolled forward: the record is past `from`
    const found = await this.#op('WRITE', () => this.#collection.findOne({ _id: change.key }, { projection: { v: 1 } }));
    if (!found || versionOf(found.v) !== change.from) return false; // moved on (or gone)
    // Still at `from` and the claimed change does not match it: it never will. Replace the claim.
    const dead = await this.#op('WRITE', () => this.#claims.deleteOne({ _id, token }));
    return dead.deletedCount === 1;
  }
}
