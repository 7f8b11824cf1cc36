import { Validator } from '../util/validate.js';
import { allows } from '../contracts/envelope.js';
import type { VersionedRecord, VersionedStore, WriteCondition } from '../contracts/store.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Most sessions kept; past it the least recently used one is evicted, so a
   * flood of new sessions cannot grow the process without bound.
   * @default 100_000
   */
  max?: number;
  /**
   * How often expired records are swept (ms). The timer is `unref`'d: it never keeps the process alive.
   * Expiry is also enforced on every read.
   * @default 60_000
   */
  sweepIntervalMs?: number;
}

const check = new Validator('MemoryStore');
const OPTIONS = ['max', 'sweepIntervalMs'] as const;

/**
 * A read answers in the next turn of the event loop (after I/O), as a network
 * store's reply does, with the record as it was when the read was called.
 * Answering at once made the embedded store the slowest under load: each
 * request ran to its response before the next socket was even read, so every
 * response left alone (one wake-up of the client per response), and on a hot
 * session each request took a lock turn of its own. Answering after I/O, the
 * requests that arrived together queue on one lock turn (group commit) and
 * their responses leave together; docs/performance.md has the numbers.
 * Writes still apply and answer at once: the lock holder's turn stays short.
 */
function nextTurn<T>(value: T): Promise<T> {
  return new Promise((resolve) => setImmediate(resolve, value));
}

interface Entry {
  /** `undefined`: a tombstone. */
  value: string | undefined;
  version: number;
  expiresAt: number;
}

/**
 * The embedded default store: a Map in this process, bounded (LRU) and swept.
 * Records are strings (serialized copies), so no caller can mutate a stored
 * session by reference. Reads answer in the next event-loop turn, after I/O.
 * Sessions are lost on restart and not shared between processes: use
 * RedisStore, MemcachedStore or MongoStore for that.
 */
export class MemoryStore implements VersionedStore {
  readonly name = 'memory';
  /** Its calls never wait on I/O, so the session adds no deadline to them (see `Store.timeoutMs`). */
  readonly timeoutMs = 0;
  /** Most records kept; past it the least recently used unpinned record is evicted (`options.max`). */
  readonly max: number;
  // Map keeps insertion order: re-inserting on access makes the first key the least recently used.
  readonly #entries = new Map<string, Entry>();
  /** Keys exempt from LRU eviction (see {@link pin}). */
  readonly #pinned = new Set<string>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: MemoryStoreOptions = {}) {
    const input = check.object('options', options);
    check.known(input, OPTIONS);
    this.max = check.positiveInt('max', input.max, 100_000);
    const sweepIntervalMs = check.positiveMs('sweepIntervalMs', input.sweepIntervalMs, 60_000);
    this.#sweeper = setInterval(() => this.sweep(), sweepIntervalMs).unref();
  }

  /** Number of records held (expired ones included until swept or read). */
  get size(): number {
    return this.#entries.size;
  }

  get(key: string): Promise<string | undefined> {
    return nextTurn(this.#used(key)?.value);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.#put(key, { value, version: 0, expiresAt: Date.now() + ttlMs });
  }

  async destroy(key: string): Promise<void> {
    this.#drop(key);
  }

  async touch(key: string, ttlMs: number): Promise<void> {
    const entry = this.#live(key);
    if (entry?.value !== undefined) entry.expiresAt = Date.now() + ttlMs;
  }

  read(key: string): Promise<VersionedRecord | undefined> {
    const entry = this.#used(key);
    return nextTurn(entry && { value: entry.value, version: entry.version });
  }

  async write(key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition): Promise<boolean> {
    if (!allows(this.#live(key), version, condition)) return false;
    if (value === undefined && ttlMs <= 0) this.#drop(key);
    else this.#put(key, { value, version, expiresAt: Date.now() + ttlMs });
    return true;
  }

  /** Drop every expired record now (the timer calls this periodically). */
  sweep(now = Date.now()): void {
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) this.#drop(key);
    }
  }

  /** Drop every record. */
  clear(): void {
    this.#entries.clear();
    this.#pinned.clear();
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
  }

  /** The live entry, moved to the most recently used end. */
  #used(key: string): Entry | undefined {
    const entry = this.#live(key);
    if (!entry) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry;
  }

  #put(key: string, entry: Entry): void {
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    if (this.#entries.size > this.max) this.#evict();
  }

  /**
   * Drop the least recently used record that is not pinned. Pinned ones met on
   * the way move to the recent end, so each is skipped once per pass (amortized
   * O(1)); only a store holding nothing but pinned records evicts one of them.
   */
  #evict(): void {
    for (let seen = 0, size = this.#entries.size; seen < size; seen++) {
      const [key, entry] = this.#entries.entries().next().value as [string, Entry];
      if (!this.#pinned.has(key)) {
        this.#entries.delete(key);
        return;
      }
      this.#entries.delete(key);
      this.#entries.set(key, entry);
    }
    const oldest = this.#entries.keys().next().value;
    if (oldest !== undefined) this.#drop(oldest);
  }

  /** Remove a record (and its pin). */
  #drop(key: string): void {
    this.#entries.delete(key);
    this.#pinned.delete(key);
  }

  /**
   * Keep `key` out of the LRU eviction for as long as it is stored (it still
   * expires). The per-user session index pins its records: evicted before the
   * sessions it lists, it would let `revokeAll()` miss them (issue 11, item 16).
   */
  pin(key: string): void {
    if (this.#entries.has(key)) this.#pinned.add(key);
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry && entry.expiresAt <= Date.now()) {
      this.#drop(key);
      return undefined;
    }
    return entry;
  }
}
