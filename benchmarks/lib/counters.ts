/**
 * Store calls per request: counters snapshotted before and after a measured
 * window, the difference divided by the requests the app served in it, and
 * each operation classed as a read, a write or other (locker scripts, index
 * creation, …).
 */
import { memcachedStats, redisCommandStats } from './servers.js';
import type { AppStats, CountingMode, ServerUrls } from './types.js';

export type Counts = Record<string, number>;

/** Per-request store calls of one measurement. */
export interface StoreCalls {
  /** Operation → calls per request. */
  perRequest: Record<string, number>;
  reads: number;
  writes: number;
  other: number;
  total: number;
  /** Requests the delta is divided by. */
  requests: number;
}

/** Server-side snapshot (app-side counts come with the app's stats), plus the locker's Redis when asked. */
export async function snapshot(mode: CountingMode, urls: ServerUrls, locker?: 'redis'): Promise<Counts | undefined> {
  const store = await storeSnapshot(mode, urls);
  if (locker !== 'redis' || !urls.redis) return store;
  const lock = await redisCommandStats(urls.redis);
  return { ...store, ...Object.fromEntries(Object.entries(lock).map(([k, v]) => [`locker:${k}`, v])) };
}

async function storeSnapshot(mode: CountingMode, urls: ServerUrls): Promise<Counts | undefined> {
  if (mode === 'redis' && urls.redis) return redisCommandStats(urls.redis);
  if (mode === 'memcached' && urls.memcached) {
    const s = await memcachedStats(urls.memcached);
    const pick = [
      'cmd_get',
      'cmd_set',
      'cmd_touch',
      'delete_hits',
      'delete_misses',
      'incr_hits',
      'incr_misses',
      'decr_hits',
      'decr_misses',
    ];
    return Object.fromEntries(pick.map((k) => [k, s[k] ?? 0]));
  }
  return undefined;
}

/** Our own bookkeeping, never part of the app's traffic. */
const IGNORED =
  /^(?:locker:)?(info|ping|hello|select|auth|flushall|flushdb|quit|client\|.*|config\|.*|command\|.*|ismaster|isMaster|endSessions|buildInfo|saslStart|saslContinue)$/;

// `read` / `write`: a versioned store's calls (the counting MemoryStore of variants/ours.ts).
const READS = new Set([
  'read',
  'get',
  'mget',
  'getex',
  'exists',
  'pttl',
  'ttl',
  'hget',
  'hgetall',
  'cmd_get',
  'find',
  'aggregate',
  'count',
  'getMore',
]);
const WRITES = new Set([
  'write',
  'set',
  'setex',
  'psetex',
  'del',
  'unlink',
  'pexpire',
  'expire',
  'getdel',
  'hset',
  'incr',
  'cmd_set',
  'cmd_touch',
  'delete_hits',
  'delete_misses',
  'incr_hits',
  'incr_misses',
  'decr_hits',
  'decr_misses',
  'insert',
  'update',
  'delete',
  'findAndModify',
  'destroy',
  'touch',
]);

export function kindOf(op: string): 'read' | 'write' | 'other' {
  if (op.startsWith('locker:')) return 'other';
  if (READS.has(op)) return 'read';
  if (WRITES.has(op)) return 'write';
  return 'other';
}

function delta(before: Counts | undefined, after: Counts | undefined): Counts {
  const out: Counts = {};
  for (const [k, v] of Object.entries(after ?? {})) {
    if (IGNORED.test(k)) continue;
    const d = v - (before?.[k] ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}

/** Store calls per request between two snapshots; undefined when the variant has no store to count. */
export function storeCalls(
  mode: CountingMode,
  server: { before: Counts | undefined; after: Counts | undefined },
  app: { before: AppStats; after: AppStats },
): StoreCalls | undefined {
  if (mode === 'none') return undefined;
  // App-side store counts, and/or server-side ones (the store's server, the locker's Redis).
  const raw = { ...(mode === 'app' ? delta(app.before.store, app.after.store) : {}), ...delta(server.before, server.after) };
  if (mode !== 'app' && server.after === undefined) return undefined;
  const requests = app.after.requests - app.before.requests;
  if (requests <= 0) return undefined;
  const perRequest: Record<string, number> = {};
  let reads = 0;
  let writes = 0;
  let other = 0;
  for (const [op, calls] of Object.entries(raw)) {
    const per = calls / requests;
    perRequest[op] = per;
    const kind = kindOf(op);
    if (kind === 'read') reads += per;
    else if (kind === 'write') writes += per;
    else other += per;
  }
  return { perRequest, reads, writes, other, total: reads + writes + other, requests };
}

/** Merge per-measurement results into one (weighted by requests). */
export function mergeStoreCalls(list: readonly (StoreCalls | undefined)[]): StoreCalls | undefined {
  const present = list.filter((x): x is StoreCalls => x !== undefined);
  if (!present.length) return undefined;
  const requests = present.reduce((n, x) => n + x.requests, 0);
  const perRequest: Record<string, number> = {};
  for (const x of present) {
    for (const [op, per] of Object.entries(x.perRequest)) perRequest[op] = (perRequest[op] ?? 0) + (per * x.requests) / requests;
  }
  const sum = (key: 'reads' | 'writes' | 'other') => present.reduce((n, x) => n + x[key] * x.requests, 0) / requests;
  const reads = sum('reads');
  const writes = sum('writes');
  const other = sum('other');
  return { perRequest, reads, writes, other, total: reads + writes + other, requests };
}
