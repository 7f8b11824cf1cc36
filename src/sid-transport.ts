import type { Context } from 'koa';
import type { InvalidReason } from './events.js';
import type { ResolvedCookieOptions } from './options.js';
import { isValidSid } from './sid.js';
import { keygripMac, sha256Mac, Signer } from './signer.js';

/** `app.keys` as a list, or undefined when it is a Keygrip instance (then the cookies library signs). */
function keyList(ctx: Context): ReadonlyArray<string | Buffer> | undefined {
  const keys = ctx.app.keys as unknown;
  return Array.isArray(keys) ? (keys as Array<string | Buffer>) : undefined;
}

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
  const sigName = `${cookie.name}.sig`;
  // Same signatures as Koa's own signed cookies (Keygrip), computed by a caching signer.
  const signer = new Signer(keygripMac);
  const attributes = (ctx: Context) => ({
    signed: false,
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
      if (cookie.signed) {
        const keys = keyList(ctx);
        if (keys) {
          const sig = ctx.cookies.get(sigName, { signed: false });
          const index = sig === undefined ? -1 : signer.verify(keys, `${cookie.name}=${raw}`, sig);
          if (index < 0) return { invalid: 'bad-signature' };
          // Signed with an older key: re-sign with the newest, as Koa does.
          if (index > 0) ctx.cookies.set(sigName, signer.sign(keys, `${cookie.name}=${raw}`), attributes(ctx));
        } else if (ctx.cookies.get(cookie.name, { signed: true }) === undefined) {
          return { invalid: 'bad-signature' };
        }
      }
      return isValidSid(raw) ? { sid: raw } : { invalid: 'bad-format' };
    },
    write(ctx, sid, maxAge) {
      // A browser-session cookie has neither Max-Age nor Expires.
      const options = { ...attributes(ctx), ...(maxAge === 'session' ? {} : { maxAge }) };
      if (!cookie.signed) {
        ctx.cookies.set(cookie.name, sid, options);
        return;
      }
      const keys = keyList(ctx);
      if (!keys) {
        ctx.cookies.set(cookie.name, sid, { ...options, signed: true });
        return;
      }
      ctx.cookies.set(cookie.name, sid, options);
      ctx.cookies.set(sigName, signer.sign(keys, `${cookie.name}=${sid}`), options);
    },
    clear(ctx) {
      ctx.cookies.set(cookie.name, null, attributes(ctx));
      if (cookie.signed) ctx.cookies.set(sigName, null, attributes(ctx));
    },
  };
}

/**
 * The sid in a request header, `<sid>.<HMAC-SHA256(sid) base64url>` signed with
 * `app.keys` (first signs, all verify), returned in the same response header.
 * An empty response header means "your session is gone".
 */
export function headerTransport(header: string): SidTransport {
  const signer = new Signer(sha256Mac);
  const keysOf = (ctx: Context): ReadonlyArray<string | Buffer> => keyList(ctx) ?? [];
  return {
    vary: header,
    read(ctx) {
      const value = ctx.get(header);
      if (value === '') return {};
      const dot = value.lastIndexOf('.');
      const sid = value.slice(0, dot);
      const mac = value.slice(dot + 1);
      if (dot < 0 || !isValidSid(sid) || !/^[A-Za-z0-9_-]{43}$/.test(mac)) return { invalid: 'bad-format' };
      return signer.verify(keysOf(ctx), `${header}=${sid}`, mac) >= 0 ? { sid } : { invalid: 'bad-signature' };
    },
    write(ctx, sid) {
      ctx.set(header, `${sid}.${signer.sign(keysOf(ctx), `${header}=${sid}`)}`);
    },
    clear(ctx) {
      ctx.set(header, '');
    },
  };
}
