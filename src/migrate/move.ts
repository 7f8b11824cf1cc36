/**
 * Moving an old session into ours, exactly once.
 *
 * The middleware calls {@link findOldSession} only when a request brings no
 * valid session of ours. With what it finds, {@link moveOnce}:
 * 1. locks `<prefix>migrated-<hash of source + old id>` (the same locker as the
 *    sessions, so it holds across processes with RedisLocker);
 * 2. under the lock, reads the marker under that key: if another request
 *    already moved this old session, it returns that request's new sid
 *    (`created: false`) — two overlapping first requests of one browser end on
 *    ONE new session;
 *    — or, when that session has ended (logout, destroy, revokeAll, expiry),
 *    nothing: the old session was moved once and is never moved again;
 * 3. otherwise reads the old session (under the lock), asks the core to create
 *    our session from the data under a new sid (`create`, a write of a new sid:
 *    it never overwrites anything), writes the marker (`{"sid"}`, kept until
 *    the old session could no longer be presented: its own expiry, or the
 *    source's `until`; an old session bounded by neither is not moved), and
 *    only then retires the old session (when the source's `retire` is on). A
 *    failed retire is reported to `onRetireError` and never fails the
 *    request: the marker already prevents a second move.
 * Each request that found the old session also expires the old cookie on its
 * response (`clearCookies`, unless `retire: false`).
 *
 * Sources with `identify` (all three built-in readers) are identified from
 * the cookie alone and read only under the lock, so a request that arrives
 * after the winner retired the old record still joins it.
 */
import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import type { Locker } from '../contracts/locker.js';
import type { Store } from '../contracts/store.js';
import type { FoundSession, MigrationSource } from './source.js';

/** What {@link moveOnce} needs from the middleware. */
export interface MoveOptions {
  /** The sessions' locker. */
  locker: Locker;
  /** Longest wait for the migration lock (ms): the middleware's `lockTimeout`. */
  lockTimeoutMs: number;
  /** Where the "already moved" markers live: the master (a server-side store; with a CookieStore master, pass a shared server-side store or a MemoryStore for one process). */
  markers: Store;
  /** The middleware's key prefix. */
  prefix: string;
  /**
   * @deprecated ignored: a marker now lives as long as the old session can be
   * presented (its own expiry, or `until`).
   */
  markerTtlMs?: number;
  /** The source's `until` (ms since the epoch): bounds old sessions without an expiry of their own. */
  until?: number;
  /** Told when an old session was not moved because neither its expiry nor `until` bounds it. */
  onUnbounded?: (found: FoundSession) => void;
  /** Create our session holding `data` under a new sid (conditional on nothing being there); resolves the sid. */
  create(data: Record<string, unknown>): Promise<string>;
  /** Told when retiring the old session failed (the move itself succeeded). */
  onRetireError?: (error: unknown, found: FoundSession) => void;
}

/** What {@link moveOnce} did. */
export interface MoveResult {
  /** Our session's sid: set it as the request's session (and cookie). */
  readonly sid: string;
  /** `true` for the request that created it; `false` when an overlapping (or earlier) request already had. */
  readonly created: boolean;
  /** The source the old session came from. */
  readonly source: string;
}

/** The marker (and lock) key of an old session: its identity hashed, never the old sid itself in our keys. */
export function markerKey(prefix: string, found: Pick<FoundSession, 'source' | 'id'>): string {
  const hash = createHash('sha256').update(`${found.source}\0${found.id}`).digest('base64url');
  return `${prefix}migrated-${hash}`;
}

/** The first old session the request carries, trying `sources` in order (never throws on client input). */
export async function findOldSession(
  sources: MigrationSource | readonly MigrationSource[],
  ctx: Context,
): Promise<FoundSession | undefined> {
  for (const source of Array.isArray(sources) ? sources : [sources as MigrationSource]) {
    const found = await source.read(ctx);
    if (found) return found;
  }
  return undefined;
}

/** Extra time a marker outlives the old session's expiry: clocks of processes differ a little. */
const CLOCK_SLACK_MS = 60_000;

/**
 * Move an old session into ours at most once, ever (see the module comment),
 * deciding under the lock: the marker is read first, so a request that comes
 * after the move retired the old record still ends on the moved session.
 * `load` reads the old session (under the lock). Resolves `undefined` when
 * there is nothing to move, or when the old session was moved before and our
 * session has ended since (logout, destroy, revokeAll, expiry): the request
 * then starts fresh, and the old form never comes back.
 */
export async function settleMove(
  identity: Pick<FoundSession, 'source' | 'id'>,
  retire: boolean,
  load: () => Promise<FoundSession | undefined>,
  options: MoveOptions,
): Promise<MoveResult | undefined> {
  const key = markerKey(options.prefix, identity);
  const lease = await options.locker.acquire(key, { timeoutMs: options.lockTimeoutMs });
  try {
    const moved = await options.markers.get(key);
    if (moved !== undefined) {
      const sid = markerSid(moved);
      // The moved session is gone: the old form is dead too, for as long as the marker lives.
      if (sid === undefined || (await options.markers.get(options.prefix + sid)) === undefined) return undefined;
      return { sid, created: false, source: identity.source };
    }
    const found = await load();
    if (!found || Object.keys(found.data).length === 0) {
      if (found && retire) await found.retire().catch((error: unknown) => options.onRetireError?.(error, found));
      return undefined;
    }
    const until = presentableUntil(found.expiresAt, options.until);
    if (until === undefined) {
      options.onUnbounded?.(found);
      return undefined;
    }
    const sid = await options.create(found.data);
    await options.markers.set(key, JSON.stringify({ sid }), Math.max(1, until - Date.now()) + CLOCK_SLACK_MS);
    if (retire) {
      await found.retire().catch((error: unknown) => options.onRetireError?.(error, found));
    }
    return { sid, created: true, source: found.source };
  } finally {
    await lease.release();
  }
}

/** The last moment an old session can be presented: its own expiry, capped by `until`; `undefined` when neither bounds it. */
function presentableUntil(expiresAt: number | undefined, until: number | undefined): number | undefined {
  if (expiresAt === undefined) return until;
  return until === undefined ? expiresAt : Math.min(expiresAt, until);
}

/** The sid a marker points at (`{"sid":…}`; a plain sid from earlier versions). */
function markerSid(value: string): string | undefined {
  if (!value.startsWith('{')) return value;
  try {
    const sid = (JSON.parse(value) as { sid?: unknown }).sid;
    return typeof sid === 'string' ? sid : undefined;
  } catch {
    return undefined;
  }
}

/** Move `found` into our master at most once (decided under the lock, see the module comment); `undefined` when it was moved before and that session has ended. */
export async function moveOnce(found: FoundSession, retire: boolean, options: MoveOptions): Promise<MoveResult | undefined> {
  return settleMove(found, retire, async () => found, options);
}

/**
 * The one call the middleware makes for a request without a valid session of
 * ours: find an old session, move it (once), expire the old cookie. Resolves
 * `undefined` when the request carries no old session.
 */
export async function migrateRequest(
  ctx: Context,
  sources: MigrationSource | readonly MigrationSource[],
  options: MoveOptions,
): Promise<MoveResult | undefined> {
  const list = Array.isArray(sources) ? sources : [sources as MigrationSource];
  for (const source of list) {
    const found = await source.read(ctx);
    if (!found) continue;
    const result = await moveOnce(found, source.retire, { ...options, until: options.until ?? source.until });
    if (source.retire) found.clearCookies();
    return result;
  }
  return undefined;
}
