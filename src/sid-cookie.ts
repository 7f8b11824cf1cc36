import type { Context } from 'koa';
import type { InvalidReason } from './events.js';
import type { ResolvedCookieOptions } from './options.js';
import { isValidSid } from './sid.js';

/** What the request brought: a verified sid, nothing, or something refused (with the reason). */
export type SidRead = { sid: string; invalid?: undefined } | { sid?: undefined; invalid?: InvalidReason };

/**
 * Read the sid cookie through Koa's `ctx.cookies` (Keygrip-signed with
 * `app.keys`). An unsigned, tampered or malformed value is refused before any
 * store could see it.
 */
export function readSidCookie(ctx: Context, cookie: ResolvedCookieOptions): SidRead {
  const raw = ctx.cookies.get(cookie.name, { signed: false });
  if (raw === undefined || raw === '') return {};
  if (cookie.signed && ctx.cookies.get(cookie.name, { signed: true }) === undefined) return { invalid: 'bad-signature' };
  return isValidSid(raw) ? { sid: raw } : { invalid: 'bad-format' };
}

/** Set (or, with `sid === null`, clear) the sid cookie. */
export function writeSidCookie(ctx: Context, cookie: ResolvedCookieOptions, sid: string | null, maxAge: number | 'session'): void {
  ctx.cookies.set(cookie.name, sid, {
    signed: cookie.signed,
    httpOnly: cookie.httpOnly,
    sameSite: cookie.sameSite,
    path: cookie.path,
    ...(cookie.domain === undefined ? {} : { domain: cookie.domain }),
    secure: cookie.secure === 'auto' ? ctx.secure : cookie.secure,
    partitioned: cookie.partitioned,
    // A browser-session cookie has neither Max-Age nor Expires.
    ...(sid === null || maxAge === 'session' ? {} : { maxAge }),
    overwrite: true,
  });
}
