/**
 * MemcachedStore: sessions in Memcached (the `memcached` package). Its parts,
 * one file each:
 * - options.ts: the options and the fail-fast client defaults;
 * - item.ts: the stored item (lifetime, expiry stamp, byte counts);
 * - client.ts: the client subset the store uses, one bounded command, hardening;
 * - limits.ts: the key rules and the item size limit, checked before sending;
 * - cas-write.ts: the conditional write (`gets`, then `add` or `cas`, retried).
 */
import type Memcached from 'memcached';
import { StoreError } from '../errors.js';
import { checkTtl, checkVersionedWrite, Validator } from '../util/validate.js';
import { allows, unwrap, wrap } from '../contracts/envelope.js';
import { closeOwned, own } from '../contracts/owned.js';
import { loadPeer } from '../contracts/peer.js';
import type { VersionedRecord, VersionedStore, WriteCondition } from '../contracts/store.js';
import { memcachedLifetime, stamp } from './item.js';
import {
  MEMCACHED_FAIL_FAST_OPTIONS,
  type MemcachedClientOptions,
  type MemcachedStoreCommonOptions,
  type MemcachedStoreOptions,
} from './options.js';
import { MEMCACHED_STORE_NAME, boundedCall, harden, type Call, type MemcachedClient } from './client.js';
import { casWrite, getsItem } from './cas-write.js';
import { ItemSizeLimit, checkedKey } from './limits.js';
import { errorMessage } from '../util/format.js';

export { MEMCACHED_MAX_KEY_BYTES, MEMCACHED_MAX_RELATIVE_TTL_S, memcachedLifetime } from './item.js';
export {
  MEMCACHED_FAIL_FAST_OPTIONS,
  type MemcachedClientOptions,
  type MemcachedStoreCommonOptions,
  type MemcachedStoreOptions,
} from './options.js';
export { MEMCACHED_STORE_NAME } from './client.js';

const check = new Validator('MemcachedStore');
const OPTIONS = ['client', 'servers', 'clientOptions', 'prefix', 'timeoutMs', 'maxValueBytes'] as const;
/** Options of other Memcached session stores (connect-memcached, koa-memcached…), with what to use here. */
const HINTS: Readonly<Record<string, string>> = {
  hosts: "Use `servers` ('host:port', an array of them or { 'host:port': weight })",
  host: "Use `servers` ('host:port')",
  location: "Use `servers` ('host:port')",
  ttl: 'The session TTL is an option of session(): `session({ ttl })`',
  maxAge: 'The session TTL is an option of session(): `session({ ttl })`',
  timeout: 'Use `timeoutMs` (or `clientOptions.timeout` for the connect timeout)',
};

/**
 * Sessions in Memcached (the `memcached` package).
 *
 * - TTLs are sent in whole seconds, rounded up; past 30 days memcached wants an
 *   absolute Unix time, which the store sends instead.
 * - Memcached's expiry has one-second granularity, so each stored value starts
 *   with its own expiry time (ms) and `get` enforces it exactly; then comes the
 *   versioned record: `<expiresAtMs>:v<N>:<value>`, or `<expiresAtMs>:v<N>!` for
 *   a tombstone (see envelope.ts). A value without `v<N>:` is version 0.
 * - Every write is conditional on what was read, with memcached's own atomic
 *   primitives: `gets`, then `add` (nothing stored) or `cas` with the unique
 *   read. A concurrent change makes it fail and the store reads again; a write
 *   that stalls past `timeoutMs` and arrives later carries a stale unique and
 *   is refused by the server. `set()` works the same way (unconditionally):
 *   the store never sends SET, because memcached unlinks the existing item
 *   when a SET cannot be stored (out of memory under `-M`, too large), while a
 *   failed `cas`/`add` leaves it in place.
 * - Full keys over 250 bytes, and values over the server's item size limit,
 *   fail with a `StoreError` (status 500) before anything is sent: the library
 *   would otherwise hash long keys silently, and the server answers an
 *   oversized value with an error the library reports as "not stored" while
 *   marking the server dead. Messages never contain the key (it holds the sid).
 * - Server faults reject with a `StoreError` (status 503) within `timeoutMs`.
 *
 * @example
 * app.use(session({ master: new MemcachedStore({ servers: '127.0.0.1:11211' }) }));
 */
export class MemcachedStore implements VersionedStore {
  readonly name = MEMCACHED_STORE_NAME;
  /** @see MemcachedStoreCommonOptions.prefix */
  readonly prefix: string;
  /** @see MemcachedStoreCommonOptions.timeoutMs */
  readonly timeoutMs: number;
  readonly #servers: Memcached.Location | undefined;
  readonly #clientOptions: MemcachedClientOptions;
  /** One command on the client, bounded by `timeoutMs`. */
  readonly #call: Call;
  readonly #sizeLimit: ItemSizeLimit;
  #client: MemcachedClient | undefined;
  #creating: Promise<MemcachedClient> | undefined;
  #closed = false;

  constructor(options: MemcachedStoreOptions) {
    const input = check.object(
      'options',
      options as
        | ({ client?: unknown; servers?: unknown; clientOptions?: MemcachedClientOptions } & MemcachedStoreCommonOptions)
        | undefined,
    );
    check.known(input, OPTIONS, HINTS);
    const { client, servers } = input;
    if ((client === undefined) === (servers === undefined)) {
      throw new TypeError(
        "koa-locked-session: MemcachedStore needs exactly one of `client` (a memcached client) or `servers` (e.g. '127.0.0.1:11211')",
      );
    }
    if (client !== undefined && (typeof client !== 'object' || client === null || typeof (client as MemcachedClient).gets !== 'function')) {
      check.fail('client', 'a client from the memcached package', client);
    }
    if (
      servers !== undefined &&
      !(typeof servers === 'string' || Array.isArray(servers) || (typeof servers === 'object' && servers !== null))
    ) {
      check.fail('servers', "'host:port', an array of them or { 'host:port': weight }", servers);
    }
    const clientOptions = check.object('clientOptions', input.clientOptions);
    this.prefix = check.string(
      'prefix',
      input.prefix,
      'sess:',
      /^[^\s\x00-\x1f\x7f]*$/,
      'a string without whitespace or control characters',
    );
    this.timeoutMs = check.positiveMs('timeoutMs', input.timeoutMs, 2000);
    this.#call = boundedCall(this.timeoutMs);
    // A store that creates its client (from `servers`) has it follow the server's item size limit.
    this.#sizeLimit = new ItemSizeLimit(this.#call, check.positiveInt('maxValueBytes', input.maxValueBytes), client === undefined);
    this.#client = client as MemcachedClient | undefined;
    this.#servers = servers as Memcached.Location | undefined;
    this.#clientOptions = clientOptions;
  }

  /** The `memcached` client, once created (a client you passed in is there from the start). */
  get client(): Memcached | undefined {
    return this.#client as unknown as Memcached | undefined;
  }

  /** The full Memcached key of session `key` (without the client's `namespace`). */
  keyFor(key: string): string {
    return `${this.prefix}${key}`;
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.read(key))?.value;
  }

  async read(key: string): Promise<VersionedRecord | undefined> {
    const client = await this.#ready();
    const fullKey = this.#key('GET', client, key);
    return (await getsItem(this.#call, 'GET', client, fullKey)).live?.record;
  }

  /**
   * Unconditional overwrite (version 0), made of `gets` + `cas`/`add` rather
   * than SET: memcached unlinks the existing item when a SET fails (out of
   * memory under `-M`, or too large), so a failed SET would delete the session
   * it was meant to update. A failed `cas`/`add` leaves the old item in place.
   */
  async set(key: string, value: string, ttlMs: number): Promise<void> {
    const client = await this.#ready();
    const fullKey = this.#key('SET', client, key);
    const lifetime = lifetimeFor('SET', ttlMs);
    // A value that looks like a versioned envelope is wrapped as version 0, so it reads back as written.
    const plain = unwrap(value);
    const body = plain.value === value && plain.version === 0 ? value : wrap(value, 0);
    await this.#sizeLimit.check('SET', client, fullKey, stamp(body, Date.now() + ttlMs), value);
    await casWrite(this.#call, client, {
      command: 'SET',
      fullKey,
      lifetime,
      accepts: () => true,
      make: () => stamp(body, Date.now() + ttlMs),
    });
  }

  async write(key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition): Promise<boolean> {
    checkVersionedWrite(this.name, 'WRITE', version, condition);
    const client = await this.#ready();
    const fullKey = this.#key('WRITE', client, key);
    const remove = value === undefined && !(ttlMs > 0);
    // memcached has no conditional delete, and a DELETE after a successful
    // check could erase a record written in between. A removal is a `cas` (on
    // the unique of the item whose version was checked) to a tombstone that is
    // already expired for every reader and that the server drops within 1-2 s:
    // one atomic step, refused if anything changed since the check.
    const lifetime = remove ? 1 : lifetimeFor('WRITE', ttlMs);
    const make = (): string => (remove ? stamp(wrap(undefined, version), Date.now()) : stamp(wrap(value, version), Date.now() + ttlMs));
    if (value !== undefined) await this.#sizeLimit.check('WRITE', client, fullKey, make(), value);
    return casWrite(this.#call, client, {
      command: 'WRITE',
      fullKey,
      lifetime,
      accepts: (live) => allows(live?.record, version, condition),
      make,
      remove,
    });
  }

  /** Unconditional delete (the `Store` contract); versioned removals go through {@link write}. */
  async destroy(key: string): Promise<void> {
    const client = await this.#ready();
    const fullKey = this.#key('DELETE', client, key);
    // `false` means NOT_FOUND: deleting an absent key is not an error.
    await this.#call<boolean>('DELETE', (cb) => client.del(fullKey, cb));
  }

  async touch(key: string, ttlMs: number): Promise<void> {
    const client = await this.#ready();
    const fullKey = this.#key('TOUCH', client, key);
    const lifetime = lifetimeFor('TOUCH', ttlMs);
    const { live, cas } = await getsItem(this.#call, 'TOUCH', client, fullKey);
    // Absent, expired or a tombstone: never recreate or prolong it.
    if (live === undefined || live.record.value === undefined || cas === undefined) return;
    const record = stamp(live.body, Date.now() + ttlMs);
    await this.#sizeLimit.check('TOUCH', client, fullKey, record, live.record.value);
    // `false` = EXISTS (a concurrent write won: it set its own expiry) or
    // NOT_FOUND (destroyed meanwhile: must stay destroyed). Both are fine.
    await this.#call<boolean>('TOUCH', (cb) => client.cas(fullKey, record, cas, lifetime, cb));
  }

  /** End the client if this store created it; a client you passed in is left open. */
  async close(): Promise<void> {
    this.#closed = true;
    // A client still being created is owned once created: wait for it.
    await this.#creating?.catch(() => undefined);
    await closeOwned(this);
  }

  /** The full key of session `key`, checked against memcached's key rules before anything is sent. */
  #key(command: string, client: MemcachedClient, key: string): string {
    return checkedKey(command, client, this.keyFor(key));
  }

  /** The client, created on first use when the store owns it (the `memcached` package is loaded only then). */
  async #ready(): Promise<MemcachedClient> {
    if (this.#closed) throw new StoreError(this.name, 'the store is closed', { status: 500 });
    if (this.#client) return this.#client;
    this.#creating ??= (async () => {
      try {
        const { default: MemcachedClass } = await loadPeer(this.name, 'memcached', () => import('memcached'));
        const client = new MemcachedClass(this.#servers!, {
          ...MEMCACHED_FAIL_FAST_OPTIONS,
          ...this.#clientOptions,
        }) as unknown as MemcachedClient;
        harden(client);
        this.#client = client;
        own(this, () => {
          client.end();
          this.#client = undefined;
        });
        return client;
      } catch (error) {
        this.#creating = undefined;
        if (error instanceof StoreError) throw error;
        throw new StoreError(this.name, `could not create the memcached client: ${errorMessage(error)}`, { cause: error });
      }
    })();
    return this.#creating;
  }
}

function lifetimeFor(command: string, ttlMs: number): number {
  return memcachedLifetime(checkTtl(MEMCACHED_STORE_NAME, command, ttlMs));
}
