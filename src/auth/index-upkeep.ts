import { debuglog } from 'node:util';
import { SessionError, StoreError } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import type { RecordFormat } from '../core/record.js';
import type { Replica } from '../core/replica.js';
import { SessionLock } from '../core/session-lock.js';
import { overVersion } from '../core/write.js';
import type { UserIndex } from './user-index.js';

const debug = debuglog('koa-locked-session');

/** Longest wait for the lock of a session destroyed by `auth.maxSessionsPerUser` (the scope holds its own lock meanwhile). */
const CAP_LOCK_WAIT_MS = 250;

/** What the per-user index upkeep needs from the request's session. */
export interface IndexHost {
  readonly options: ResolvedOptions;
  readonly index: UserIndex;
  readonly format: RecordFormat;
  /** The request's replica (its master holds the index). */
  readonly replica: Replica;
  key(sid: string): string;
}

/** Per-user index changes a commit must make: `[userId, sid]` pairs. */
export interface IndexPlan {
  remove?: [string | number, string];
  add?: [string | number, string];
}

export function sameId(a: string | number | undefined, b: string | number): boolean {
  return a === undefined || String(a) === String(b);
}

/** The id of a stored user, or undefined when `userId` cannot tell (treated as anyone's: revoking too much is the safe side). */
export function ownerId(options: ResolvedOptions, user: unknown): string | number | undefined {
  try {
    return options.userId(user);
  } catch {
    return undefined;
  }
}

/**
 * How the per-user index must change when the session of user `before` moves
 * from `oldSid` to `newSid` holding `data` (undefined: nothing to do).
 */
export function planIndex(
  options: ResolvedOptions,
  before: unknown,
  data: Record<string, unknown>,
  oldSid: string | undefined,
  newSid: string | undefined,
): IndexPlan | undefined {
  const { userKey, userId } = options;
  const after = newSid === undefined ? undefined : data[userKey];
  if (before === undefined && after === undefined) return undefined;
  const beforeId = before === undefined ? undefined : userId(before);
  const afterId = after === undefined ? undefined : userId(after);
  if (oldSid === newSid && beforeId === afterId) return undefined;
  const plan: IndexPlan = {};
  if (beforeId !== undefined && oldSid !== undefined) plan.remove = [beforeId, oldSid];
  if (afterId !== undefined && newSid !== undefined) plan.add = [afterId, newSid];
  return plan.add || plan.remove ? plan : undefined;
}

/**
 * Index hook 1 of 2, under the lock of the session's old sid: list the session
 * under its (new) user once its record exists and before the old sid's record
 * is destroyed. Past `auth.maxSessionsPerUser` the oldest sessions are
 * destroyed. If the entry cannot be written the commit fails (503) and a new
 * sid's record is removed again: a login that succeeded unlisted could not be
 * revoked, and the old session is left as it was.
 */
export async function indexAdd(
  host: IndexHost,
  plan: IndexPlan | undefined,
  newSid: string | undefined,
  oldSid: string | undefined,
): Promise<void> {
  if (!plan?.add) return;
  const [uid, sid] = plan.add;
  const master = host.replica.master;
  let over: string[];
  try {
    over = await host.index.add(master, uid, sid, oldSid === undefined ? [] : [oldSid]);
  } catch (error) {
    // Undo the insert (version 1): the client never learns this sid, no cookie was sent.
    if (newSid !== undefined)
      await host.replica
        .put({ key: host.key(newSid), value: undefined, version: 2, ttlMs: host.options.ttl, condition: 1, tombstoneMs: 0 })
        .catch(() => false);
    throw error instanceof SessionError
      ? error
      : new StoreError(master.name, 'user index update failed; nothing was logged in', { cause: error });
  }
  if (over.length > 0) await capSessions(host, uid, over);
}

/** Index hook 2 of 2: unlist the old sid once its record is gone. A failure leaves a dead entry that later updates prune. */
export async function indexRemove(host: IndexHost, plan: IndexPlan | undefined): Promise<void> {
  if (!plan?.remove) return;
  try {
    await host.index.remove(host.replica.master, plan.remove[0], [plan.remove[1]]);
  } catch (error) {
    debug('user index: removing a dead entry failed (pruned later): %s', (error as Error)?.message);
  }
}

/**
 * `auth.maxSessionsPerUser`: destroy the oldest sessions past the cap, each
 * under its own lock, then unlist them. Called while a scope holds its own
 * lock, so the wait for theirs is short: two logins capping each other's old
 * sessions must not wait out `lockTimeout`. A session that cannot be destroyed
 * now stays listed (still revocable) and is retried on the next login.
 */
async function capSessions(host: IndexHost, uid: string | number, sids: readonly string[]): Promise<void> {
  const done: string[] = [];
  for (const sid of sids) {
    try {
      const lock = await SessionLock.acquire(
        host.options,
        host.replica,
        host.key(sid),
        Math.min(host.options.lockTimeout, CAP_LOCK_WAIT_MS),
      );
      await destroyListed(host, lock, uid);
      done.push(sid);
    } catch (error) {
      debug('user index: a session past maxSessionsPerUser could not be destroyed now (retried later): %s', (error as Error)?.message);
    }
  }
  if (done.length > 0)
    await host.index
      .remove(host.replica.master, uid, done)
      .catch((error: unknown) => debug('user index: unlisting capped sessions failed: %s', (error as Error)?.message));
}

/**
 * Destroy a listed session while holding its lock (released here), through the
 * same steps as every scope: a fresh read under the lock, then a delete
 * conditional on the version read, refused once the lease is lost. It is
 * deleted only if it is live and still `uid`'s (an entry left by a failed user
 * change may list another user's session); mirrors get a tombstone that
 * outlives any late write. A tombstone means the session moved (regenerate):
 * its successor is listed, the next round of revokeAll takes it.
 * @returns true if a live session was destroyed.
 */
export async function destroyListed(host: IndexHost, lock: SessionLock, uid: string | number): Promise<boolean> {
  try {
    const record = await lock.read();
    if (record?.value === undefined) return false;
    const owner = host.format.decode(record.value)?.data[host.options.userKey];
    if (owner !== undefined && !sameId(ownerId(host.options, owner), uid)) return false;
    lock.checkHeld();
    await lock.write(overVersion(lock.key, undefined, record.version, host.options.ttl));
    return true;
  } finally {
    await lock.release();
  }
}
