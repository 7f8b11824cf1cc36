/**
 * Where the PostgreSQL variants find their server: `servers.postgres` once the
 * harness starts one, else `PG_URL` (benchmarks/postgres.ts sets it).
 */
import type { AppEnv } from '../lib/types.js';

export function postgresUrlOf(env: AppEnv): string {
  const url = (env.servers as { postgres?: string }).postgres ?? process.env.PG_URL;
  if (!url) throw new Error('PostgreSQL variants need a server: set PG_URL');
  return url;
}
