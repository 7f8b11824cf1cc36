import { debuglog } from 'node:util';
import type Memcached from 'memcached';
import { storeCall } from '../util/deadline.js';
import { StoreError } from '../errors.js';
import { checkTtl, checkVersionedWrite, Validator } from '../util/validate.js';
import { allows, unwrap, wrap } from '../contracts/envelope.js';
import { closeOwned, own } from '../contracts/owned.js';
import { loadPeer } from '../contracts/peer.js';
import type { VersionedRecord, VersionedStore, WriteCondition } from '../contracts/store.js';
import { ITEM_OVERHEAD_BYTES, MEMCACHED_MAX_KEY_BYTES, byteLength, countCrLf, memcachedLifetime, parse, stamp, type Live } from './item.js';
import {
  MEMCACHED_FAIL_FAST_OPTIONS,
  type MemcachedClientOptions,
  type MemcachedStoreCommonOptions,
  type MemcachedStoreOptions,
} from './options.js';

export { MEMCACHED_MAX_KEY_BYTES, MEMCACHED_MAX_RELATIVE_TTL_S, memcachedLifetime } from './item.js';
export {
  MEMCACHED_FAIL_FAST_OPTIONS,
  type MemcachedClientOptions,
  type MemcachedStoreCommonOptions,
  type MemcachedStoreOptions,
} from './options.js';
import { errorMessage } from '../util/format.js';

const debug = debuglog('koa-locked-session');

/** The name of {@link MemcachedStore} in logs, events and errors. */
export const MEMCACHED_STORE_NAME = 'memcached';

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

type Callback<T> = (error: unknown, result: T) => void;

/** The subset of the `memcached` client the store uses (all callback-based). */
interface MemcachedClient {
  get(key: string, cb: Callback<unknown>): void;
  gets(key: string, cb: Callback<Record<string, unknown> | undefined>): void;
  set(key: string, value: string, lifetime: number, cb: Callback<boolean>): void;
  cas(key: string, value: string, cas: string, lifetime: number, cb: Callback<boolean>): void;
  add(key: string, value: string, lifetime: number, cb: Callback<boolean>): void;
  del(key: string, cb: Callback<boolean>): void;
  settings(cb: Callback<Array<Record<string, unknown>>>): void;
  end(): void;
  namespace?: string;
  maxValue?: number;
  servers?: string[];
  emit(event: string, ...args: unknown[]): boolean;
  connectionIssue?: (error: unknown, socket: { end?: () => void; serverAddress?: string } | undefined) => void;
}

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
  /** Whether the store creates its client (from `servers`): then it follows the server's item size limit. */
  readonly #owned: boolean;
  #client: MemcachedClient | undefined;
  #creating: Promise<MemcachedClient> | undefined;
  #maxValueBytes: number | undefined;
  #discovering: Promise<number> | undefined;
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
    this.#maxValueBytes = check.positiveInt('maxValueBytes', input.maxValueBytes);
    this.#owned = client === undefined;
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
    const fullKey = this.#checkedKey('GET', client, key);
    return (await this.#gets('GET', client, fullKey)).live?.record;
  }

  /**
   * Unconditional overwrite (version 0), made of `gets` + `cas`/`add` rather
   * than SET: memcached unlinks the existing item when a SET fails (out of
   * memory under `-M`, or too large), so a failed SET would delete the session
   * it was meant to update. A failed `cas`/`add` leaves the old item in place.
   */
  async set(key: string, value: string, ttlMs: number): Promise<void> {
    const client = await this.#ready();
    const fullKey = this.#checkedKey('SET', client, key);
    const lifetime = lifetimeFor('SET', ttlMs);
    // A value that looks like a versioned envelope is wrapped as version 0, so it reads back as written.
    const plain = unwrap(value);
    const body = plain.value === value && plain.version === 0 ? value : wrap(value, 0);
    await this.#checkSize('SET', client, fullKey, stamp(body, Date.now() + ttlMs), value);
    await this.#store(
      'SET',
      client,
      fullKey,
      lifetime,
      () => true,
      () => stamp(body, Date.now() + ttlMs),
    );
  }

  async write(key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition): Promise<boolean> {
    checkVersionedWrite(this.name, 'WRITE', version, condition);
    const client = await this.#ready();
    const fullKey = this.#checkedKey('WRITE', client, key);
    const remove = value === undefined && !(ttlMs > 0);
    // memcached has no conditional delete, and a DELETE after a successful
    // check could erase a record written in between. A removal is a `cas` (on
    // the unique of the item whose version was checked) to a tombstone that is
    // already expired for every reader and that the server drops within 1-2 s:
    // one atomic step, refused if anything changed since the check.
    const lifetime = remove ? 1 : lifetimeFor('WRITE', ttlMs);
    const make = (): string => (remove ? stamp(wrap(undefined, version), Date.now()) : stamp(wrap(value, version), Date.now() + ttlMs));
    if (value !== undefined) await this.#checkSize('WRITE', client, fullKey, make(), value);
    return this.#store('WRITE', client, fullKey, lifetime, (live) => allows(live?.record, version, condition), make, remove);
  }

  /** Unconditional delete (the `Store` contract); versioned removals go through {@link write}. */
  async destroy(key: string): Promise<void> {
    const client = await this.#ready();
    const fullKey = this.#checkedKey('DELETE', client, key);
    // `false` means NOT_FOUND: deleting an absent key is not an error.
    await this.#call<boolean>('DELETE', (cb) => client.del(fullKey, cb));
  }

  async touch(key: string, ttlMs: number): Promise<void> {
    const client = await this.#ready();
    const fullKey = this.#checkedKey('TOUCH', client, key);
    const lifetime = lifetimeFor('TOUCH', ttlMs);
    const { live, cas } = await this.#gets('TOUCH', client, fullKey);
    // Absent, expired or a tombstone: never recreate or prolong it.
    if (live === undefined || live.record.value === undefined || cas === undefined) return;
    const record = stamp(live.body, Date.now() + ttlMs);
    await this.#checkSize('TOUCH', client, fullKey, record, live.record.value);
    // `false` = EXISTS (a concurrent write won: it set its own expiry) or
    // NOT_FOUND (destroyed meanwhile: must stay destroyed). Both are fine.
    await this.#call<boolean>('TOUCH', (cb) => client.cas(fullKey, record, cas, lifetime, cb));
  }

  /** The item under `fullKey`: its CAS unique when the server holds it at all, and the record when it is also unexpired. */
  async #gets(command: string, client: MemcachedClient, fullKey: string): Promise<{ live: Live | undefined; cas: string | undefined }> {
    const found = await this.#call<Record<string, unknown> | undefined>(command, (cb) => client.gets(fullKey, cb));
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
  async #store(
    command: string,
    client: MemcachedClient,
    fullKey: string,
    lifetime: number,
    accepts: (live: Live | undefined) => boolean,
    make: () => string,
    remove = false,
  ): Promise<boolean> {
    let lastCas: string | undefined;
    for (let attempt = 1; ; attempt++) {
      const { live, cas } = await this.#gets(command, client, fullKey);
      if (lastCas !== undefined && cas === lastCas) throw this.#refused(command, make());
      if (!accepts(live)) return false;
      if (cas === undefined) {
        if (remove) return true; // nothing stored: nothing to remove
        const record = make();
        const added = await this.#call<boolean>(command, (cb) => client.add(fullKey, record, lifetime, cb)).catch((error: unknown) => {
          if ((error as StoreError).cause && ((error as StoreError).cause as { notStored?: unknown }).notStored) return undefined; // NOT_STORED: added meanwhile
          throw error;
        });
        if (added === true) return true;
        if (added === false) throw this.#refused(command, record);
      } else {
        const stored = await this.#call<boolean>(command, (cb) => client.cas(fullKey, make(), cas, lifetime, cb));
        if (stored === true) return true;
        lastCas = cas; // EXISTS, NOT_FOUND or SERVER_ERROR: the next read tells which
      }
      if (attempt >= MAX_ATTEMPTS) {
        throw new StoreError(
          this.name,
          `${command} failed: the record changed under ${MAX_ATTEMPTS} attempts in a row; nothing was written`,
        );
      }
    }
  }

  #refused(command: string, record: string): StoreError {
    return new StoreError(
      this.name,
      `${command} failed: the server did not store the ${byteLength(record)}-byte record (SERVER_ERROR: out of memory, or over its item size limit); nothing was written and the previous record, if any, is kept`,
    );
  }

  /** End the client if this store created it; a client you passed in is left open. */
  async close(): Promise<void> {
    this.#closed = true;
    // A client still being created is owned once created: wait for it.
    await this.#creating?.catch(() => undefined);
    await closeOwned(this);
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

  /** The full key as the server sees it, checked against memcached's key rules before anything is sent. */
  #checkedKey(command: string, client: MemcachedClient, key: string): string {
    const fullKey = this.keyFor(key);
    const onWire = (client.namespace ?? '') + fullKey;
    const bytes = byteLength(onWire);
    if (bytes > MEMCACHED_MAX_KEY_BYTES) {
      throw new StoreError(
        this.name,
        `${command} failed: the key is ${bytes} bytes, over memcached's ${MEMCACHED_MAX_KEY_BYTES}-byte limit (shorten \`prefix\`)`,
        { status: 500 },
      );
    }
    if (onWire === '' || /[\s\x00-\x1f\x7f]/.test(onWire)) {
      // The key itself is never printed: it contains the sid.
      throw new StoreError(
        this.name,
        `${command} failed: memcached keys cannot be empty or contain whitespace or control characters (check the client's \`namespace\` and \`prefix\`)`,
        { status: 500 },
      );
    }
    return fullKey;
  }

  async #checkSize(command: string, client: MemcachedClient, fullKey: string, record: string, value: string): Promise<void> {
    const limit = await this.#limit(client);
    // The library escapes CR and LF with a backslash each before sending.
    const bytes = byteLength(record) + countCrLf(record);
    if (bytes + byteLength(fullKey) + ITEM_OVERHEAD_BYTES > limit) {
      throw new StoreError(
        this.name,
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

  /**
   * Promise wrapper over the callback API, bounded by `timeoutMs` through the
   * shared store-call wrapper (the library never calls back for a command
   * that was in flight when a server died), failures as `StoreError`.
   */
  #call<T>(command: string, start: (cb: Callback<T>) => void): Promise<T> {
    return storeCall(
      this.name,
      command,
      this.timeoutMs,
      () => new Promise<T>((resolve, reject) => start((error, result) => (error ? reject(error) : resolve(result)))),
    );
  }
}

/**
 * Replace the library's failure bookkeeping on a client we created. Its own
 * marks a server dead for `retry` ms after one error, and past that (or on a
 * second error meanwhile, e.g. concurrent requests when the server dies) it
 * "reconnects" by spawning the `ping` binary: on a machine without `ping`
 * that spawn emits an unhandled 'error' and crashes the process. Here an
 * issue only closes the faulty connection: the next request connects again,
 * failing fast while the server is down and succeeding once it is back.
 */
function harden(client: MemcachedClient): void {
  client.connectionIssue = (error, socket) => {
    socket?.end?.();
    debug('memcached issue on %s: %s', socket?.serverAddress, errorMessage(error));
    client.emit('issue', { server: socket?.serverAddress, messages: [errorMessage(error)] });
  };
}

/** Compare-and-retry rounds of one write before it reports contention. */
const MAX_ATTEMPTS = 16;

function lifetimeFor(command: string, ttlMs: number): number {
  return memcachedLifetime(checkTtl(MEMCACHED_STORE_NAME, command, ttlMs));
}
