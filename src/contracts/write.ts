import type { RequestWriteOptions, WriteCondition } from './store.js';

/**
 * One write of a session record, the one shape every internal write takes
 * (scope, session lock, group commit, index upkeep) on its way to
 * `Replica.put` (src/core/replica.ts); the public `VersionedStore.write` keeps its arguments.
 */
export interface WriteDescriptor {
  readonly key: string;
  /** The encoded record; `undefined` deletes (leaves a tombstone in versioned stores). */
  readonly value: string | undefined;
  /** The version the record gets. */
  readonly version: number;
  /** The record's TTL; for a delete, how long the mirrors keep its tombstone. */
  readonly ttlMs: number;
  /** The version the master must still hold (`null`: the key must not exist), or `'newer'`. */
  readonly condition: WriteCondition;
  /** A delete: how long the master keeps its tombstone. @default ttlMs */
  readonly tombstoneMs?: number | undefined;
  /** What the write tells a request-bound master (the cookie kind of a CookieStore). */
  readonly cookie?: RequestWriteOptions | undefined;
}
