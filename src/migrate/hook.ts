/**
 * The `migrateFrom` option inside the middleware: the one call a request's
 * session makes on its first async use (first get(), scope, or helper) when it
 * brought no valid session of ours.
 *
 * Cost when there is nothing to migrate: no store call and no promise. The
 * sources are first asked synchronously whether the request carries their
 * cookie at all ({@link MigrationSource.carries}); only then does the move
 * (move.ts: verify, lock, marker, create, retire) run.
 */
import { debuglog } from 'node:util';
import type { Context } from 'koa';
import { storeCall } from '../util/deadline.js';
import type { ResolvedOptions } from '../options.js';
import type { Store } from '../contracts/store.js';
import { settleMove, type MoveResult } from './move.js';
import type { FoundSession, MigrationSource } from './source.js';

const debug = debuglog('koa-locked-session');

/**
 * Start the migration of the old session this request carries, or return
 * `undefined` at once (no promise) when no source recognises a cookie of its
 * library. `create` writes our session under a new sid and resolves that sid.
 * Resolves `undefined` when the old cookie turned out not to hold a valid,
 * non-empty old session.
 */
export function migrateOnFirstUse(
  ctx: Context,
  options: ResolvedOptions,
  create: (data: Record<string, unknown>) => Promise<string>,
): Promise<MoveResult | undefined> | undefined {
  const sources = options.migrateFrom;
  if (sources.length === 0) return undefined;
  const candidates = sources.filter((source) => source.carries?.(ctx) ?? true);
  if (candidates.length === 0) return undefined;
  return migrate(ctx, options, candidates, create);
}

async function migrate(
  ctx: Context,
  options: ResolvedOptions,
  sources: readonly MigrationSource[],
  create: (data: Record<string, unknown>) => Promise<string>,
): Promise<MoveResult | undefined> {
  for (const source of sources) {
    // Identified from the cookie alone (verified, no I/O), the old session is read under the move's lock.
    const id = source.identify?.(ctx);
    const early = source.identify ? undefined : await source.read(ctx);
    if (id === undefined && early === undefined) continue;
    const identity = early ?? { source: source.name, id: id! };
    const result = await settleMove(identity, source.retire, early ? async () => early : () => source.read(ctx), {
      locker: options.locker,
      lockTimeoutMs: options.lockTimeout,
      // session() refuses migrateFrom with a request store (CookieStore) master: this is a server-side Store.
      markers: bounded(options.master as Store, options.storeTimeout),
      prefix: options.prefix,
      ...(source.until === undefined ? {} : { until: source.until }),
      // The user's index entry is written by the same save that creates the session, still under the move's lock.
      create: source.user ? (data) => create(withUser(data, source.user!, options.userKey)) : create,
      onRetireError: (error, found) =>
        debug(
          'migrateFrom: retiring the old %s session failed (it was moved; the marker prevents a second move): %s',
          found.source,
          String(error),
        ),
      onUnbounded: (found) => warnUnbounded(source, found),
    });
    if (source.retire) {
      if (source.clearCookies) source.clearCookies(ctx);
      else early?.clearCookies();
    }
    debug(
      'migrateFrom: %s session of %s',
      result === undefined ? 'no (or an ended) old' : result.created ? 'moved the' : 'joined the already moved',
      source.name,
    );
    return result;
  }
  return undefined;
}

/**
 * `data` with the source's `user` kept in `userKey` (removed when it answers
 * `undefined`): the same derived field `plainSession({ user })` keeps, so the
 * moved session is listed under its user by the save that creates it.
 */
export function withUser(
  data: Record<string, unknown>,
  user: (data: Record<string, unknown>) => unknown,
  userKey: string,
): Record<string, unknown> {
  const out = { ...data };
  const value = user(data);
  if (value === undefined) delete out[userKey];
  else out[userKey] = value;
  return out;
}

const warned = new WeakSet<MigrationSource>();
function warnUnbounded(source: MigrationSource, found: FoundSession): void {
  debug("migrateFrom: an old %s session without an expiry was not moved: set the source's `until`", found.source);
  if (warned.has(source)) return;
  warned.add(source);
  process.emitWarning(
    `koa-locked-session: migrateFrom: an old ${found.source} session without an expiry of its own was not moved (the user starts anew): pass ${source.name}({ until: <end of the migration window> }) to move such sessions`,
    { code: 'KLS_MIGRATE_UNBOUNDED' },
  );
}

/**
 * A request whose own session of ours wins: expire the cookies of the old
 * libraries it also carries (sources with `retire`), so that after a logout
 * the next request does not move another user's old session into the browser.
 */
export function expireOldCookies(ctx: Context, options: ResolvedOptions): void {
  for (const source of options.migrateFrom) {
    if (source.retire && source.clearCookies && (source.carries?.(ctx) ?? true) && source.identify?.(ctx) !== undefined)
      source.clearCookies(ctx);
  }
}

/** The master for the markers, each call bounded by `storeTimeout` like every other master call (a hung store fails with StoreError, 503). */
function bounded(master: Store, ms: number): Store {
  return {
    name: master.name,
    get: (key) => storeCall(master.name, 'GET', ms, () => master.get(key)),
    set: (key, value, ttlMs) => storeCall(master.name, 'SET', ms, () => master.set(key, value, ttlMs)),
    destroy: (key) => storeCall(master.name, 'DESTROY', ms, () => master.destroy(key)),
  };
}
