/**
 * Memcached's limits, checked before anything is sent: the key rules (at most
 * 250 bytes, no whitespace or control characters) and the server's item size
 * limit (`item_size_max`, read once). Their own file because each failure
 * here must be a clear `StoreError` (status 500) rather than what the library
 * does on its own: hash a long key silently, or report an oversized value as
 * "not stored" while marking the server dead. Messages never contain the key
 * (it holds the sid).
 */
import { StoreError } from '../errors.js';
import { ITEM_OVERHEAD_BYTES, MEMCACHED_MAX_KEY_BYTES, byteLength, countCrLf } from './item.js';
import { MEMCACHED_STORE_NAME, type Call, type MemcachedClient } from './client.js';

/** `fullKey` as the server sees it, checked against memcached's key rules; returned as it is. */
export function checkedKey(command: string, client: MemcachedClient, fullKey: string): string {
  const onWire = (client.namespace ?? '') + fullKey;
  const bytes = byteLength(onWire);
  if (bytes > MEMCACHED_MAX_KEY_BYTES) {
    throw new StoreError(
      MEMCACHED_STORE_NAME,
      `${command} failed: the key is ${bytes} bytes, over memcached's ${MEMCACHED_MAX_KEY_BYTES}-byte limit (shorten \`prefix\`)`,
      { status: 500 },
    );
  }
  if (onWire === '' || /[\s\x00-\x1f\x7f]/.test(onWire)) {
    // The key itself is never printed: it contains the sid.
    throw new StoreError(
      MEMCACHED_STORE_NAME,
      `${command} failed: memcached keys cannot be empty or contain whitespace or control characters (check the client's \`namespace\` and \`prefix\`)`,
      { status: 500 },
    );
  }
  return fullKey;
}

/** The item size limit of one store: the `maxValueBytes` option, else discovered once from the server(s). */
export class ItemSizeLimit {
  readonly #call: Call;
  /** Whether the store created its client: then the client's own value check follows the server. */
  readonly #owned: boolean;
  #maxValueBytes: number | undefined;
  #discovering: Promise<number> | undefined;

  constructor(call: Call, maxValueBytes: number | undefined, owned: boolean) {
    this.#call = call;
    this.#maxValueBytes = maxValueBytes;
    this.#owned = owned;
  }

  /** Fail when the stamped `record` (of session data `value`) under `fullKey` would not fit in one item. */
  async check(command: string, client: MemcachedClient, fullKey: string, record: string, value: string): Promise<void> {
    const limit = await this.#limit(client);
    // The library escapes CR and LF with a backslash each before sending.
    const bytes = byteLength(record) + countCrLf(record);
    if (bytes + byteLength(fullKey) + ITEM_OVERHEAD_BYTES > limit) {
      throw new StoreError(
        MEMCACHED_STORE_NAME,
        `${command} failed: the session record is ${byteLength(value)} bytes, over the server's item size limit (${limit} bytes with key and item header; memcached -I raises it, or keep less data in the session)`,
        { status: 500 },
      );
    }
  }

  /** The item size limit: the option, else `item_size_max` read once from the server(s) (the smallest). */
  #limit(client: MemcachedClient): Promise<number> {
    if (this.#maxValueBytes !== undefined) return Promise.resolve(this.#maxValueBytes);
    this.#discovering ??= this.#call<Array<Record<string, unknown>>>('STATS SETTINGS', (cb) => client.settings(cb)).then(
      (settings) => {
        const limits = (Array.isArray(settings) ? settings : [settings])
          .map((s) => Number(s?.item_size_max))
          .filter((n) => Number.isInteger(n) && n > 0);
        let limit = limits.length ? Math.min(...limits) : 1024 * 1024;
        // The library has its own value check (default 1 MiB): a client we own
        // follows the server; with yours, the smaller of the two applies.
        if (this.#owned) client.maxValue = limit;
        else if (typeof client.maxValue === 'number') limit = Math.min(limit, client.maxValue);
        this.#maxValueBytes = limit;
        return limit;
      },
      (error: unknown) => {
        this.#discovering = undefined; // server down: ask again next time
        throw error;
      },
    );
    return this.#discovering;
  }
}
