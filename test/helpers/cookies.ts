/**
 * The one Set-Cookie parser of the test tree: read the cookies a response set,
 * and send them back the way a browser would.
 *
 * A "cleared" cookie (empty value, an expiry in the past, or `Max-Age<=0`, as
 * Koa writes `ctx.cookies.set(name, null)`) is one a browser deletes: it is
 * never sent back.
 *
 * (test/property/cookies.property.test.ts keeps its own Cookie-header oracle on
 * purpose: it states RFC 6265 independently of any helper.)
 */

/**
 * Where Set-Cookie lines come from: the lines themselves (node's
 * `res.headers['set-cookie']`), a supertest/node response (`{ headers }`), or a
 * fetch `Response` (`headers.getSetCookie()`).
 */
export type SetCookieSource =
  | readonly string[]
  | string
  | undefined
  | { readonly headers: Headers }
  | { readonly headers: Record<string, unknown> };

/** One parsed Set-Cookie line. */
export interface SetCookie {
  readonly name: string;
  readonly value: string;
  /** Attributes by lower-cased name (`expires`, `max-age`, `path`…); flags (`httponly`) map to `''`. */
  readonly attributes: ReadonlyMap<string, string>;
  /** The line as received. */
  readonly line: string;
}

/** The Set-Cookie lines of `source`, in the order they were sent. */
export function setCookieLines(source: SetCookieSource): string[] {
  if (source === undefined) return [];
  if (typeof source === 'string') return [source];
  if (isLines(source)) return [...source];
  const { headers } = source;
  if (typeof (headers as Headers).getSetCookie === 'function') return (headers as Headers).getSetCookie();
  const raw = (headers as Record<string, unknown>)['set-cookie'];
  return Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? [raw] : [];
}

/** Parse one Set-Cookie line. */
export function parseSetCookie(line: string): SetCookie {
  const [pair = '', ...rest] = line.split(';');
  const eq = pair.indexOf('=');
  const attributes = new Map<string, string>();
  for (const piece of rest) {
    const at = piece.indexOf('=');
    const key = (at < 0 ? piece : piece.slice(0, at)).trim().toLowerCase();
    if (key) attributes.set(key, at < 0 ? '' : piece.slice(at + 1).trim());
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attributes, line };
}

/** Every Set-Cookie of `source`, parsed; only those named `name` when given. */
export function setCookies(source: SetCookieSource, name?: string): SetCookie[] {
  const all = setCookieLines(source).map(parseSetCookie);
  return name === undefined ? all : all.filter((c) => c.name === name);
}

/** True when a browser deletes the cookie on receiving it (empty value, past expiry, `Max-Age<=0`). */
export function isCleared(cookie: SetCookie, now = Date.now()): boolean {
  const expires = cookie.attributes.get('expires');
  const maxAge = cookie.attributes.get('max-age');
  return cookie.value === '' || (expires !== undefined && Date.parse(expires) <= now) || (maxAge !== undefined && Number(maxAge) <= 0);
}

/**
 * The Cookie header a browser sends back after one response: the `name=value`
 * pairs of every cookie it set, cleared ones left out.
 */
export function cookieHeader(source: SetCookieSource): string {
  return setCookies(source)
    .filter((c) => !isCleared(c))
    .map((c) => `${c.name}=${c.value}`)
    .join('; ');
}

/** A browser's cookie jar: Set-Cookie headers applied in order; a cleared cookie is removed. */
export class CookieJar {
  readonly #cookies = new Map<string, string>();
  /** Apply every Set-Cookie of a response; returns the response (for chaining). */
  take<T extends SetCookieSource>(source: T): T {
    for (const cookie of setCookies(source)) {
      if (isCleared(cookie)) this.#cookies.delete(cookie.name);
      else this.#cookies.set(cookie.name, cookie.value);
    }
    return source;
  }
  /** The value the jar holds for `name`. */
  get(name: string): string | undefined {
    return this.#cookies.get(name);
  }
  /** Names and values held, in the order first set. */
  get cookies(): ReadonlyMap<string, string> {
    return this.#cookies;
  }
  /** The Cookie header the browser sends. */
  get header(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

function isLines(source: object): source is readonly string[] {
  return Array.isArray(source);
}

/**
 * The `Expires` of a Set-Cookie (ms), asserted to be `ttlMs` after some instant
 * between `before` and `after` (taken around the request that set it). HTTP
 * dates have whole seconds, so the lower bound is rounded down: no tolerance
 * constant, whatever the machine's speed.
 */
export function expiresAfter(cookie: SetCookie | string, ttlMs: number, before: number, after: number): number {
  const parsed = typeof cookie === 'string' ? parseSetCookie(cookie) : cookie;
  const raw = parsed.attributes.get('expires');
  if (raw === undefined) throw new Error(`no expires attribute in ${parsed.line}`);
  const expires = Date.parse(raw);
  const earliest = Math.floor((before + ttlMs) / 1000) * 1000;
  if (!(expires >= earliest && expires <= after + ttlMs)) {
    throw new Error(
      `expected ${parsed.name} to expire ${ttlMs} ms after the request (${new Date(earliest).toUTCString()} … ${new Date(after + ttlMs).toUTCString()}), got ${raw}`,
    );
  }
  return expires;
}
