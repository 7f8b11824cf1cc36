/**
 * Minimal types for the peer libraries the migration tests drive and that ship
 * none (koa-redis, koa-generic-session). Only what the tests call.
 */
declare module 'koa-redis' {
  interface KoaRedisStore {
    get(key: string): Promise<unknown>;
    set(key: string, session: object, ttlMs?: number): Promise<unknown>;
    destroy(key: string): Promise<unknown>;
    quit(): Promise<unknown>;
    readonly client: unknown;
  }
  function redisStore(options: { url?: string; client?: unknown; [option: string]: unknown }): KoaRedisStore;
  export default redisStore;
}

declare module 'koa-generic-session' {
  import type { Middleware } from 'koa';
  function genericSession(options: { store?: unknown; key?: string; prefix?: string; [option: string]: unknown }): Middleware;
  export default genericSession;
}
