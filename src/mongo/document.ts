/**
 * The shape of MongoStore's session documents and the small helpers that
 * read them, shared by the store (src/mongo/store.ts) and its claim protocol
 * (src/mongo/claims.ts).
 */
import type { Filter } from 'mongodb';
import { StoreError } from '../errors.js';

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

/** Filter on version `v`; documents without `v` (set(), by hand, older releases) are version 0. */
export function versionIs(v: number): Filter<MongoSessionDocument> {
  return v === 0 ? { $or: [{ v: 0 }, { v: { $exists: false } }] } : { v };
}

/** A document's version: its `v` when that is a valid version, else 0. */
export function versionOf(v: unknown): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0;
}

/** The cause of a duplicate-key StoreError: the code without the server's message (which names the key). */
export const DUPLICATE_KEY = Object.freeze(Object.assign(new Error('E11000 duplicate key'), { code: 11000 }));

/** Whether a StoreError is a duplicate `_id` (E11000). */
export function isDuplicateKey(error: unknown): boolean {
  return error instanceof StoreError && codeOf(error.cause) === 11000;
}

/** A server error's numeric code, if it has one. */
export function codeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Runs one driver call bounded by the store's `timeoutMs`, failures as `StoreError` (MongoStore#op). */
export type MongoOp = <T>(command: string, run: () => Promise<T>) => Promise<T>;
