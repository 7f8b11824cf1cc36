/**
 * The attributes of a cookie this library writes — the sid cookie
 * (src/sid/transport.ts) and a CookieStore's sealed cookie
 * (src/cookie/bound.ts) — checked in one place with the one message
 * format (src/util/validate.ts), and turned into Koa's `ctx.cookies.set` options
 * in one place.
 */
import type { Context } from 'koa';
import type { Validator } from '../util/validate.js';

/** RFC 6265 cookie-name token characters. */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$/;
const DOMAIN = /^\.?[A-Za-z0-9.-]+$/;
/** A path Koa's cookies module accepts (no `;`, no controls). */
const PATH = /^\/[\x21-\x3A\x3C-\x7E]*$/;

/** The attributes of a cookie, with defaults applied. */
export interface CookieAttributes {
  /** The cookie's name. */
  name: string;
  /** `Domain`, or `undefined` for a host-only cookie. */
  domain: string | undefined;
  /** `Path`. */
  path: string;
  /** `HttpOnly`: hidden from page scripts. */
  httpOnly: boolean;
  /** `SameSite`, or `false` to send none. */
  sameSite: 'strict' | 'lax' | 'none' | false;
  /** `Secure`; `'auto'`: when the request came over HTTPS. */
  secure: boolean | 'auto';
  /** `Partitioned` (CHIPS). */
  partitioned: boolean;
}

/** Defaults of DESIGN §6 (and OWASP): HttpOnly, SameSite=Lax, Secure on HTTPS. */
export const COOKIE_DEFAULTS = Object.freeze({
  /** Sent for every path of the site. */
  path: '/',
  /** Hidden from page scripts. */
  httpOnly: true,
  /** `Secure` when the request came over HTTPS (`ctx.secure`, which honours `app.proxy`). */
  secure: 'auto' as const,
  /** Sent on top-level navigations from other sites, not on cross-site subrequests. */
  sameSite: 'lax' as const,
  /** No CHIPS partitioning unless asked. */
  partitioned: false,
});

/** What the caller was given (unchecked: JS callers pass anything). */
export interface CookieAttributesInput {
  name?: unknown;
  domain?: unknown;
  path?: unknown;
  httpOnly?: unknown;
  sameSite?: unknown;
  secure?: unknown;
  partitioned?: unknown;
}

/**
 * Check the attributes of `input` (options named `cookie.<attribute>` in
 * messages) and apply {@link COOKIE_DEFAULTS}; `name` defaults to `defaultName`. Throws the Validator's `TypeError` naming the option.
 */
export function resolveCookieAttributes(check: Validator, input: CookieAttributesInput, defaultName: string): CookieAttributes {
  const name = check.string('cookie.name', input.name, defaultName, COOKIE_NAME, "a cookie name (letters, digits and !#$%&'*+-.^_`|~)");
  const domain = input.domain;
  if (domain !== undefined && (typeof domain !== 'string' || !DOMAIN.test(domain))) check.fail('cookie.domain', 'a host name', domain);
  const d = COOKIE_DEFAULTS;
  const path = check.string('cookie.path', input.path, d.path, PATH, "a path starting with '/'");
  const httpOnly = check.bool('cookie.httpOnly', input.httpOnly, d.httpOnly);
  const secure = check.oneOf<CookieAttributes['secure']>('cookie.secure', input.secure, [true, false, 'auto'], d.secure);
  const sameSite = check.oneOf<CookieAttributes['sameSite']>(
    'cookie.sameSite',
    input.sameSite,
    ['strict', 'lax', 'none', false],
    d.sameSite,
  );
  const partitioned = check.bool('cookie.partitioned', input.partitioned, d.partitioned);
  if (secure === false && (sameSite === 'none' || partitioned)) {
    check.fail(
      'cookie.secure',
      `true or 'auto' with ${partitioned ? 'partitioned' : "sameSite: 'none'"}`,
      secure,
      'Browsers drop such cookies unless they are Secure',
    );
  }
  return { name, domain, path, httpOnly, sameSite, secure, partitioned };
}

/** Options of Koa's `ctx.cookies.set` (the `cookies` module). */
export interface CookieSetAttributes {
  signed: false;
  httpOnly: boolean;
  sameSite: 'strict' | 'lax' | 'none' | false;
  path: string;
  domain?: string;
  secure: boolean;
  partitioned: boolean;
  overwrite: true;
  maxAge?: number;
}

/**
 * `ctx.cookies.set` options for a cookie with attributes `c`: never Koa-signed
 * (the sid transport signs itself, a seal is its own signature), replacing any
 * earlier Set-Cookie of the same name in the response, Secure per request for
 * `secure: 'auto'`. `maxAge` ms, or `'session'` (and for a clearing write) none:
 * a browser-session cookie has neither Max-Age nor Expires.
 */
export function cookieSetAttributes(c: Readonly<CookieAttributes>, ctx: Context, maxAge: number | 'session'): CookieSetAttributes {
  const options: CookieSetAttributes = {
    signed: false,
    httpOnly: c.httpOnly,
    sameSite: c.sameSite,
    path: c.path,
    secure: c.secure === 'auto' ? ctx.secure : c.secure,
    partitioned: c.partitioned,
    overwrite: true,
  };
  if (c.domain !== undefined) options.domain = c.domain;
  if (maxAge !== 'session') options.maxAge = maxAge;
  return options;
}
