/** Small formatting helpers for error messages (never include secrets or session data). */

/** The message of an error (or of each error in an array, as some drivers report them). */
export function errorMessage(error: unknown): string {
  if (Array.isArray(error)) return error.map(errorMessage).join('; ');
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** A value as an option error shows it: strings quoted, objects by kind, functions never by their source. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object' && value !== null) return Object.prototype.toString.call(value);
  return String(value);
}

/** A server URL with its credentials masked, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/** Hash-tagged ids, the shape of every sid-derived key RedisStore and RedisLocker build (`sess:{…}`, `lock:{…}`). */
const TAGGED_ID = /\{[A-Za-z0-9_-]{16,128}\}/g;
/** A run of exactly 43 base64url characters: the shape of every default sid (32 random bytes). */
const BARE_SID = /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g;

/**
 * `text` with anything shaped like a session id replaced by `…`: hash-tagged
 * ids (`lock:{…}`), default-shaped sids (43 base64url characters, mixed case:
 * a random one lacks either case with probability ~1e-10, while words and
 * constants of that length have one case), and every id in `known`. Our own
 * messages never include a sid; this scrubs what drivers put in theirs (a
 * Mongo duplicate-key error quotes the key, a Redis error may name it).
 */
export function redactSids(text: string, known: readonly string[] = []): string {
  let out = text.replace(TAGGED_ID, '{…}').replace(BARE_SID, (m) => (/[A-Z]/.test(m) && /[a-z]/.test(m) ? '…' : m));
  for (const id of known) if (id.length > 0) out = out.split(id).join('…');
  return out;
}

/**
 * Scrub sids (see {@link redactSids}) from the message and stack of `error` and
 * of its `cause` chain, in place: a wrapped driver error is still printed by
 * `util.inspect`/`console.error(err)` with its cause. Bounded depth; non-errors
 * and frozen errors are left alone.
 */
export function scrubError(error: unknown, known: readonly string[] = [], depth = 5): void {
  for (let e = error, i = 0; e instanceof Error && i < depth; e = e.cause, i++) {
    try {
      const message = redactSids(e.message, known);
      if (message !== e.message) e.message = message;
      if (typeof e.stack === 'string') {
        const stack = redactSids(e.stack, known);
        if (stack !== e.stack) e.stack = stack;
      }
    } catch {
      // A read-only property on a foreign error: nothing we can do.
    }
    if (Array.isArray((e as { errors?: unknown }).errors))
      for (const inner of (e as AggregateError).errors) scrubError(inner, known, depth - i - 1);
  }
}
