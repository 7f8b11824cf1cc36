/**
 * RedisLocker's Lua scripts. Every script names all its keys in KEYS, and all
 * keys of one script share the `{sid}` hash tag, so a cluster client routes it
 * to the node owning that slot and Redis accepts it.
 */
import { createHash } from 'node:crypto';
import { VERSIONED_WRITE_LUA } from '../stores/redis.js';

/**
 * Acquire: KEYS[1] lock, KEYS[2] (optional) session record; ARGV[1] token,
 * ARGV[2] lease ms. Returns `{1, record}` when acquired (the record read in the
 * same atomic step: the fast path), else `{0, pttl}` of the current holder.
 */
const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if KEYS[2] then return {1, redis.call('GET', KEYS[2])} end
  return {1}
end
return {0, redis.call('PTTL', KEYS[1])}
`;

/**
 * Release: compare-and-delete, then wake the waiters. KEYS[1] lock; ARGV[1]
 * token, ARGV[2] publish command ('' for none), ARGV[3] channel.
 */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if ARGV[2] ~= '' then redis.call(ARGV[2], ARGV[3], '1') end
  return 1
end
return 0
`;

/** Renew: extend the lease only while the token is ours. KEYS[1] lock; ARGV[1] token, ARGV[2] lease ms. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/**
 * Fenced write: only while the lock still holds our token, atomically; with
 * the release flag (the scope's last write) it also deletes the lock and wakes
 * the waiters in the same step. KEYS[1] lock, KEYS[2] record; ARGV[1] token,
 * ARGV[2] op, ARGV[3] '1' to release, ARGV[4] publish command ('' for none),
 * ARGV[5] channel, ARGV[6..] operands:
 * - `write` (versioned, RedisStore's `versioned_write`): stored ('' to delete),
 *   ttl, condition kind, condition version;
 * - `set`: value, ttl; `del`; `pexpire`: ttl.
 *
 * Returns 0 when the token is gone (nothing written, lock untouched), 1 when
 * written (and released with the flag), 2 when the token holds but the version
 * condition refused the write (nothing written, the lock still held: the
 * caller's release() gives it back).
 */
const FENCED = `${VERSIONED_WRITE_LUA}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local op = ARGV[2]
if op == 'write' then
  if versioned_write(KEYS[2], ARGV[6], ARGV[7], ARGV[8], ARGV[9]) == 0 then return 2 end
elseif op == 'set' then
  redis.call('SET', KEYS[2], ARGV[6], 'PX', ARGV[7])
elseif op == 'del' then
  redis.call('DEL', KEYS[2])
else
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1])
  if ARGV[4] ~= '' then redis.call(ARGV[4], ARGV[5], '1') end
end
return 1
`;

export interface Script {
  readonly source: string;
  readonly sha: string;
}
const script = (source: string): Script => ({ source, sha: createHash('sha1').update(source).digest('hex') });

export const SCRIPTS = {
  acquire: script(ACQUIRE),
  release: script(RELEASE),
  renew: script(RENEW),
  fenced: script(FENCED),
};

export type ScriptName = keyof typeof SCRIPTS;
