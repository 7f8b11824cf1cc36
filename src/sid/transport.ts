import type { Context } from 'koa';
import { cookieSetAttributes } from './cookie-attributes.js';
import { SessionError } from '../errors.js';
import type { InvalidReason } from '../events.js';
import type { ResolvedCookieOptions } from '../options.js';
import { SetCookieWriter } from './set-cookie.js';
import { isValidSid } from './sid.js';
import { keygripMac, sha256Mac, Signer } from './signer.js';

/** A Keygrip instance (Koa accepts one as `app.keys`): signs with its newest key, finds the key of a digest. */
interface KeygripLike {
  sign(data: string): string;
  index(data: string, digest: string): number;
}

/** `app.keys` as this library can use it: a list of secrets (first signs, all verify) or a Keygrip instance. */
export type AppKeys = { list: ReadonlyArray<string | Buffer>; grip?: undefined } | { grip: KeygripLike; list?: undefined };

const isKeygrip = (value: unknown): value is KeygripLike =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as KeygripLike).sign === 'function' &&
  typeof (value as KeygripLike).index === 'function';

/**
 * `app.keys`, checked: a non-empty array of non-empty strings or Buffers, or a
 * Keygrip instance. Anything else is a configuration mistake and fails the
 * request with a message that names the fix, the same for the cookie and the
 * header transport (an empty array used to pass this check and fail every new
 * session with a 500 from deep inside the signer).
 * @param fix the sentence naming how to set keys (or avoid them) for this transport.
 */
export function appKeys(ctx: Context, fix: string): AppKeys {
  const keys = ctx.app.keys as unknown;
  if (isKeygrip(keys)) return { grip: keys };
  if (keys === undefined || keys === null) throw keysError('app.keys is not set', fix);
  if (!Array.isArray(keys)) throw keysError('app.keys is neither an array of secrets nor a Keygrip instance', fix);
  if (keys.length === 0) throw keysError('app.keys is an empty array', fix);
  // A loop, not findIndex: this runs on every request, and a closure per request is garbage.
  for (let bad = 0; bad < keys.length; bad++) {
    const k: unknown = keys[bad];
    if (!((typeof k === 'string' || Buffer.isBuffer(k)) && k.length > 0))
      throw keysError(`app.keys[${bad}] is not a non-empty string or Buffer`, fix);
  }
  return { list: keys as Array<string | Buffer> };
}

function keysError(what: string, fix: string): SessionError {
  return new SessionError(`koa-locked-session: ${what}, and the sid is signed with it. ${fix}`);
}

/** The fix named by key errors. */
export const KEYS_FIX = {
  cookie:
    "Set app.keys = ['<a long random secret>'] (newest first; or a Keygrip instance) before the first request, or pass cookie: { signed: false }",
  header: "Set app.keys = ['<a long random secret>'] (newest first; or a Keygrip instance) before the first request",
} as const;

/** What the request brought: a verified sid, nothing, or something refused (with the reason). */
/** `stale`: the sid verified with an older key, so the next cookie sent re-signs it with the newest. */
export type SidRead =
  | { sid: string; invalid?: undefined; stale?: boolean }
  | { sid?: undefined; invalid?: InvalidReason; stale?: undefined };

/** How the sid travels between client and server: the cookie (default) or a header (APIs). */
export interface SidTransport {
  /** Headers a response that used the session varies on. */
  readonly vary: string;
  read(ctx: Context): SidRead;
  /** Send `sid` to the client (`maxAge` for a cookie: ms or a browser-session cookie). */
  write(ctx: Context, sid: string, maxAge: number | 'session'): void;
  /** Tell the client its sid is dead. */
  clear(ctx: Context): void;
  /** @internal The signature cache, for tests (its size must never grow with junk input). */
  readonly signer?: Signer;
}

/**
 * The sid cookie through Koa's `ctx.cookies` (Keygrip-signed with `app.keys`).
 * An unsigned, tampered or malformed value is refused before any store sees it.
 */
export function cookieTransport(cookie: ResolvedCookieOptions): SidTransport {
  const sigName = `${cookie.name}.sig`;
  // Same signatures as Koa's own signed cookies (Keygrip), computed by a caching signer.
  const signer = new Signer(keygripMac);
  // The Set-Cookie bytes of ctx.cookies.set, serialized once per set of attributes (see set-cookie.ts).
  const setCookie = new SetCookieWriter(cookie);
  return {
    signer,
    vary: 'Cookie',
    read(ctx) {
      const raw = ctx.cookies.get(cookie.name, { signed: false });
      if (raw === undefined || raw === '') return {};
      // The format first: a malformed sid is reported as such (not as a bad signature), and is never signed-checked.
      if (!isValidSid(raw)) return { invalid: 'bad-format' };
      if (cookie.signed) {
        // A sid signed with an older key is accepted and NOT re-signed here (Koa's cookies would
        // re-sign `.sig` without Max-Age, turning a "remember me" cookie into a browser-session
        // one): the next save or touch sends both cookies, signed with the newest key, with the
        // session's own expiry. Keep an old key for one cookie lifetime after rotating.
        const keys = appKeys(ctx, KEYS_FIX.cookie);
        const sig = ctx.cookies.get(sigName, { signed: false });
        const data = `${cookie.name}=${raw}`;
        const index = sig === undefined ? -1 : keys.grip ? keys.grip.index(data, sig) : signer.verify(keys.list, data, sig);
        if (index < 0) return { invalid: 'bad-signature' };
        if (index > 0) return { sid: raw, stale: true };
      }
      return { sid: raw };
    },
    write(ctx, sid, maxAge) {
      if (!cookie.signed) {
        setCookie.write(ctx, [[cookie.name, sid]], maxAge);
        return;
      }
      const keys = appKeys(ctx, KEYS_FIX.cookie);
      if (keys.grip) {
        ctx.cookies.set(cookie.name, sid, { ...cookieSetAttributes(cookie, ctx, maxAge), signed: true });
        return;
      }
      setCookie.write(
        ctx,
        [
          [cookie.name, sid],
          [sigName, signer.sign(keys.list, `${cookie.name}=${sid}`)],
        ],
        maxAge,
      );
    },
    clear(ctx) {
      const options = cookieSetAttributes(cookie, ctx, 'session');
      ctx.cookies.set(cookie.name, null, options);
      if (cookie.signed) ctx.cookies.set(sigName, null, options);
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
  return {
    signer,
    vary: header,
    read(ctx) {
      const value = ctx.get(header);
      if (value === '') return {};
      const keys = appKeys(ctx, KEYS_FIX.header);
      const dot = value.lastIndexOf('.');
      const sid = value.slice(0, dot);
      const mac = value.slice(dot + 1);
      // HMAC-SHA256 base64url is 43 chars; a Keygrip instance signs with its own algorithm.
      const macFormat = keys.grip ? /^[A-Za-z0-9_-]{16,128}$/ : /^[A-Za-z0-9_-]{43}$/;
      if (dot < 0 || !isValidSid(sid) || !macFormat.test(mac)) return { invalid: 'bad-format' };
      const data = `${header}=${sid}`;
      const index = keys.grip ? keys.grip.index(data, mac) : signer.verify(keys.list, data, mac);
      return index >= 0 ? { sid } : { invalid: 'bad-signature' };
    },
    write(ctx, sid) {
      const keys = appKeys(ctx, KEYS_FIX.header);
      const data = `${header}=${sid}`;
      ctx.set(header, `${sid}.${keys.grip ? keys.grip.sign(data) : signer.sign(keys.list, data)}`);
    },
    clear(ctx) {
      ctx.set(header, '');
    },
  };
}
