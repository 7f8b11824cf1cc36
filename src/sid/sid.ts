import { randomFillSync } from 'node:crypto';

/**
 * Session ids: 32 random bytes (256 bits, OWASP asks for ≥ 64 bits of entropy),
 * base64url, 43 characters. Custom generators (`genid`) must produce ids in the
 * same safe alphabet so that no store key ever contains a character a store
 * could misread (spaces and control bytes break memcached, `{}` Redis hash tags…).
 */
const SID_FORMAT = /^[A-Za-z0-9_-]{16,128}$/;

/** Bytes of one sid. */
const SID_BYTES = 32;
/** Sids drawn from the CSPRNG per refill. */
const POOL_SIDS = 128;
/**
 * Random bytes for the next sids, filled from the CSPRNG 128 sids at a time:
 * each `randomBytes(32)` call is a synchronous crypto job (~6 µs, a sixth of a
 * fresh session's CPU); one `randomFillSync` of 4 KB costs about what one call
 * did. Every byte is handed out once (the cursor only moves forward) and the
 * used bytes are zeroed, so no past sid lingers here. Its own allocation
 * (`allocUnsafeSlow`), never a slice of Node's shared buffer pool. The same
 * trade Node's `crypto.randomUUID()` makes with its cache of 128 UUIDs.
 */
const pool = Buffer.allocUnsafeSlow(SID_BYTES * POOL_SIDS);
let next = POOL_SIDS;

/** A fresh 256-bit session id. */
export function generateSid(): string {
  if (next === POOL_SIDS) {
    randomFillSync(pool);
    next = 0;
  }
  const start = next++ * SID_BYTES;
  const end = start + SID_BYTES;
  const sid = pool.toString('base64url', start, end);
  pool.fill(0, start, end);
  return sid;
}

/** True when `value` is a session id this library could have generated: 16–128 chars of `[A-Za-z0-9_-]`. */
export function isValidSid(value: unknown): value is string {
  return typeof value === 'string' && SID_FORMAT.test(value);
}
