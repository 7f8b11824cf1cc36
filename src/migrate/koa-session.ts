/**
 * Reader of koa-session (v5–v7) sessions, in its two modes:
 * - cookie mode: cookie `koa.sess` = base64 of the JSON session, signed by
 *   `koa.sess.sig` (Keygrip over `koa.sess=<value>` with `app.keys`, exactly
 *   as koa-session reads it: through `ctx.cookies.get(key, { signed })`);
 * - external store: the same cookie holds the external key, and the session is
 *   `store.get(key, maxAge, { rolling, ctx })`.
 * Bookkeeping fields (`_expire`, `_maxAge`, `_session`) are dropped; a session
 * whose `_expire` has passed is not migrated (koa-session would not use it),
 * and `_expire` is how long the "already moved" marker is kept (a
 * `maxAge: 'session'` cookie has none: it needs the source's `until`).
 */
import type { Context } from 'koa';
import { withDeadline } from '../util/deadline.js';
import type { KoaStoreLike } from '../adapters/koa-store.js';
import {
  expireCookie,
  expiryOf,
  oldData,
  rawCookie,
  sharedOptions,
  without,
  type FoundSession,
  type MigrationSource,
  type MigrationSourceOptions,
} from './source.js';

/** Options of {@link koaSessionCookie}: the old `session(CONFIG, app)` values that matter for reading. */
export interface KoaSessionSourceOptions extends MigrationSourceOptions {
  /** The old `key` option (cookie name). @default 'koa.sess' */
  key?: string;
  /** The old `signed` option: `true` verifies `<key>.sig` with `app.keys`. @default true */
  signed?: boolean;
  /** The old `store` option (external store, e.g. koa-redis): the cookie then holds the store key. */
  store?: KoaStoreLike;
  /** The cookie `path` the old app used (to expire its cookie). @default '/' */
  path?: string;
}

const BOOKKEEPING = ['_expire', '_maxAge', '_session'];

/**
 * Read koa-session sessions (cookie mode, or with `store` its external-store mode).
 * @example
 * session({ migrateFrom: koaSessionCookie({ key: 'koa.sess' }) })
 */
export function koaSessionCookie(options: KoaSessionSourceOptions = {}): MigrationSource {
  const name = 'koa-session';
  const { retire, map, timeoutMs, until, user } = sharedOptions(name, options);
  const { key = 'koa.sess', signed = true, store, path = '/' } = options;
  if (typeof key !== 'string' || key === '')
    throw new TypeError(`koa-locked-session: Expected ${name}({ key }) to be the old cookie name, e.g. 'koa.sess'`);
  if (store !== undefined && (typeof store?.get !== 'function' || typeof store?.destroy !== 'function')) {
    throw new TypeError(
      `koa-locked-session: Expected ${name}({ store }) to be the old external store (with get and destroy), e.g. koa-redis`,
    );
  }

  /** The verified cookie value (the payload in cookie mode, the external key otherwise). */
  const verified = (ctx: Context): string | undefined => {
    if (signed && !ctx.app.keys) return undefined; // cannot verify: never trust an unsigned payload
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
    identify: (ctx: Context) => {
      const cookie = verified(ctx);
      return cookie === undefined ? undefined : `${store ? 'external' : 'cookie'}:${cookie}`;
    },
    clearCookies,
    async read(ctx: Context): Promise<FoundSession | undefined> {
      const cookie = verified(ctx);
      if (cookie === undefined) return undefined;
      let stored: unknown;
      if (store) {
        try {
          stored = await withDeadline(
            async () => store.get(cookie, undefined, { rolling: false }),
            timeoutMs,
            () => new Error('timeout'),
          );
        } catch {
          return undefined; // the old store is down or slow: no old session, never a crash
        }
      } else {
        // koa-session's own decode, with our parsing rules (no `__proto__`, plain objects only).
        stored = Buffer.from(cookie, 'base64').toString('utf8');
      }
      const session = oldData(stored);
      if (!session) return undefined;
      const expiresAt = expiryOf(session._expire);
      if (expiresAt !== undefined && expiresAt < Date.now()) return undefined;
      const data = map ? map(without(session, BOOKKEEPING), ctx) : without(session, BOOKKEEPING);
      if (!data) return undefined;
      return {
        source: name,
        id: `${store ? 'external' : 'cookie'}:${cookie}`,
        data,
        ...(expiresAt === undefined ? {} : { expiresAt }),
        retire: async () => {
          if (store) await store.destroy(cookie, { ctx });
        },
        clearCookies: () => clearCookies(ctx),
      };
    },
  };
}
