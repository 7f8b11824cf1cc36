/**
 * A record's known expiry, carried beside a {@link VersionedRecord} a store
 * read answered: until when (monotonic clock, `performance.now()`) the record
 * surely still lives where it was read. RedisLocker's fused acquire-and-read
 * knows it (its script answers the key's PTTL with the record); a scope that
 * only read such a record can then hand it to the next holder of the lease
 * with its true expiry (src/core/session-lock.ts), instead of the next holder
 * reading it again.
 *
 * Kept beside the record, not in it: the record's shape (what `read()` answers
 * and tests compare) stays the Store contract's, and no store can promise an
 * expiry by accident (a record without an entry has none known: it is never
 * handed on). A WeakMap under a `Symbol.for` key on `globalThis`, as the
 * fast-path registry, so the ESM and CommonJS copies of this package agree.
 */
import type { VersionedRecord } from './store.js';

const REGISTRY = Symbol.for('koa-locked-session.recordExpiry');
type Registry = WeakMap<VersionedRecord, number>;
const registry: Registry = ((globalThis as { [REGISTRY]?: Registry })[REGISTRY] ??= new WeakMap());

/** `record`, known to live where it was read until `until` (performance.now() ms; never later than the store's own expiry). */
export function withKnownExpiry<T extends VersionedRecord>(record: T, until: number): T {
  registry.set(record, until);
  return record;
}

/** Until when `record` surely lives where it was read (performance.now() ms), or `undefined` when its reader did not know. */
export function knownExpiryOf(record: VersionedRecord): number | undefined {
  return registry.get(record);
}
