/**
 * Reader of koa-generic-session sessions: cookie `koa.sid` (signed with
 * `app.keys`, read through `ctx.cookies.get(key, { signed })` as
 * koa-generic-session does) holding the sid; the session is the store record
 * `<prefix><sid>` (default prefix `koa:sess:`), an object with a `cookie` field.
 */
import type { Context } from 'koa';
import { withDeadline } from '../util/deadline.js';
import {
  expireCookie,
  expiryOf,
  oldData,
  plainObject,
  rawCookie,
  sharedOptions,
  without,
  type FoundSession,
  type MigrationSource,
  type MigrationSourceOptions,
} from './source.js';

/** The store koa-generic-session was given (koa-redis, …): promise based `get(key)` / `destroy(key)`. */
export interface GenericSessionStoreLike {
  /** The record under `key` (a promise; null when none). */
  get(key: string): unknown;
  /** Delete the record under `key` (a promise). */
  destroy(key: string): unknown;
}

/** Options of {@link genericSession}: the old `session({ store, key, prefix, cookie })` values. */
export interface GenericSessionSourceOptions extends MigrationSourceOptions {
  /** The old `store` (the one passed to koa-generic-session, e.g. `redisStore()` from koa-redis). */
  store: GenericSessionStoreLike;
  /** The old `key` option (cookie name). @default 'koa.sid' */
  key?: string;
  /** The old `prefix` option (store key prefix). @default 'koa:sess:' */
  prefix?: string;
  /** The old `cookie.signed` option. @default true */
  signed?: boolean;
  /** The old `cookie.path` (to expire its cookie). @default '/' */
  path?: string;
}

/**
 * Read koa-generic-session sessions from its store.
 * @example
 * session({ migrateFrom: genericSession({ store: redisStore({ url }), key: 'koa.sid', prefix: 'koa:sess:' }) })
 */
export function genericSession(options: GenericSessionSourceOptions): MigrationSource {
  const name = 'koa-generic-session';
  const { retire, map, timeoutMs, until, user } = sharedOptions(name, options ?? ({} as GenericSessionSourceOptions));
  const { store, key = 'koa.sid', prefix = 'koa:sess:', signed = true, path = '/' } = options ?? ({} as GenericSessionSourceOptions);
  if (typeof store?.get !== 'function' || typeof store?.destroy !== 'function') {
    throw new TypeError(
      `koa-locked-session: Expected ${name}({ store }) to be the store koa-generic-session used (with get and destroy), e.g. redisStore() from koa-redis`,
    );
  }
  if (until === undefined) {
    // Its sessions carry no expiry (only `cookie.maxAge`): only `until` bounds how long one can come back.
    throw new TypeError(
      `koa-locked-session: Expected ${name}({ until }) to be the end of the migration window (a Date): koa-generic-session sessions carry no expiry date, so nothing else bounds how long an old session can be presented. Pass e.g. until: new Date(Date.now() + <your old ttl> + a margin) fixed at your switch date`,
    );
  }
  if (typeof key !== 'string' || key === '' || typeof prefix !== 'string') {
    throw new TypeError(
      `koa-locked-session: Expected ${name}({ key, prefix }) to be the old cookie name and store prefix, e.g. { key: 'koa.sid', prefix: 'koa:sess:' }`,
    );
  }

  const identify = (ctx: Context): string | undefined => {
    if (signed && !ctx.app.keys) return undefined;
    try {
      return ctx.cookies.get(key, { signed }) || undefined;
    } catch {
      return undefined;
    }
  };
  const clearCookies = (ctx: Context) => expireCookie(ctx, key, { signed, path });

  return {
    name,
    retire,
    until,
    user,
    carries: (ctx: Context) => rawCookie(ctx, key) !== undefined,
    identify,
    clearCookies,
    async read(ctx: Context): Promise<FoundSession | undefined> {
      const sid = identify(ctx);
      if (!sid) return undefined;
      let stored: unknown;
      try {
        stored = await withDeadline(
          async () => store.get(prefix + sid),
          timeoutMs,
          () => new Error('timeout'),
        );
      } catch {
        return undefined;
      }
      const session = oldData(stored);
      if (!session) return undefined;
      // koa-generic-session keeps only `cookie.maxAge` (no date): `expires` is honoured when a store kept one.
      const expiresAt = expiryOf(plainObject(session.cookie)?.expires);
      if (expiresAt !== undefined && !(expiresAt > Date.now())) return undefined;
      const data = map ? map(without(session, ['cookie']), ctx) : without(session, ['cookie']);
      if (!data) return undefined;
      return {
        source: name,
        id: sid,
        data,
        ...(expiresAt === undefined ? {} : { expiresAt }),
        retire: async () => {
          await store.destroy(prefix + sid);
        },
        clearCookies: () => clearCookies(ctx),
      };
    },
  };
}
