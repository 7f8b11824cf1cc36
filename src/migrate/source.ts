/**
 * What a migration source is: a reader of the session a request carries from
 * the library being replaced (koa-session, koa-generic-session,
 * express-session). The middleware asks the sources only when a request has no
 * valid session of ours; see move.ts for what happens with what they find.
 */
import type { Context } from 'koa';
import { deserialize, jsonSerializer } from '../core/serialize.js';

/** A session of the old library, found in a request and verified (signature, expiry). */
export interface FoundSession {
  /** Which source found it (`koa-session`, `koa-generic-session`, `express-session`). */
  readonly source: string;
  /**
   * The old session's identity (its sid, external key, or for koa-session's
   * cookie mode the signed payload itself): two requests carrying the same old
   * session have the same `id`, which is what makes the move happen once.
   */
  readonly id: string;
  /** The session data, without the old library's bookkeeping (`cookie`, `_expire`, `_maxAge`), parsed with our rules (plain objects, no `__proto__`). */
  readonly data: Record<string, unknown>;
  /**
   * When the old session stops being valid by its own rules (ms since the
   * epoch: koa-session's `_expire`, express-session's `cookie.expires`);
   * `undefined` when it has none (a browser-session cookie). The "already
   * moved" marker lives until then (or until the source's `until`).
   */
  readonly expiresAt?: number;
  /** Delete the old session where it is stored (a no-op for cookie-only sessions). Called once, by the request that moved it. */
  retire(): Promise<void>;
  /** Expire the old library's cookie(s) on this response (every request that found it). */
  clearCookies(): void;
}

/** A reader of one old library's sessions; pass one (or a list) as `migrateFrom`. */
export interface MigrationSource {
  /** `koa-session`, `koa-generic-session` or `express-session`. */
  readonly name: string;
  /** Whether the old session is deleted once moved (`retire` option). */
  readonly retire: boolean;
  /** The source's `until` (ms since the epoch): no old session is accepted from then on. */
  readonly until?: number | undefined;
  /**
   * The source's `user` option: which value of the (mapped) old data is the
   * logged-in user. `session({ migrateFrom })` keeps it in `auth.userKey` of the
   * moved session, so the user index lists the session from the move on.
   */
  readonly user?: ((data: Record<string, unknown>) => unknown) | undefined;
  /**
   * The verified identity of the old session this request carries (the same
   * value as {@link FoundSession.id}), from the cookie alone: signature
   * checked, no I/O. With it the move decides under its lock, before reading
   * the old session, so a request that comes after the move retired the old
   * record still joins the moved session. Sources without it are read first.
   */
  identify?(ctx: Context): string | undefined;
  /** Expire this library's cookie(s) on the response (no I/O; harmless when absent). */
  clearCookies?(ctx: Context): void;
  /**
   * Whether the request carries this library's cookie at all (unverified, no
   * I/O). The middleware asks it first, so that a request without any old
   * cookie costs no store call and no promise. Leave it out to be asked
   * `read` on every request without a session of ours.
   */
  carries?(ctx: Context): boolean;
  /** The old session this request carries, verified; `undefined` when none (or invalid: never throws on client input). */
  read(ctx: Context): Promise<FoundSession | undefined>;
}

/** Options every source shares. */
export interface MigrationSourceOptions {
  /**
   * Delete the old session (its store record) after moving it, and expire its
   * cookie. `false` keeps both, e.g. while the old app still serves some
   * traffic; the move still happens only once per old session (see move.ts).
   * @default true
   */
  retire?: boolean;
  /**
   * Turn the old data into ours, e.g. passport's `{ passport: { user } }` into
   * your `userKey`. Return `undefined` to refuse the session (start fresh).
   * @default the data as is
   */
  map?: (data: Record<string, unknown>, ctx: Context) => Record<string, unknown> | undefined;
  /**
   * Which value of the old data is the logged-in user, e.g. `passportUser`
   * (passport's `passport.user`, what `serializeUser` returned). The moved
   * session then holds it in session()'s `auth.userKey` field, written in the
   * same save that creates the session, under the move's lock: the user index
   * (`sessionsOf`, `revokeAll`), `currentUser()` and `requireLogin()` know the
   * user from the move on, on every route. It reads the data after `map`;
   * the `auth.userKey` field is derived (set to what it returns, removed when it
   * returns `undefined`), the rule `plainSession({ user })` applies at the end
   * of every request, so pass both the same function.
   * @default none (the data is moved as is; its `auth.userKey` field, if any, is the user)
   */
  user?: (data: Record<string, unknown>) => unknown;
  /**
   * The end of the migration window: from this date on no old session is
   * moved. Required for old sessions without an expiry of their own
   * (koa-session `maxAge: 'session'`, express-session without `cookie.maxAge`,
   * every koa-generic-session session): without `until` they are not moved,
   * because nothing would bound how long their "already moved" marker must be
   * kept. Pass a date past the longest your old sessions can live.
   * @default none (only old sessions with their own expiry are moved)
   */
  until?: Date | number;
  /**
   * Longest wait for one call to the old store (ms); a store that never
   * answers means "no old session" rather than a hung request.
   * @default 2000
   */
  timeoutMs?: number;
}

/** The value of cookie `name` in the request, URL-decoded as browsers and `cookie` do; `undefined` when absent or undecodable. */
export function rawCookie(ctx: Context, name: string): string | undefined {
  const header = ctx.get('Cookie');
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    try {
      return decodeURIComponent(value);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Expire cookie `name` (and its `.sig` when signed) on this response, on `path`. */
export function expireCookie(ctx: Context, name: string, options: { signed?: boolean; path?: string } = {}): void {
  const { path = '/', signed = false } = options;
  // Both unsigned: expiring needs no keys (an app may have dropped the old ones).
  ctx.cookies.set(name, null, { path, signed: false, overwrite: true });
  if (signed) ctx.cookies.set(`${name}.sig`, null, { path, signed: false, overwrite: true });
}

/** `value` when it is a plain object (what a session is), else `undefined`. */
export function plainObject(value: unknown): Record<string, unknown> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return value as Record<string, unknown>;
}

/**
 * Old session data under our own parsing rules before any user code (`map`)
 * sees it: a JSON round trip through our serializer, so every level is a plain
 * object and no `__proto__` key survives (the peers' own `JSON.parse` keeps
 * one as an own property, which a copy turns into a prototype). `undefined`
 * for anything that is not a plain JSON object.
 */
export function oldData(value: unknown): Record<string, unknown> | undefined {
  if (typeof value === 'string') return deserialize(jsonSerializer, value);
  if (!plainObject(value)) return undefined;
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    return undefined; // circular, BigInt: not a session we could store
  }
  return json === undefined ? undefined : deserialize(jsonSerializer, json);
}

/** A date of an old session (a number of ms, an ISO string or a Date) as ms since the epoch; `undefined` when absent or not a date. */
export function expiryOf(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

/** A copy of `data` without the keys in `drop`. */
export function without(data: Record<string, unknown>, drop: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) if (!drop.includes(key)) out[key] = value;
  return out;
}

/** Validate the shared options (programmer input: fail fast, naming the fix). */
export function sharedOptions(
  source: string,
  options: MigrationSourceOptions,
): {
  retire: boolean;
  timeoutMs: number;
  map: MigrationSourceOptions['map'] | undefined;
  until: number | undefined;
  user: MigrationSourceOptions['user'] | undefined;
} {
  const { retire = true, map, timeoutMs = 2000, until, user } = options;
  const untilMs = until instanceof Date ? until.getTime() : until;
  if (untilMs !== undefined && (typeof untilMs !== 'number' || !Number.isFinite(untilMs))) {
    throw new TypeError(
      `koa-locked-session: Expected ${source}({ until }) to be a Date (or ms since the epoch) ending the migration window, got \`${String(until)}\`; e.g. until: new Date('2027-01-31')`,
    );
  }
  if (typeof retire !== 'boolean')
    throw new TypeError(`koa-locked-session: Expected ${source}({ retire }) to be a boolean, got \`${String(retire)}\``);
  if (map !== undefined && typeof map !== 'function')
    throw new TypeError(`koa-locked-session: Expected ${source}({ map }) to be a function (data, ctx) => data`);
  if (user !== undefined && typeof user !== 'function') {
    throw new TypeError(
      `koa-locked-session: Expected ${source}({ user }) to be a function (data) => user, got \`${String(user)}\`; for koa-passport pass user: passportUser (imported from koa-locked-session)`,
    );
  }
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
    throw new TypeError(
      `koa-locked-session: Expected ${source}({ timeoutMs }) to be a positive number of ms, got \`${String(timeoutMs)}\``,
    );
  }
  return { retire, map, timeoutMs, until: untilMs, user };
}
