/**
 * How our record travels through a store written for another session library.
 *
 * Our record is an opaque string (the serializer's output); their stores keep
 * a session *object* and compute its lifetime from it (express-session stores
 * read `cookie.expires`, koa-session stores take `maxAge` in ms but round it
 * to whole seconds). So the adapters store `{ cookie, kls: { value, exp } }`:
 * - `kls.value` is our record, untouched;
 * - `kls.exp` is our own expiry (epoch ms), checked on every read, because the
 *   peer store's expiry is only to the second (and some never expire at all):
 *   "expiry is enforced on read" holds whatever the store does;
 * - `cookie` gives an express-session store the lifetime it expects, so it
 *   expires the record on its own too (to the second, rounded up).
 */

/** The object an adapter writes into a peer store. */
export interface AdaptedRecord {
  cookie: { originalMaxAge: number; expires: string };
  kls: { value: string; exp: number };
}

/** The object to store for `value`, expiring `ttlMs` from now. */
export function toAdapted(value: string, ttlMs: number, now = Date.now()): AdaptedRecord {
  const exp = now + Math.ceil(ttlMs);
  return { cookie: { originalMaxAge: Math.ceil(ttlMs), expires: new Date(exp).toISOString() }, kls: { value, exp } };
}

/**
 * Our record from what a peer store returned: `undefined` when absent,
 * expired, or not a record of ours (a session the old library wrote under the
 * same key is never handed to our deserializer as if it were ours).
 */
export function fromAdapted(stored: unknown, now = Date.now()): string | undefined {
  const parsed = typeof stored === 'string' ? safeParse(stored) : stored;
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const kls = (parsed as { kls?: unknown }).kls as { value?: unknown; exp?: unknown } | undefined;
  if (typeof kls !== 'object' || kls === null || typeof kls.value !== 'string' || typeof kls.exp !== 'number') return undefined;
  return kls.exp > now ? kls.value : undefined;
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A TTL the adapters accept: a positive finite number of ms (as every built-in store). */
export function validTtl(ttlMs: number): boolean {
  return typeof ttlMs === 'number' && ttlMs > 0 && Number.isFinite(ttlMs);
}
