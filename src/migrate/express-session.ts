/**
 * Reader of express-session sessions: cookie `connect.sid` =
 * `s:<sid>.<HMAC-SHA256(sid, secret) in base64 without '='>` (cookie-signature;
 * any of the secrets verifies, as express-session does; unsigned values are
 * ignored, as express-session ignores them), URL-encoded; the session is
 * `store.get(sid)` of the connect store (connect-redis, connect-mongo, …), an
 * object with a `cookie` field whose `expires` is honoured.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import { withDeadline } from '../util/deadline.js';
import type { ConnectStoreLike } from '../adapters/connect-store.js';
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

/** Options of {@link expressSession}: the old `session({ store, secret, name })` values. */
export interface ExpressSessionSourceOptions extends MigrationSourceOptions {
  /** The old connect store (connect-redis, connect-mongo, …). */
  store: ConnectStoreLike;
  /** The old `secret` (or list of secrets: any verifies). */
  secret: string | readonly string[];
  /** The old `name` option (cookie name). @default 'connect.sid' */
  name?: string;
  /** The old `cookie.path` (to expire its cookie). @default '/' */
  path?: string;
}

/** The sid of an express-session cookie value (`s:` + cookie-signature), or `undefined` when no secret verifies it. */
export function unsignExpressCookie(value: string, secrets: readonly string[]): string | undefined {
  if (!value.startsWith('s:')) return undefined;
  const signed = value.slice(2);
  const dot = signed.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const sid = signed.slice(0, dot);
  const given = Buffer.from(signed);
  for (const secret of secrets) {
    const expected = Buffer.from(`${sid}.${createHmac('sha256', secret).update(sid).digest('base64').replace(/=+$/, '')}`);
    if (expected.length === given.length && timingSafeEqual(expected, given)) return sid;
  }
  return undefined;
}

/**
 * Read express-session sessions from its connect store.
 * @example
 * session({ migrateFrom: expressSession({ store: new ConnectRedis({ client }), secret: process.env.OLD_SECRET! }) })
 */
export function expressSession(options: ExpressSessionSourceOptions): MigrationSource {
  const source = 'express-session';
  const { retire, map, timeoutMs, until, user } = sharedOptions(source, options ?? ({} as ExpressSessionSourceOptions));
  const { store, secret, name = 'connect.sid', path = '/' } = options ?? ({} as ExpressSessionSourceOptions);
  if (typeof store?.get !== 'function' || typeof store?.destroy !== 'function') {
    throw new TypeError(
      `koa-locked-session: Expected ${source}({ store }) to be the connect store express-session used (with get and destroy), e.g. new RedisStore({ client }) from connect-redis`,
    );
  }
  const secrets = typeof secret === 'string' ? [secret] : Array.isArray(secret) ? [...secret] : [];
  if (secrets.length === 0 || !secrets.every((s) => typeof s === 'string' && s !== '')) {
    throw new TypeError(
      `koa-locked-session: Expected ${source}({ secret }) to be the old express-session secret (a string or a list of strings)`,
    );
  }

  /** A node-style call of the connect store, bounded by `timeoutMs`. */
  const call = <T>(invoke: (cb: (error?: unknown, result?: T) => void) => unknown) =>
    withDeadline(
      () =>
        new Promise<T | undefined>((resolve, reject) => {
          try {
            invoke((error, result) => (error ? reject(error) : resolve(result)));
          } catch (error) {
            reject(error);
          }
        }),
      timeoutMs,
      () => new Error(`${source}: the old store did not answer within ${timeoutMs} ms`),
    );

  const identify = (ctx: Context): string | undefined => {
    const value = rawCookie(ctx, name);
    return value === undefined ? undefined : unsignExpressCookie(value, secrets);
  };
  const clearCookies = (ctx: Context) => expireCookie(ctx, name, { path });

  return {
    name: source,
    retire,
    until,
    user,
    carries: (ctx: Context) => rawCookie(ctx, name) !== undefined,
    identify,
    clearCookies,
    async read(ctx: Context): Promise<FoundSession | undefined> {
      const sid = identify(ctx);
      if (!sid) return undefined;
      let stored: unknown;
      try {
        stored = await call<unknown>((cb) => store.get(sid, cb));
      } catch {
        return undefined;
      }
      const session = oldData(stored);
      if (!session) return undefined;
      const expiresAt = expiryOf(plainObject(session.cookie)?.expires);
      if (expiresAt !== undefined && !(expiresAt > Date.now())) return undefined;
      const data = map ? map(without(session, ['cookie']), ctx) : without(session, ['cookie']);
      if (!data) return undefined;
      return {
        source,
        id: sid,
        data,
        ...(expiresAt === undefined ? {} : { expiresAt }),
        retire: async () => {
          await call((cb) => store.destroy(sid, cb));
        },
        clearCookies: () => clearCookies(ctx),
      };
    },
  };
}
