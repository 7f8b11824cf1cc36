import type { Context } from 'koa';
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { InvalidReason } from './events.js';
import type { ResolvedCookieOptions } from './options.js';
import { isValidSid } from './sid.js';

/** What the request brought: a verified sid, nothing, or something refused (with the reason). */
export type SidRead = { sid: string; invalid?: undefined } | { sid?: undefined; invalid?: InvalidReason };

/** How the sid travels between client and server: the cookie (default) or a header (APIs). */
export interface SidTransport {
  /** Headers a response that used the session varies on. */
  readonly vary: string;
  read(ctx: Context): SidRead;
  /** Send `sid` to the client (`maxAge` for a cookie: ms or a browser-session cookie). */
  write(ctx: Context, sid: string, maxAge: number | 'session'): void;
  /** Tell the client its sid is dead. */
  clear(ctx: Context): void;
}

/**
 * The sid cookie through Koa's `ctx.cookies` (Keygrip-signed with `app.keys`).
 * An unsigned, tampered or malformed value is refused before any store sees it.
 */
export function cookieTransport(cookie: ResolvedCookieOptions): SidTransport {
  const attributes = (ctx: Context) => ({
    signed: cookie.signed,
    httpOnly: cookie.httpOnly,
    sameSite: cookie.sameSite,
    path: cookie.path,
    ...(cookie.domain === undefined ? {} : { domain: cookie.domain }),
    secure: cookie.secure === 'auto' ? ctx.secure : cookie.secure,
    partitioned: cookie.partitioned,
    overwrite: true,
  });
  return {
    vary: 'Cookie',
    read(ctx) {
      const raw = ctx.cookies.get(cookie.name, { signed: false });
      if (raw === undefined || raw === '') return {};
      if (cookie.signed && ctx.cookies.get(cookie.name, { signed: true }) === undefined) return { invalid: 'bad-signature' };
      return isValidSid(raw) ? { sid: raw } : { invalid: 'bad-format' };
    },
    write(ctx, sid, maxAge) {
      // A browser-session cookie has neither Max-Age nor Expires.
      ctx.cookies.set(cookie.name, sid, { ...attributes(ctx), ...(maxAge === 'session' ? {} : { maxAge }) });
    },
    clear(ctx) {
      ctx.cookies.set(cookie.name, null, attributes(ctx));
    },
  };
}

/**
 * The sid in a request header, `<sid>.<HMAC-SHA256(sid) base64url>` signed with
 * `app.keys` (first signs, all verify), returned in the same response header.
 * An empty response header means "your session is gone".
 */
export function headerTransport(header: string): SidTransport {
  const sign = (key: string | Buffer, sid: string) => createHmac('sha256', key).update(`${header}=${sid}`).digest();
  const keysOf = (ctx: Context): Array<string | Buffer> => {
    const keys = ctx.app.keys as unknown;
    return Array.isArray(keys) ? keys : [];
  };
  return {
    vary: header,
    read(ctx) {
      const value = ctx.get(header);
      if (value === '') return {};
      const dot = value.lastIndexOf('.');
      const sid = value.slice(0, dot);
      const macText = value.slice(dot + 1);
      if (dot < 0 || !isValidSid(sid) || !/^[A-Za-z0-9_-]{43}$/.test(macText)) return { invalid: 'bad-format' };
      const mac = Buffer.from(macText, 'base64url');
      const ok = mac.length === 32 && keysOf(ctx).some((key) => timingSafeEqual(sign(key, sid), mac));
      return ok ? { sid } : { invalid: 'bad-signature' };
    },
    write(ctx, sid) {
      const [key] = keysOf(ctx);
      ctx.set(header, `${sid}.${sign(key!, sid).toString('base64url')}`);
    },
    clear(ctx) {
      ctx.set(header, '');
    },
  };
}
