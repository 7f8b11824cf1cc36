import { createHash } from 'node:crypto';
import type { Locker } from './lockers/locker.js';
import type { Store } from './stores/store.js';

/**
 * Which sessions a user has, kept beside the master as one record per user
 * (`<prefix>idx:<sha256(userId)>`: a JSON array of sids). Updates are
 * read-modify-writes under the same locker as the sessions, so the index is
 * as consistent as the sessions themselves, on every store with get/set
 * (Memcached included, which has no way to enumerate keys). Liveness is
 * checked against the master on every listing, so expired sessions drop out
 * even though the index is not told about expiry.
 */
export class UserIndex {
  constructor(
    private readonly locker: Locker,
    private readonly lockTimeout: number,
    private readonly prefix: string,
  ) {}

  /**
   * How long an index record lives after its last change. Sessions slide their
   * expiry on every save without telling the index, so it must outlive them;
   * dead entries are pruned on listing, so a long TTL costs only idle records.
   */
  static readonly TTL_MS = 400 * 24 * 60 * 60 * 1000;

  /** The store key of a user's index record (hashed: user ids are programmer data of any shape). */
  keyOf(userId: string | number): string {
    return `${this.prefix}idx:${createHash('sha256').update(String(userId)).digest('base64url')}`;
  }

  add(master: Store, userId: string | number, sid: string): Promise<string[]> {
    return this.#update(master, userId, (sids) => (sids.includes(sid) ? sids : [...sids, sid]));
  }

  remove(master: Store, userId: string | number, sids: readonly string[]): Promise<string[]> {
    return this.#update(master, userId, (list) => list.filter((s) => !sids.includes(s)));
  }

  /** The user's sids whose record is still live in the master; dead ones are pruned from the index. */
  async list(master: Store, userId: string | number): Promise<string[]> {
    const sids = parse(await master.get(this.keyOf(userId)));
    const live = await Promise.all(sids.map(async (sid) => ((await master.get(this.prefix + sid)) === undefined ? undefined : sid)));
    const alive = live.filter((s): s is string => s !== undefined);
    if (alive.length < sids.length) await this.remove(master, userId, sids.filter((s) => !alive.includes(s)));
    return alive;
  }

  async #update(master: Store, userId: string | number, change: (sids: string[]) => string[]): Promise<string[]> {
    const key = this.keyOf(userId);
    const lease = await this.locker.acquire(key, { timeoutMs: this.lockTimeout, store: master });
    try {
      const store = lease.store ?? master;
      const before = parse(await store.get(key));
      const after = change(before);
      if (after.length === before.length && after.every((s, i) => s === before[i])) return after;
      if (after.length === 0) await store.destroy(key);
      else await store.set(key, JSON.stringify(after), UserIndex.TTL_MS);
      return after;
    } finally {
      await lease.release();
    }
  }
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
