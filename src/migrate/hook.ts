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
import { storeCall } from '../deadline.js';
import type { ResolvedOptions } from '../options.js';
import type { Store } from '../stores/store.js';
import { moveOnce, type MoveResult } from './move.js';
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
    const found = await source.read(ctx);
    if (!found) continue;
    if (Object.keys(found.data).length === 0) {
      // An empty old session (express-session's saveUninitialized): nothing to keep, and our
      // store never holds an empty session. Retire it so that later requests stop asking.
      if (source.retire) await retireEmpty(found);
      return undefined;
    }
    const result = await moveOnce(found, source.retire, {
      locker: options.locker,
      lockTimeoutMs: options.lockTimeout,
      // session() refuses migrateFrom with a request store (CookieStore) master: this is a server-side Store.
      markers: bounded(options.master as Store, options.storeTimeout),
      prefix: options.prefix,
      markerTtlMs: options.ttl,
      create,
      onRetireError: (error) => debug('migrateFrom: retiring the old %s session failed (it was moved; the marker prevents a second move): %s', found.source, String(error)),
    });
    if (source.retire) found.clearCookies();
    debug('migrateFrom: %s session of %s', result.created ? 'moved the' : 'joined the already moved', found.source);
    return result;
  }
  return undefined;
}

async function retireEmpty(found: FoundSession): Promise<void> {
  found.clearCookies();
  await found.retire().catch((error: unknown) => debug('migrateFrom: retiring an empty old %s session failed: %s', found.source, String(error)));
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
