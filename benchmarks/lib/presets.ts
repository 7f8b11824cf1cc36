/**
 * Named selections for `--only`: `--only targets` runs exactly the
 * (scenario, variant) pairs the targets of issues 12 and 13 are stated on,
 * so the before/after comparison can be re-run with one command.
 */
import type { ScenarioId } from './types.js';

export const TARGET_PAIRS: Readonly<Record<ScenarioId, readonly string[]>> = {
  // many users, locked RMW on Redis vs both raw floors and koa-session + koa-redis; CookieStore vs koa-session cookie mode
  rmw: ['bare-koa', 'raw-redis', 'raw-redis-notimeout', 'ours-redis', 'koa-session-redis', 'koa-generic-session', 'ours-cookie', 'koa-session-cookie'],
  // many users, read-only: MemoryStore vs bare Koa (and Redis vs the floors)
  read: ['bare-koa', 'ours-memory', 'raw-redis', 'raw-redis-notimeout', 'ours-redis'],
  // fresh sessions: MemoryStore vs koa-session cookie mode (and Redis vs the floors)
  fresh: ['bare-koa', 'ours-memory', 'koa-session-cookie', 'raw-redis', 'raw-redis-notimeout', 'ours-redis'],
  // untouched route vs bare Koa, store calls counted; node:http = the load generator's ceiling
  untouched: ['node-http', 'bare-koa', 'ours-memory'],
  // hot session, one process
  hot: ['raw-redis', 'raw-redis-notimeout', 'ours-redis', 'koa-session-redis', 'ours-memory'],
  // hot session, four processes
  processes: ['raw-redis', 'ours-redis', 'koa-session-redis'],
};

export const PRESETS: Readonly<Record<string, Readonly<Record<ScenarioId, readonly string[]>>>> = { targets: TARGET_PAIRS };
