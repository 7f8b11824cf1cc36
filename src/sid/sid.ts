import { randomBytes } from 'node:crypto';

/**
 * Session ids: 32 random bytes (256 bits, OWASP asks for ≥ 64 bits of entropy),
 * base64url, 43 characters. Custom generators (`genid`) must produce ids in the
 * same safe alphabet so that no store key ever contains a character a store
 * could misread (spaces and control bytes break memcached, `{}` Redis hash tags…).
 */
const SID_FORMAT = /^[A-Za-z0-9_-]{16,128}$/;

/** A fresh 256-bit session id. */
export function generateSid(): string {
  return randomBytes(32).toString('base64url');
}

/** True when `value` is a session id this library could have generated: 16–128 chars of `[A-Za-z0-9_-]`. */
export function isValidSid(value: unknown): value is string {
  return typeof value === 'string' && SID_FORMAT.test(value);
}
