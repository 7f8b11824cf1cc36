import { createHash } from 'node:crypto';
import type { Locker } from '../contracts/locker.js';
import type { Store } from '../contracts/store.js';

/**
 * Which sessions a user has, kept beside the master as one record per user
 * (`<prefix>idx:<sha256(userId)>`: a JSON array of sids, oldest first). Updates
 * are read-modify-writes under the same locker as the sessions, so the index is
 * as consistent as the sessions themselves, on every store with get/set
 * (Memcached included, which has no way to enumerate keys).
 *
 * The invariant revocation rests on (see `SessionHandle.revokeAll`): a sid is
 * added only once its record exists, and removed only once its record is gone.
 * So an entry whose record is gone is dead for good (sids are never reused, a
 * gone record is never written again), and dropping it can never hide a session.
 *
 * Bounded (issue 11, item 10): every update checks at most {@link PRUNE_CHECKS}
 * entries against the master and drops the dead ones, and past `maxPerUser`
 * entries the update names the oldest ones for the caller to destroy.
 */
export class UserIndex {
  constructor(
    private readonly locker: Locker,
    private readonly lockTimeout: number,
    private readonly prefix: string,
    /** `auth.maxSessionsPerUser`. */
    readonly maxPerUser: number = 100,
    /** Bound on the locker's store round trips (RedisLocker's fused acquire-and-read). */
    private readonly storeTimeout: number = 2000,
  ) {}

  /**
   * How long an index record lives after its last change. Sessions slide their
   * expiry on every save without telling the index, so it must outlive them;
   * dead entries are pruned on every update, so a long TTL costs only idle records.
   */
  static readonly TTL_MS = 400 * 24 * 60 * 60 * 1000;

  /** Liveness reads per index update: bounded work, and enough to keep up with one new entry per update. */
  static readonly PRUNE_CHECKS = 3;

  /** The store key of a user's index record (hashed: user ids are programmer data of any shape). */
  keyOf(userId: string | number): string {
    return `${this.prefix}idx:${createHash('sha256').update(String(userId)).digest('base64url')}`;
  }

  /**
   * Add `sid` (whose record must already exist). Resolves with the entries past
   * `maxPerUser`, oldest first and never one of `keep`: the caller destroys
   * those sessions and then {@link remove}s them (an entry leaves the index only
   * after its session is gone, so a capped-out session is never left unrevocable).
   */
  async add(master: Store, userId: string | number, sid: string, keep: readonly string[] = []): Promise<string[]> {
    const after = await this.#update(master, userId, (sids) => (sids.includes(sid) ? sids : [...sids, sid]), [sid, ...keep]);
    const over = after.length - this.maxPerUser;
    return over > 0 ? after.filter((s) => s !== sid && !keep.includes(s)).slice(0, over) : [];
  }

  /** Drop `sids` (whose records are gone) from the user's index. */
  async remove(master: Store, userId: string | number, sids: readonly string[]): Promise<void> {
    await this.#update(master, userId, (list) => list.filter((s) => !sids.includes(s)), []);
  }

  /** Every sid the index holds for the user, live or not, oldest first (no liveness reads). */
  async entries(master: Store, userId: string | number): Promise<string[]> {
    return parse(await master.get(this.keyOf(userId)));
  }

  /** The user's sids whose record is still live in the master; dead ones are pruned from the index. */
  async list(master: Store, userId: string | number): Promise<string[]> {
    const sids = await this.entries(master, userId);
    const live = await Promise.all(sids.map(async (sid) => ((await master.get(this.prefix + sid)) === undefined ? undefined : sid)));
    const alive = live.filter((s): s is string => s !== undefined);
    if (alive.length < sids.length)
      await this.remove(
        master,
        userId,
        sids.filter((s) => !alive.includes(s)),
      );
    return alive;
  }

  /** Read-modify-write under the index's lock, pruning up to PRUNE_CHECKS dead entries (never one of `fresh`). */
  async #update(master: Store, userId: string | number, change: (sids: string[]) => string[], fresh: readonly string[]): Promise<string[]> {
    const key = this.keyOf(userId);
    const lease = await this.locker.acquire(key, { timeoutMs: this.lockTimeout, storeTimeoutMs: this.storeTimeout, store: master });
    try {
      const store = lease.store ?? master;
      const before = parse(await store.get(key));
      const changed = change(before);
      const dead = await this.#deadAmong(
        master,
        changed.filter((s) => !fresh.includes(s)),
      );
      const after = dead.length === 0 ? changed : changed.filter((s) => !dead.includes(s));
      if (after.length === before.length && after.every((s, i) => s === before[i])) return after;
      if (after.length === 0) await store.destroy(key);
      else {
        await store.set(key, JSON.stringify(after), UserIndex.TTL_MS);
        // MemoryStore: keep the index out of its LRU eviction, or revokeAll would miss the sessions it lists (item 16).
        (master as Partial<PinningStore>).pin?.(key);
      }
      return after;
    } finally {
      await lease.release();
    }
  }

  /**
   * Which of (at most PRUNE_CHECKS of) `sids` have no record any more: the oldest
   * entry (the one a cap would otherwise destroy first) and a rotating sample of
   * the rest, so every entry is checked sooner or later at a bounded cost per write.
   */
  async #deadAmong(store: Store, sids: readonly string[]): Promise<string[]> {
    if (sids.length === 0) return [];
    const picks = new Set<string>([sids[0]!]);
    const start = Math.floor(Math.random() * sids.length);
    for (let i = 0; picks.size < Math.min(UserIndex.PRUNE_CHECKS, sids.length); i++) picks.add(sids[(start + i) % sids.length]!);
    const checked = await Promise.all(
      [...picks].map(async (sid) => ((await store.get(this.prefix + sid)) === undefined ? sid : undefined)),
    );
    return checked.filter((s): s is string => s !== undefined);
  }
}

/**
 * A store that can keep chosen records out of its eviction (MemoryStore). The user
 * index pins its records: an index evicted before the sessions it lists would let
 * `revokeAll` report success while those sessions live on.
 */
export interface PinningStore extends Store {
  /** Exempt `key` from eviction for as long as it is stored (it still expires). */
  pin(key: string): void;
}

function parse(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  try {
    const list = JSON.parse(raw) as unknown;
    return Array.isArray(list) ? list.filter((s): s is string => typeof s === 'string') : [];
  } catch {
    return [];
  }
}
