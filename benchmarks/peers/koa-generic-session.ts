/**
 * koa-generic-session 2 + koa-redis 4: the classic server-side Koa session.
 * The session is loaded eagerly on every request (its default, `defer: false`)
 * and saved at the end when it changed; no lock, so concurrent requests of one
 * session lose updates.
 */
import { createRequire } from 'node:module';
import type { Middleware } from 'koa';
import type { VariantFactory } from '../lib/types.js';
import { koaApp } from '../lib/routes.js';
import { koaRedis, plainObjectOps, type KoaRedisStore } from './koa-session.js';

const require = createRequire(import.meta.url);

interface GenericSessionOptions {
  store: KoaRedisStore;
  key?: string;
  ttl?: number;
  cookie?: { maxAge?: number; httpOnly?: boolean; signed?: boolean };
}

export const koaGenericSession: VariantFactory = async (env) => {
  // CommonJS, no types: we describe the one function we call.
  const session = require('koa-generic-session') as (options: GenericSessionOptions) => Middleware;
  const store = koaRedis(env.servers.redis!);
  const app = koaApp({
    ops: plainObjectOps,
    middleware: [session({ store, key: 'koa.sid', ttl: env.ttlMs, cookie: { maxAge: env.ttlMs } })],
  });
  return { listener: app.callback(), close: async () => void (await store.quit()) };
};
