/**
 * MongoStore's TTL index: created once where the server supports it, else an
 * explicit degradation to a plain index plus a periodic sweep (FerretDB 1.x),
 * said once per collection and process.
 */
import type { Collection } from 'mongodb';
import { StoreError } from '../errors.js';
import { errorMessage } from '../util/format.js';
import { codeOf, type MongoOp, type MongoSessionDocument } from './document.js';

/**
 * How expired documents leave the collection (reads ignore them in every mode):
 * - `'ttl-index'`: MongoDB's TTL monitor deletes them (`expireAfterSeconds: 0` on `expiresAt`).
 * - `'sweep'`: the server has no TTL indexes (FerretDB 1.x) or an index on
 *   `expiresAt` without a TTL already exists: the store deletes them itself
 *   every `sweepIntervalMs` (a process warning says so once).
 * - `'none'`: `ttlIndex: 'off'`; you remove expired documents yourself.
 */
export type MongoExpiryMode = 'ttl-index' | 'sweep' | 'none';

const INDEX_NAME = 'expiresAt_1';
/** Collections (`db.collection`) already warned about a missing TTL index. */
const warned = new Set<string>();
/** Error codes for "an index like this exists already" (concurrent or earlier creation). */
const INDEX_EXISTS_CODES = new Set([68 /* IndexAlreadyExists */, 85 /* IndexOptionsConflict */, 86 /* IndexKeySpecsConflict */]);
/** Error codes for "this server cannot do that" (FerretDB 1.x answers 238 for `expireAfterSeconds`). */
const UNSUPPORTED_CODES = new Set([115 /* CommandNotSupported */, 238 /* NotImplemented */]);

/** Create the TTL index on `expiresAt` as `ttlIndex` says; resolves to the expiry mode in force. */
export async function createIndexes(
  collection: Collection<MongoSessionDocument>,
  op: MongoOp,
  ttlIndex: 'auto' | 'require' | 'off',
  sweepIntervalMs: number,
): Promise<MongoExpiryMode> {
  if (ttlIndex === 'off') return 'none';
  const degrade = (reason: string, error: unknown): Promise<MongoExpiryMode> =>
    degradeToSweep(collection, op, ttlIndex, sweepIntervalMs, reason, error);
  try {
    await op('CREATE INDEX', () => collection.createIndex({ expiresAt: 1 }, { name: INDEX_NAME, expireAfterSeconds: 0 }));
    return 'ttl-index';
  } catch (error) {
    const cause = (error as StoreError).cause;
    const code = codeOf(cause);
    if (code !== undefined && INDEX_EXISTS_CODES.has(code)) {
      // An index on expiresAt exists already, created differently: use it if it is a TTL index.
      const existing = await op('LIST INDEXES', () => collection.listIndexes().toArray());
      const onExpiresAt = existing.find((index) => isExpiresAtIndex(index.key));
      if (onExpiresAt && typeof onExpiresAt.expireAfterSeconds === 'number') return 'ttl-index';
      return degrade(
        `an index on \`expiresAt\` without expireAfterSeconds exists already (${String(onExpiresAt?.name ?? 'unknown name')}); drop it to let MongoStore create its TTL index`,
        error,
      );
    }
    if ((code !== undefined && UNSUPPORTED_CODES.has(code)) || /expireAfterSeconds/i.test(errorMessage(cause))) {
      return degrade(`the server does not support TTL indexes (${errorMessage(cause)})`, error);
    }
    throw error;
  }
}

/** No TTL index: say so once, keep an index for the sweep, and sweep. */
async function degradeToSweep(
  collection: Collection<MongoSessionDocument>,
  op: MongoOp,
  ttlIndex: 'auto' | 'require',
  sweepIntervalMs: number,
  reason: string,
  error: unknown,
): Promise<MongoExpiryMode> {
  if (ttlIndex === 'require') {
    throw new StoreError('mongo', `CREATE INDEX failed: ${reason} (ttlIndex: 'require')`, { cause: error, status: 500 });
  }
  try {
    await op('CREATE INDEX', () => collection.createIndex({ expiresAt: 1 }, { name: INDEX_NAME }));
  } catch (indexError) {
    const code = codeOf((indexError as StoreError).cause);
    if (code === undefined || !INDEX_EXISTS_CODES.has(code)) throw indexError;
  }
  // Once per collection and process, however many stores share it.
  if (!warned.has(collection.namespace)) {
    warned.add(collection.namespace);
    process.emitWarning(
      `[mongo] ${reason}: expired sessions in ${collection.namespace} are ignored on read and deleted by MongoStore every ${sweepIntervalMs} ms instead`,
      { code: 'KOA_LOCKED_SESSION_NO_TTL_INDEX' },
    );
  }
  return 'sweep';
}

function isExpiresAtIndex(key: unknown): boolean {
  if (typeof key !== 'object' || key === null) return false;
  const fields = Object.keys(key);
  return fields.length === 1 && fields[0] === 'expiresAt';
}
