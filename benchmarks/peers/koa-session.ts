/**
 * koa-session 7: the session most Koa apps use. Two setups:
 * - cookie mode (the default): the whole session lives in a signed cookie;
 * - external store: koa-redis (ioredis) as `store`, only the sid in the cookie.
 *
 * koa-session has no lock: concurrent requests of one session each save the
 * whole object at the end, so the last writer wins (lost updates).
 */
import { createRequire } from 'node:module';
import createSession from 'koa-session';
import type { Context } from 'koa';
import type { VariantFactory } from '../lib/types.js';
import { koaApp, countOf, type SessionOps } from '../lib/routes.js';

const require = createRequire(import.meta.url);

/** The part of koa-redis we use (it ships no types). */
export interface KoaRedisStore {
  get(sid: string): Promise<unknown>;
  set(sid: string, sess: unknown, ttlMs?: number): Promise<void>;
  destroy(sid: string): Promise<void>;
  quit(): Promise<unknown>;
}

/** koa-redis: `redisStore({ url })`, an ioredis client underneath. */
export function koaRedis(url: string): KoaRedisStore {
  const redisStore = require('koa-redis') as (options: { url: string }) => KoaRedisStore;
  return redisStore({ url });
}

type PeerSession = Record<string, unknown> & { count?: number };
/** `ctx.session` as koa-session and koa-generic-session define it (our types describe ours). */
export const peerSession = (ctx: Context): PeerSession => (ctx as unknown as { session: PeerSession }).session;

/** The same three operations for every peer whose `ctx.session` is a plain object saved after the request. */
export const plainObjectOps: SessionOps = {
  fresh(ctx) {
    peerSession(ctx).count = 1;
  },
  rmw(ctx) {
    const s = peerSession(ctx);
    s.count = (countOf(s) ?? 0) + 1;
    return s.count;
  },
  read(ctx) {
    return countOf(peerSession(ctx));
  },
};

export const koaSessionCookie: VariantFactory = async (env) => {
  const app = koaApp({
    ops: plainObjectOps,
    middleware: (koa) => [createSession({ key: 'koa.sess', maxAge: env.ttlMs }, koa)],
  });
  return { listener: app.callback(), close: async () => {} };
};

export const koaSessionRedis: VariantFactory = async (env) => {
  const store = koaRedis(env.servers.redis!);
  const app = koaApp({
    ops: plainObjectOps,
    // koa-session's store option is typed by its zod schema; koa-redis has the same methods.
    middleware: (koa) => [createSession({ key: 'koa.sess', maxAge: env.ttlMs, store: store as never }, koa)],
  });
  return { listener: app.callback(), close: async () => void (await store.quit()) };
};
