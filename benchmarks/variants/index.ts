/**
 * The registry of variants: metadata the harness reads (no library loaded),
 * and {@link loadVariant}, which the app child calls to import just the one it
 * serves.
 */
import type { VariantFactory, VariantInfo } from '../lib/types.js';
import { POSTGRES_VARIANTS } from './postgres-info.js';

export const VARIANTS: readonly VariantInfo[] = [
  {
    id: 'bare-koa',
    label: 'bare Koa (ceiling)',
    group: 'baseline',
    needs: [],
    shared: false,
    counting: 'none',
    description: 'Koa with the same routes and no session middleware.',
  },
  {
    id: 'node-http',
    label: 'node:http, fixed body (load generator ceiling)',
    group: 'baseline',
    needs: [],
    shared: false,
    onlyScenarios: ['untouched'],
    counting: 'none',
    description:
      'A bare node:http listener answering a fixed body: what the load generator can drive on the app core. Bare Koa well below it means Koa, not the client, is the limit.',
  },
  {
    id: 'raw-redis',
    label: 'raw Redis GET+SET (floor)',
    group: 'baseline',
    needs: ['redis'],
    shared: true,
    counting: 'redis',
    description: 'Koa + node-redis, the fewest raw commands per route (SET / GET+SET / GET), unsigned cookie, no lock.',
  },
  {
    id: 'raw-redis-notimeout',
    label: 'raw Redis GET+SET, no command timeout (floor)',
    group: 'baseline',
    needs: ['redis'],
    shared: true,
    counting: 'redis',
    description:
      "The raw floor with node-redis's client-wide command timeout off (`commandOptions: { timeout: 0 }`): no AbortSignal.timeout() per command.",
  },
  {
    id: 'ours-memory',
    label: 'ours · MemoryStore',
    group: 'ours',
    needs: [],
    shared: false,
    counting: 'app',
    description: 'session() with its defaults: MemoryStore + MemoryLocker.',
  },
  {
    id: 'ours-redis',
    label: 'ours · RedisStore + RedisLocker',
    group: 'ours',
    needs: ['redis'],
    shared: true,
    counting: 'redis',
    description: 'RedisStore + RedisLocker on one node-redis client (fenced writes).',
  },
  {
    id: 'ours-redis-nohandoff',
    label: 'ours · RedisStore + RedisLocker, handoff off',
    group: 'ours',
    needs: ['redis'],
    shared: true,
    onlyScenarios: ['hot', 'processes'],
    counting: 'redis',
    sessionOptions: { handoff: false },
    description:
      'ours-redis with `handoff: false`: every scope acquires and releases the lock at the locker (per-request locking), the first rung of the hot-session ladder.',
  },
  {
    id: 'ours-redis-nogroupcommit',
    label: 'ours · RedisStore + RedisLocker, group commit off',
    group: 'ours',
    needs: ['redis'],
    shared: true,
    onlyScenarios: ['hot', 'processes'],
    counting: 'redis',
    sessionOptions: { groupCommit: false },
    description:
      'ours-redis with `groupCommit: false`: lease handoff, but one master write per scope (skipped when session() does not know the option yet).',
  },
  {
    id: 'ours-plain-memory',
    label: 'ours · plainSession() view, MemoryStore',
    group: 'ours',
    needs: [],
    shared: false,
    counting: 'app',
    description:
      "plainSession() (lock: 'request', the default) on session()'s defaults: `ctx.session` a plain object, koa-session's code; the lock held for the whole request.",
  },
  {
    id: 'ours-plain-redis',
    label: 'ours · plainSession() view, RedisStore + RedisLocker',
    group: 'ours',
    needs: ['redis'],
    shared: true,
    counting: 'redis',
    description:
      "plainSession() (lock: 'request') on RedisStore + RedisLocker (one client): koa-session's code, the lock held for the whole request.",
  },
  {
    id: 'ours-plain-redis-merge',
    label: "ours · plainSession({ lock: 'merge' }), RedisStore + RedisLocker",
    group: 'ours',
    needs: ['redis'],
    shared: true,
    counting: 'redis',
    description:
      "plainSession({ lock: 'merge' }) on RedisStore + RedisLocker: an unlocked read, the changed keys merged under a short lock at the end (a key two requests both change keeps the last writer's value).",
  },
  {
    id: 'ours-passport-redis',
    label: 'ours · koa-passport on plainSession(), RedisStore + RedisLocker',
    group: 'ours',
    needs: ['redis'],
    shared: true,
    onlyScenarios: ['rmw', 'hot'],
    seed: 'login',
    counting: 'redis',
    description:
      "koa-passport + passport-local on plainSession({ user: passportUser }) (lock: 'request'), RedisStore + RedisLocker: each session logged in once (POST /login), then the protected page (passport.session() restores the user, `ctx.session.views += 1`).",
  },
  {
    id: 'ours-memcached',
    label: 'ours · MemcachedStore',
    group: 'ours',
    needs: ['memcached'],
    shared: true,
    singleOnly: true,
    counting: 'memcached',
    description: 'MemcachedStore + MemoryLocker (one process).',
  },
  {
    id: 'ours-mongo',
    label: 'ours · MongoStore',
    group: 'ours',
    needs: ['mongo'],
    shared: true,
    singleOnly: true,
    counting: 'app',
    description: 'MongoStore (mongodb driver) + MemoryLocker (one process); store calls from driver command monitoring.',
  },
  {
    id: 'ours-cookie',
    label: 'ours · CookieStore',
    group: 'ours',
    needs: [],
    shared: false,
    clientSide: true,
    counting: 'none',
    description: 'CookieStore (AES-256-GCM sealed cookie) + MemoryLocker.',
  },
  {
    id: 'ours-cookie-signed',
    label: 'ours · CookieStore (encrypt: false)',
    group: 'ours',
    needs: [],
    shared: false,
    clientSide: true,
    counting: 'none',
    description: "CookieStore with encrypt: false (HMAC-signed, readable cookie, like koa-session's) + MemoryLocker.",
  },
  {
    id: 'ours-redis-memlock',
    label: 'ours · RedisStore + MemoryLocker',
    group: 'ours',
    needs: ['redis'],
    shared: true,
    processesOnly: true,
    counting: 'redis',
    description: 'RedisStore with the one-process MemoryLocker, run on several processes: shows the loss RedisLocker prevents.',
  },
  {
    id: 'ours-memcached-redislock',
    label: 'ours · MemcachedStore + RedisLocker',
    group: 'ours',
    needs: ['memcached', 'redis'],
    shared: true,
    processesOnly: true,
    counting: 'memcached',
    lockerCounting: 'redis',
    description: 'MemcachedStore with RedisLocker (its own Redis client) on several processes.',
  },
  {
    id: 'ours-mongo-redislock',
    label: 'ours · MongoStore + RedisLocker',
    group: 'ours',
    needs: ['mongo', 'redis'],
    shared: true,
    processesOnly: true,
    counting: 'app',
    lockerCounting: 'redis',
    description: 'MongoStore with RedisLocker (its own Redis client) on several processes.',
  },
  {
    id: 'koa-session-cookie',
    label: 'koa-session (cookie)',
    group: 'peer',
    needs: [],
    shared: false,
    clientSide: true,
    counting: 'none',
    description: 'koa-session 7 in its default cookie mode (signed cookie holds the data).',
  },
  {
    id: 'koa-session-redis',
    label: 'koa-session + koa-redis',
    group: 'peer',
    needs: ['redis'],
    shared: true,
    counting: 'redis',
    description: 'koa-session 7 with koa-redis 4 (ioredis) as external store.',
  },
  {
    id: 'koa-session-passport',
    label: 'koa-session + koa-redis + koa-passport',
    group: 'peer',
    needs: ['redis'],
    shared: true,
    onlyScenarios: ['rmw', 'hot'],
    seed: 'login',
    counting: 'redis',
    description:
      'koa-session 7 + koa-redis 4 + koa-passport 6 + passport-local, the same login + protected-page code as ours-passport-redis (no lock: the last writer wins).',
  },
  {
    id: 'koa-generic-session',
    label: 'koa-generic-session + koa-redis',
    group: 'peer',
    needs: ['redis'],
    shared: true,
    counting: 'redis',
    description: 'koa-generic-session 2 with koa-redis 4 (ioredis).',
  },
  {
    id: 'express-session',
    label: 'express-session + connect-redis',
    group: 'peer',
    needs: ['redis'],
    shared: true,
    counting: 'redis',
    description: 'Express 5 + express-session (resave: false, saveUninitialized: false) + connect-redis 9 (node-redis).',
  },
  ...POSTGRES_VARIANTS,
];

export function variantInfo(id: string): VariantInfo {
  const info = VARIANTS.find((v) => v.id === id);
  if (!info) throw new Error(`unknown variant \`${id}\`; known: ${VARIANTS.map((v) => v.id).join(', ')}`);
  return info;
}

/** Import the factory of one variant (in the app child only: it loads the libraries). */
export async function loadVariant(id: string): Promise<VariantFactory> {
  switch (id) {
    case 'bare-koa':
      return (await import('../peers/bare-koa.js')).bareKoa;
    case 'node-http':
      return (await import('../peers/node-http.js')).nodeHttp;
    case 'raw-redis':
      return (await import('../peers/raw-redis.js')).rawRedis;
    case 'raw-redis-notimeout':
      return (await import('../peers/raw-redis.js')).rawRedisNoTimeout;
    case 'koa-session-cookie':
      return (await import('../peers/koa-session.js')).koaSessionCookie;
    case 'koa-session-redis':
      return (await import('../peers/koa-session.js')).koaSessionRedis;
    case 'koa-session-passport':
      return (await import('../peers/passport.js')).koaSessionPassport;
    case 'koa-generic-session':
      return (await import('../peers/koa-generic-session.js')).koaGenericSession;
    case 'express-session':
      return (await import('../peers/express-session.js')).expressSession;
    case 'ours-memory':
      return (await import('./ours.js')).oursMemory;
    case 'ours-redis':
      return (await import('./ours.js')).oursRedis;
    case 'ours-redis-nohandoff':
      return (await import('./ours.js')).oursRedisNoHandoff;
    case 'ours-redis-nogroupcommit':
      return (await import('./ours.js')).oursRedisNoGroupCommit;
    case 'ours-redis-memlock':
      return (await import('./ours.js')).oursRedisMemoryLocker;
    case 'ours-plain-memory':
      return (await import('./ours.js')).oursPlainMemory;
    case 'ours-plain-redis':
      return (await import('./ours.js')).oursPlainRedis;
    case 'ours-plain-redis-merge':
      return (await import('./ours.js')).oursPlainRedisMerge;
    case 'ours-passport-redis':
      return (await import('./ours.js')).oursPassportRedis;
    case 'ours-memcached':
      return (await import('./ours.js')).oursMemcached;
    case 'ours-memcached-redislock':
      return (await import('./ours.js')).oursMemcachedRedisLocker;
    case 'ours-mongo':
      return (await import('./ours.js')).oursMongo;
    case 'ours-mongo-redislock':
      return (await import('./ours.js')).oursMongoRedisLocker;
    case 'ours-cookie':
      return (await import('./ours.js')).oursCookie;
    case 'ours-cookie-signed':
      return (await import('./ours.js')).oursCookieSigned;
    case 'raw-pg':
      return (await import('../peers/raw-pg.js')).rawPg;
    case 'ours-postgres':
      return (await import('./ours-postgres.js')).oursPostgres;
    case 'connect-pg-simple':
      return (await import('../peers/connect-pg-simple.js')).connectPgSimpleVariant;
    default:
      throw new Error(`unknown variant \`${id}\``);
  }
}
