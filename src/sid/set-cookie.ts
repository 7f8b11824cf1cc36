/**
 * The sid cookie's `Set-Cookie` headers, serialized here rather than by two
 * `ctx.cookies.set` calls (the `cookies` module builds a Cookie object per
 * call, validates it again, rescans the response's Set-Cookie list and sets
 * the header twice). The bytes are the very ones `cookies` 0.9 writes
 * (`name=value; path=…; expires=…; domain=…; samesite=…; secure; httponly;
 * partitioned`), so browsers, koa-session and Koa's own `ctx.cookies.get` read
 * them unchanged. What depends only on the options (the attributes after
 * `expires`) is built once, and the `expires` date once per second per
 * lifetime: a save costs two string concatenations.
 *
 * Only for values this library already checked (a valid sid, a base64url
 * signature) and attributes `resolveCookieAttributes` checked; the clearing
 * write stays on `ctx.cookies` (rare).
 */
import type { Context } from 'koa';
import type { CookieAttributes } from './cookie-attributes.js';

/** One cookie lifetime's `expires` text, valid for one wall-clock second. */
interface ExpiresCache {
  maxAge: number;
  second: number;
  text: string;
}

export class SetCookieWriter {
  /** `; path=/` (always first after the value, as `cookies` writes it). */
  readonly #path: string;
  /** The attributes after `expires`, for a non-Secure and a Secure response. */
  readonly #tail: readonly [string, string];
  #expires: ExpiresCache = { maxAge: -1, second: -1, text: '' };

  constructor(private readonly attributes: Readonly<CookieAttributes>) {
    const c = attributes;
    this.#path = c.path ? `; path=${c.path}` : '';
    const tail = (secure: boolean) =>
      (c.domain ? `; domain=${c.domain}` : '') +
      (c.sameSite ? `; samesite=${c.sameSite}` : '') +
      (secure ? '; secure' : '') +
      (c.httpOnly ? '; httponly' : '') +
      (c.partitioned ? '; partitioned' : '');
    this.#tail = [tail(false), tail(true)];
  }

  /**
   * Append `name=value` cookies (replacing earlier Set-Cookie headers of the same
   * names, as `overwrite: true` does), with `maxAge` ms or none for a
   * browser-session cookie. Secure per the options (`'auto'`: `ctx.secure`);
   * a Secure cookie on a plain-HTTP request throws exactly as `ctx.cookies.set` does.
   */
  write(ctx: Context, cookies: readonly (readonly [name: string, value: string])[], maxAge: number | 'session'): void {
    const c = this.attributes;
    const secure = c.secure === 'auto' ? ctx.secure : c.secure;
    if (secure && !ctx.secure) throw new Error('Cannot send secure cookie over unencrypted connection');
    // `cookies` writes no expires for maxAge 0 (falsy), like a browser-session cookie.
    const attrs = `${this.#path}${maxAge === 'session' || !maxAge ? '' : `; expires=${this.#expiresText(maxAge)}`}${this.#tail[secure ? 1 : 0]}`;
    const res = ctx.res;
    const existing = res.getHeader('Set-Cookie');
    const headers: string[] =
      existing === undefined
        ? []
        : typeof existing === 'string'
          ? [existing]
          : Array.isArray(existing)
            ? [...existing]
            : [String(existing)];
    for (const [name] of cookies) {
      const prefix = `${name}=`;
      for (let i = headers.length - 1; i >= 0; i--) if (headers[i]!.startsWith(prefix)) headers.splice(i, 1);
    }
    for (const [name, value] of cookies) headers.push(`${name}=${value}${attrs}`);
    res.setHeader('Set-Cookie', headers);
  }

  /** `new Date(Date.now() + maxAge).toUTCString()`, computed once per second per lifetime. */
  #expiresText(maxAge: number): string {
    const at = Date.now() + maxAge;
    const second = Math.floor(at / 1000);
    const cached = this.#expires;
    if (cached.maxAge === maxAge && cached.second === second) return cached.text;
    const text = new Date(at).toUTCString();
    this.#expires = { maxAge, second, text };
    return text;
  }
}
