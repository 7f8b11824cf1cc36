/**
 * MemcachedStore's conditional write: read the item with its CAS unique
 * (`gets`), decide on the record read, then `add` (nothing stored) or `cas` on
 * that unique, and read and decide again when a concurrent change makes it
 * fail. Its own file because it is the store's one safety mechanism: a write
 * that raced another, or stalled past `timeoutMs` and lands late, carries a
 * stale unique and is refused by the server itself, never by timing.
 */
import { StoreError } from '../errors.js';
import { byteLength, parse, type Live } from './item.js';
import { MEMCACHED_STORE_NAME, type Call, type MemcachedClient } from './client.js';

/** Compare-and-retry rounds of one write before it reports contention. */
const MAX_ATTEMPTS = 16;

/** An item as `gets` found it. */
export interface Item {
  /** The record, when the item is also unexpired. */
  readonly live: Live | undefined;
  /** Its CAS unique, when the server holds the item at all. */
  readonly cas: string | undefined;
}

/** One conditional write of {@link casWrite}. */
export interface CasWrite {
  /** The command named in errors (`SET`, `WRITE`). */
  readonly command: string;
  /** The full key (checked: limits.ts). */
  readonly fullKey: string;
  /** The memcached lifetime of the stored item (item.ts: `memcachedLifetime`). */
  readonly lifetime: number;
  /** Whether the live record (`undefined`: none) allows the write; false: nothing is written. */
  readonly accepts: (live: Live | undefined) => boolean;
  /** The stamped value to store, made per attempt (its expiry counts from now). */
  readonly make: () => string;
  /** A removal (a `cas` to an expired tombstone): with no item stored there is nothing to remove. */
  readonly remove?: boolean;
}

/** The item under `fullKey`: its CAS unique when the server holds it at all, and the record when it is also unexpired. */
export async function getsItem(call: Call, command: string, client: MemcachedClient, fullKey: string): Promise<Item> {
  const found = await call<Record<string, unknown> | undefined>(command, (cb) => client.gets(fullKey, cb));
  const raw = found?.[(client.namespace ?? '') + fullKey];
  if (raw === undefined || raw === null || raw === false) return { live: undefined, cas: undefined };
  const cas = typeof found?.cas === 'string' || typeof found?.cas === 'number' ? String(found.cas) : undefined;
  return { live: parse(raw), cas };
}

/**
 * Store `make()` if `accepts` the live record, atomically: `add` when the
 * server holds no item, else `cas` on the unique read with it. A concurrent
 * change makes either fail; then read again and decide again. Resolves false
 * when `accepts` refuses. A `cas` that fails although the item kept its
 * unique, or an `add` that fails without NOT_STORED, is the server refusing
 * to store (SERVER_ERROR: out of memory under `-M`, item too large): nothing
 * was written and the previous item is still there (unlike a failed SET).
 */
export async function casWrite(call: Call, client: MemcachedClient, write: CasWrite): Promise<boolean> {
  const { command, fullKey, lifetime, accepts, make, remove = false } = write;
  let lastCas: string | undefined;
  for (let attempt = 1; ; attempt++) {
    const { live, cas } = await getsItem(call, command, client, fullKey);
    if (lastCas !== undefined && cas === lastCas) throw refused(command, make());
    if (!accepts(live)) return false;
    if (cas === undefined) {
      if (remove) return true; // nothing stored: nothing to remove
      const record = make();
      const added = await call<boolean>(command, (cb) => client.add(fullKey, record, lifetime, cb)).catch((error: unknown) => {
        if ((error as StoreError).cause && ((error as StoreError).cause as { notStored?: unknown }).notStored) return undefined; // NOT_STORED: added meanwhile
        throw error;
      });
      if (added === true) return true;
      if (added === false) throw refused(command, record);
    } else {
      const stored = await call<boolean>(command, (cb) => client.cas(fullKey, make(), cas, lifetime, cb));
      if (stored === true) return true;
      lastCas = cas; // EXISTS, NOT_FOUND or SERVER_ERROR: the next read tells which
    }
    if (attempt >= MAX_ATTEMPTS) {
      throw new StoreError(
        MEMCACHED_STORE_NAME,
        `${command} failed: the record changed under ${MAX_ATTEMPTS} attempts in a row; nothing was written`,
      );
    }
  }
}

function refused(command: string, record: string): StoreError {
  return new StoreError(
    MEMCACHED_STORE_NAME,
    `${command} failed: the server did not store the ${byteLength(record)}-byte record (SERVER_ERROR: out of memory, or over its item size limit); nothing was written and the previous record, if any, is kept`,
  );
}
