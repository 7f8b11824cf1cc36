/**
 * How MemcachedStore lays out an item: the lifetime it sends (memcached counts
 * in whole seconds, with an absolute time past 30 days), the exact expiry
 * stamped in front of every value, and the byte counts its size checks use.
 * Its own file because it is the on-the-wire format, independent of the client.
 */
import { Buffer } from 'node:buffer';
import { unwrap } from '../contracts/envelope.js';
import type { VersionedRecord } from '../contracts/store.js';

/** Memcached reads an expiry above 30 days as an absolute Unix time (seconds). */
export const MEMCACHED_MAX_RELATIVE_TTL_S = 60 * 60 * 24 * 30;
/** Memcached's text protocol limit on key length (bytes). */
export const MEMCACHED_MAX_KEY_BYTES = 250;
/**
 * Bytes an item needs beyond its key and value (item header, CAS, CRLF,
 * chunk headers), kept in reserve when checking against the server's
 * `item_size_max` (memcached `-I`).
 */
export const ITEM_OVERHEAD_BYTES = 128;

/**
 * Memcached lifetime for a TTL in ms: whole seconds rounded up, plus one;
 * past 30 days, an absolute Unix time (plus one second too). The extra second
 * is because memcached counts on a one-second clock and may drop an item at
 * any moment of its last second: without it a record could vanish up to 1 s
 * before its TTL. The exact expiry is enforced on read from the expiry stored
 * in the value itself.
 */
export function memcachedLifetime(ttlMs: number, now = Date.now()): number {
  const seconds = Math.ceil(ttlMs / 1000) + 1;
  return seconds > MEMCACHED_MAX_RELATIVE_TTL_S ? Math.ceil((now + ttlMs) / 1000) + 1 : seconds;
}

/** `<expiresAtMs>:` in front of every stored value: memcached's own expiry has one-second granularity. */
const EXPIRY = /^(\d{1,16}):/;

/** An unexpired stored item: the versioned body (`v<N>:<value>`, `v<N>!` or a plain value) and its record. */
export interface Live {
  readonly body: string;
  readonly record: VersionedRecord;
}

export function stamp(body: string, expiresAt: number): string {
  return `${Math.ceil(expiresAt)}:${body}`;
}

/**
 * The record inside a stored value, or `undefined` when expired. A value
 * without our expiry prefix (written by something else) is a record of
 * version 0 returned as it is, so the session layer can report it instead of
 * it vanishing silently.
 */
export function parse(raw: unknown): Live | undefined {
  const text = typeof raw === 'string' ? raw : Buffer.isBuffer(raw) ? raw.toString('utf8') : JSON.stringify(raw);
  const match = EXPIRY.exec(text);
  if (match && Date.now() >= Number(match[1])) return undefined;
  const body = match ? text.slice(match[0].length) : text;
  return { body, record: unwrap(body) };
}

export function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

export function countCrLf(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 13) n++;
  }
  return n;
}
