/**
 * Named selections for `--only`: `--only targets` runs exactly the
 * (scenario, variant) pairs the targets of issue 23 are stated on (the
 * metrics in lib/targets.ts read them), so the before/after comparison can be
 * re-run with one command; `--only hot-targets` runs just its hot-session
 * part on Redis (one and four processes), with the same before/after table.
 */
import type { ScenarioId } from './types.js';

type Pairs = Readonly<Partial<Record<ScenarioId, readonly string[]>>>;

/**
 * The hot-session ladder on Redis: per-request locking (handoff off), handoff
 * without group commit (skipped while session() does not know `groupCommit`),
 * then the defaults (ours-redis).
 */
const LADDER = ['ours-redis-nohandoff', 'ours-redis-nogroupcommit', 'ours-redis'];

const HOT_PAIRS = {
  // hot session, one process: vs the raw GET+SET floors and koa-session + koa-redis
  hot: ['raw-redis', 'raw-redis-notimeout', ...LADDER, 'koa-session-redis'],
  // hot session, four processes (item 3): vs koa-session + koa-redis; the Memcached and MongoDB masters with RedisLocker
  processes: ['raw-redis', ...LADDER, 'koa-session-redis', 'ours-memcached-redislock', 'ours-mongo-redislock'],
} as const satisfies Pairs;

/** PostgreSQL (item 4): ours beside its raw SELECT + UPDATE floor and connect-pg-simple. */
const POSTGRES = ['raw-pg', 'ours-postgres', 'connect-pg-simple'];

export const TARGET_PAIRS: Pairs = {
  // many users, locked RMW: Redis vs both raw floors and koa-session + koa-redis (item 1); CookieStore, sealed and
  // signed, vs koa-session cookie mode (item 2); PostgreSQL (item 4); the plain view beside the handle (item 5)
  rmw: [
    'bare-koa',
    'raw-redis',
    'raw-redis-notimeout',
    'ours-redis',
    'koa-session-redis',
    'koa-generic-session',
    'ours-cookie',
    'ours-cookie-signed',
    'koa-session-cookie',
    ...POSTGRES,
    'ours-plain-redis',
  ],
  // many users, read-only: MemoryStore vs bare Koa (item 2; and Redis vs the floors)
  read: ['bare-koa', 'ours-memory', 'raw-redis', 'raw-redis-notimeout', 'ours-redis'],
  // fresh sessions: MemoryStore vs koa-session cookie mode (item 2; and Redis vs the floors)
  fresh: ['bare-koa', 'ours-memory', 'koa-session-cookie', 'raw-redis', 'raw-redis-notimeout', 'ours-redis'],
  // untouched route vs bare Koa, store calls counted (item 6); node:http = the load generator's ceiling
  untouched: ['node-http', 'bare-koa', 'ours-memory'],
  // hot session, one process (plus MemoryStore), PostgreSQL (item 4) and the plain view (item 5)
  hot: [...HOT_PAIRS.hot, 'ours-memory', ...POSTGRES, 'ours-plain-redis'],
  // hot session, four processes (item 3) and PostgreSQL (item 4)
  processes: [...HOT_PAIRS.processes, ...POSTGRES],
};

/** The plain view's many-users rows: the handle and the view on each store, beside their floors and koa-session. */
const PLAIN_MANY_USERS = [
  'bare-koa',
  'raw-redis',
  'ours-memory',
  'ours-plain-memory',
  'ours-redis',
  'ours-plain-redis',
  'ours-plain-redis-merge',
  'koa-session-redis',
];

/**
 * `--only plain`: the plain-object view (plainSession(), issue 21 item 6 / issue 23 item 5)
 * beside the handle and koa-session on the same `count + 1` workload; the hot session
 * counts its lost updates (0 with lock: 'request'; lock: 'merge' may lose increments).
 */
export const PLAIN_PAIRS: Pairs = {
  rmw: PLAIN_MANY_USERS,
  read: PLAIN_MANY_USERS,
  hot: ['raw-redis', 'ours-redis', 'ours-plain-redis', 'ours-plain-redis-merge', 'koa-session-redis'],
};

/**
 * `--only passport`: the login + protected-page workload with the real koa-passport +
 * passport-local (issue 21 item 6) on koa-session + koa-redis and on ours (the view),
 * beside the handle API and koa-session on the plain counter; each session is logged in
 * once, and the hot session (one user, every connection) counts its lost updates.
 */
const PASSPORT_VARIANTS = ['ours-redis', 'koa-session-redis', 'ours-passport-redis', 'koa-session-passport'];
export const PASSPORT_PAIRS: Pairs = { rmw: PASSPORT_VARIANTS, hot: PASSPORT_VARIANTS };

export const PRESETS: Readonly<Record<string, Pairs>> = {
  targets: TARGET_PAIRS,
  'hot-targets': HOT_PAIRS,
  plain: PLAIN_PAIRS,
  passport: PASSPORT_PAIRS,
};
