/**
 * What a migration source is: a reader of the session a request carries from
 * the library being replaced (koa-session, koa-generic-session,
 * express-session). The middleware asks the sources only when a request has no
 * valid session of ours; see move.ts for what happens with what they find.
 */
import type { Context } from 'koa';

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
  /** The session data, without the old library's bookkeeping (`cookie`, `_expire`, `_maxAge`). */
  readonly data: Record<string, unknown>;
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

/** A copy of `data` without the keys in `drop`. */
export function without(data: Record<string, unknown>, drop: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) if (!drop.includes(key)) out[key] = value;
  return out;
}

/** Validate the shared options (programmer input: fail fast, naming the fix). */
export function sharedOptions(source: string, options: MigrationSourceOptions): { retire: boolean; timeoutMs: number; map: MigrationSourceOptions['map'] | undefined } {
  const { retire = true, map, timeoutMs = 2000 } = options;
  if (typeof retire !== 'boolean') throw new TypeError(`koa-locked-session: Expected ${source}({ retire }) to be a boolean, got \`${String(retire)}\``);
  if (map !== undefined && typeof map !== 'function') throw new TypeError(`koa-locked-session: Expected ${source}({ map }) to be a function (data, ctx) => data`);
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
    throw new TypeError(`koa-locked-session: Expected ${source}({ timeoutMs }) to be a positive number of ms, got \`${String(timeoutMs)}\``);
  }
  return { retire, map, timeoutMs };
}
