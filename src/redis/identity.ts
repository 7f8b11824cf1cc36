/**
 * The names RedisLocker gives things in Redis: lock tokens, its own id in the
 * waiters lists (with the polling turn it carries), and the Cluster hash tag
 * that decides whether a lock key and a record key share a slot. Their own
 * file because they are pure, and the lock scripts depend on their formats.
 */
import { randomBytes } from 'node:crypto';

/** The Redis Cluster hash tag of `key` (what decides its slot), per the cluster spec. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

/**
 * Lock tokens only need to be unique (no one can forge one without access to
 * Redis, which could do anything anyway): a random per-process nonce plus a
 * counter, cheaper than `randomBytes` per acquire.
 */
const TOKEN_NONCE = randomBytes(12).toString('base64url');
let tokenCounter = 0;
export function nextToken(): string {
  return `${TOKEN_NONCE}.${(++tokenCounter).toString(36)}`;
}

/** Each locker's id in the waiters lists (unique like the tokens: same nonce, its own counter). */
let lockerCounter = 0;
export function nextLockerId(): string {
  return `${TOKEN_NONCE}:${(++lockerCounter).toString(36)}`;
}

/**
 * How long a release leaves the lock holding the turn of a polling locker
 * (`pubsub: false`), ms: twice its longest poll interval, so its next poll
 * finds the turn even on a loaded machine; a turn nobody takes (the
 * process died) blocks the session that long.
 */
export function pollingTurnMs(pollMaxMs: number): number {
  return 2 * pollMaxMs;
}
