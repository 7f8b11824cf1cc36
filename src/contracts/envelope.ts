/**
 * How stores that hold one string per key (Redis, Memcached) keep a record's
 * version inside that string: `v<version>:<value>` for a record and
 * `v<version>!` for a tombstone. A string without the prefix (written by
 * `set()`, by hand, or by an older release) is a record of version 0. The
 * default JSON serializer never produces a string starting with `v`.
 */
import type { VersionedRecord, WriteCondition } from './store.js';

const ENVELOPE = /^v(\d{1,16})([:!])/;

/** The stored string of `value` at `version` (`value` undefined: a tombstone). */
export function wrap(value: string | undefined, version: number): string {
  return value === undefined ? `v${version}!` : `v${version}:${value}`;
}

/** Parse a stored string (see {@link wrap}). */
export function unwrap(stored: string): VersionedRecord {
  const match = ENVELOPE.exec(stored);
  if (!match) return { value: stored, version: 0 };
  const version = Number(match[1]);
  return match[2] === '!' ? { value: undefined, version } : { value: stored.slice(match[0].length), version };
}

/** Whether a versioned write may apply over what is stored (`stored` undefined: nothing is). See {@link WriteCondition}. */
export function allows(stored: VersionedRecord | undefined, version: number, condition: WriteCondition): boolean {
  if (condition === 'newer') return stored === undefined || stored.version < version;
  if (condition === null) return stored === undefined;
  return stored !== undefined && stored.value !== undefined && stored.version === condition;
}
