/**
 * Where the PostgreSQL variants find their server: the one the harness started
 * (or found through `PG_URL`), handed to the app child as `BENCH_PG_URL`.
 */
import type { AppEnv } from '../lib/types.js';

export function postgresUrlOf(env: AppEnv): string {
  const url = env.servers.postgres;
  if (!url) throw new Error('PostgreSQL variants need a server: install postgresql or set PG_URL');
  return url;
}
