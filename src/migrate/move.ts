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
 * 3. otherwise asks the core to create our session from the data under a new
 *    sid (`create`, a write of a new sid: it never overwrites anything), writes
 *    the marker (`<new sid>`, for `markerTtlMs`), and only then retires the old
 *    session (when the source's `retire` is on). A failed retire is reported to
 *    `onRetireError` and never fails the request: the marker already prevents
 *    a second move while it lives.
 * Each request that found the old session also expires the old cookie on its
 * response (`clearCookies`, unless `retire: false`).
 *
 * The old session is read before the lock and not again under it: the old
 * library no longer writes (it is replaced), so the only race is between our
 * own first requests, which the marker settles.
 */
import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import type { Locker } from '../lockers/locker.js';
import type { Store } from '../stores/store.js';
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
  /** How long a marker lives (ms): the session `ttl` is a good value. */
  markerTtlMs: number;
  /** Create our session holding `data` under a new sid (conditional on nothing being there); resolves the sid. */
  create(data: Record<string, unknown>): Promise<string>;
  /** Told when retiring the old session failed (the move itself succeeded). */
  onRetireError?: (error: unknown, found: FoundSession) => void;
}

/** What {@link moveOnce} did. */
export interface MoveResult {
  /** Our session's sid: set it as the request's session (and cookie). */
  readonly sid: string;
  /** `true` for the request that created it; `false` when an overlapping request already had. */
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
export async function findOldSession(sources: MigrationSource | readonly MigrationSource[], ctx: Context): Promise<FoundSession | undefined> {
  for (const source of Array.isArray(sources) ? sources : [sources as MigrationSource]) {
    const found = await source.read(ctx);
    if (found) return found;
  }
  return undefined;
}

/** Move `found` into our master exactly once (see the module comment). */
export async function moveOnce(found: FoundSession, retire: boolean, options: MoveOptions): Promise<MoveResult> {
  const key = markerKey(options.prefix, found);
  const lease = await options.locker.acquire(key, { timeoutMs: options.lockTimeoutMs });
  try {
    const moved = await options.markers.get(key);
    if (moved !== undefined) return { sid: moved, created: false, source: found.source };
    const sid = await options.create(found.data);
    await options.markers.set(key, sid, options.markerTtlMs);
    if (retire) {
      await found.retire().catch((error: unknown) => options.onRetireError?.(error, found));
    }
    return { sid, created: true, source: found.source };
  } finally {
    await lease.release();
  }
}

/**
 * The one call the middleware makes for a request without a valid session of
 * ours: find an old session, move it (once), expire the old cookie. Resolves
 * `undefined` when the request carries no old session.
 */
export async function migrateRequest(ctx: Context, sources: MigrationSource | readonly MigrationSource[], options: MoveOptions): Promise<MoveResult | undefined> {
  const list = Array.isArray(sources) ? sources : [sources as MigrationSource];
  for (const source of list) {
    const found = await source.read(ctx);
    if (!found) continue;
    const result = await moveOnce(found, source.retire, options);
    if (source.retire) found.clearCookies();
    return result;
  }
  return undefined;
}
