/**
 * The versioned conditional write on Redis, shared by RedisStore (its `write`)
 * and RedisLocker (its fenced write embeds the same Lua function after its
 * token check): one source for the Lua, its arguments and the TTL rule.
 */
import { createHash } from 'node:crypto';
import { checkTtl, checkVersionedWrite } from '../util/validate.js';
import { wrap } from '../contracts/envelope.js';
import type { WriteCondition } from '../contracts/store.js';

/** The name of RedisStore in logs, events and errors. */
export const REDIS_STORE_NAME = 'redis';

/**
 * The conditional write in Lua, as a function other scripts can embed (the
 * RedisLocker's fenced write runs it after its token check, in one script).
 * It parses the `v<N>:` / `v<N>!` envelope of envelope.ts (no envelope, or more
 * than 16 digits: a version-0 record, exactly as `unwrap` does), checks the
 * condition exactly as `allows` does, then writes.
 *
 * `versioned_write(key, stored, ttl, kind, n)`: `stored` is the wrapped string
 * to SET with `PX ttl`, or `''` to DEL the key; `kind` is `eq` (the live record
 * must be a record, not a tombstone, of version `n`), `absent` (nothing may be
 * stored) or `newer` (nothing, or something older than version `n`). Returns
 * 1 when written, 0 when the condition refused the write (nothing changed).
 * Versions compare as Lua numbers (doubles), as JavaScript compares them.
 */
export const VERSIONED_WRITE_LUA = `
local function versioned_write(key, stored, ttl, kind, n)
  local cur = redis.call('GET', key)
  if cur then
    if kind == 'absent' then return 0 end
    local version, tomb = 0, false
    local digits, mark = string.match(cur, '^v(%d+)([:!])')
    if digits and #digits <= 16 then
      version = tonumber(digits)
      tomb = mark == '!'
    end
    if kind == 'eq' then
      if tomb or version ~= tonumber(n) then return 0 end
    elseif version >= tonumber(n) then
      return 0
    end
  elseif kind == 'eq' then
    return 0
  end
  if stored == '' then
    redis.call('DEL', key)
  else
    redis.call('SET', key, stored, 'PX', ttl)
  end
  return 1
end
`;

/** RedisStore's own script. KEYS[1] record; ARGV: stored ('' to delete), ttl ms, condition kind, condition version. */
export const WRITE_SCRIPT = `${VERSIONED_WRITE_LUA}
return versioned_write(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
`;
export const WRITE_SHA = createHash('sha1').update(WRITE_SCRIPT).digest('hex');

/**
 * The arguments of `versioned_write` after `key` for a {@link VersionedStore.write}
 * call: `[stored, ttl, kind, n]`. Validates like `set()` (a positive TTL, or 0 to
 * delete without a tombstone) and rejects a version that is not a safe integer.
 */
export function versionedWriteArgs(
  value: string | undefined,
  version: number,
  ttlMs: number,
  condition: WriteCondition,
): [string, string, string, string] {
  checkVersionedWrite(REDIS_STORE_NAME, 'WRITE', version, condition);
  const kind = condition === null ? 'absent' : condition === 'newer' ? 'newer' : 'eq';
  const n = condition === null ? '0' : condition === 'newer' ? String(version) : String(condition);
  if (value === undefined && ttlMs === 0) return ['', '0', kind, n];
  return [wrap(value, version), String(ttlToMs(ttlMs)), kind, n];
}

/** Redis wants a positive integer of ms (the one TTL rule of src/util/validate.ts). */
export function ttlToMs(ttlMs: number, command = 'WRITE'): number {
  return checkTtl(REDIS_STORE_NAME, command, ttlMs);
}
