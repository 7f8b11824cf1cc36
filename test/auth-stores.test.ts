/** Auth helpers on every store: login, sessionsOf, revokeAll, logout — and what CookieStore can and cannot do. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { MongoClient } from 'mongodb';
import { createClient } from 'redis';
import request from 'supertest';
import {
  CookieStore,
  MemcachedStore,
  MemoryStore,
  MongoStore,
  RedisLocker,
  RedisStore,
  SessionError,
  type MongoSessionDocument,
  type SessionOptions,
} from '../src/index.js';
import { cookieHeader, makeApp } from './helpers/app.js';
import { memcachedServer, mongoServer, redisServer, skipReason } from './helpers/servers.js';

declare module '../src/index.js' {
  interface SessionData {
    user?: { id: string; name: string };
  }
}

const [redis, memcached, mongo] = await Promise.all([redisServer(), memcachedServer(), mongoServer()]);
const redisClient = redis ? await createClient({ url: redis.url }).connect() : undefined;
const mongoClient = mongo ? await new MongoClient(mongo.url, { serverSelectionTimeoutMS: 5000 }).connect() : undefined;
const db = mongoClient?.db(`kls_auth_${randomUUID().slice(0, 8)}`);
const memcachedStores: MemcachedStore[] = [];
after(async () => {
  await Promise.all(memcachedStores.map((s) => s.close()));
  await redisClient?.quit().catch(() => {});
  if (mongo?.external) await db?.dropDatabase().catch(() => {});
  await mongoClient?.close();
  await Promise.all([redis?.stop(), memcached?.stop(), mongo?.stop()]);
});

const unique = () => `auth-${randomUUID().slice(0, 8)}:`;
const setups: Array<{ name: string; skip: string | false; options(): SessionOptions }> = [
  { name: 'memory', skip: false, options: () => ({ master: new MemoryStore() }) },
  {
    name: 'redis + RedisLocker',
    skip: redis ? false : skipReason('redis'),
    options: () => ({
      master: new RedisStore({ client: redisClient!, prefix: unique() }),
      locker: new RedisLocker({ client: redisClient!, prefix: `lock-${unique()}` }),
    }),
  },
  {
    name: 'memcached',
    skip: memcached ? false : skipReason('memcached'),
    options: () => {
      const master = new MemcachedStore({ servers: memcached!.url, prefix: unique() });
      memcachedStores.push(master);
      return { master };
    },
  },
  {
    name: 'mongo',
    skip: mongo ? false : skipReason('mongo'),
    options: () => ({
      master: new MongoStore({ collection: db!.collection<MongoSessionDocument>(`a_${randomUUID().slice(0, 8)}`), timeoutMs: 30_000 }),
      storeTimeout: 30_000,
    }),
  },
];

const ada = { id: 'ada', name: 'Ada' };

function authApp(options: SessionOptions) {
  return makeApp(options, async (ctx) => {
    if (ctx.path === '/login') await ctx.session.login(ada);
    if (ctx.path === '/logout') await ctx.session.logout();
    if (ctx.path === '/others') {
      ctx.body = { revoked: await ctx.session.revokeAll(ada, { except: ctx.session.id! }) };
      return;
    }
    if (ctx.path === '/sessions') {
      ctx.body = { sessions: await ctx.session.sessionsOf(ada) };
      return;
    }
    ctx.body = { user: (await ctx.session.currentUser()) ?? null, id: ctx.session.id ?? null };
  }).callback();
}

for (const { name, skip, options } of setups) {
  describe(`auth on ${name}`, { skip }, () => {
    it('login lists the session, revokeAll logs the other device out, logout kills the old cookie', async () => {
      const server = authApp(options());
      const phone = await request(server).get('/login');
      const laptop = await request(server).get('/login');
      const phoneCookie = cookieHeader(phone.headers['set-cookie']);
      const laptopCookie = cookieHeader(laptop.headers['set-cookie']);
      const me = await request(server).get('/').set('Cookie', phoneCookie);
      assert.deepEqual(me.body.user, ada);
      const listed = await request(server).get('/sessions').set('Cookie', laptopCookie);
      assert.equal(listed.body.sessions.length, 2);
      const revoked = await request(server).get('/others').set('Cookie', laptopCookie);
      assert.deepEqual(revoked.body.revoked, [me.body.id]);
      assert.equal((await request(server).get('/').set('Cookie', phoneCookie)).body.user, null, 'the other device is logged out');
      assert.deepEqual((await request(server).get('/').set('Cookie', laptopCookie)).body.user, ada);
      await request(server).get('/logout').set('Cookie', laptopCookie);
      assert.equal((await request(server).get('/').set('Cookie', laptopCookie)).body.user, null, 'the old cookie no longer works');
      assert.deepEqual((await request(server).get('/sessions').set('Cookie', laptopCookie)).body.sessions, []);
    });
  });
}

describe('auth on CookieStore', () => {
  it('login gives a new stable id, currentUser() reads it, logout clears the cookie; sessionsOf explains why it cannot work', async () => {
    const errors: unknown[] = [];
    const app = makeApp({ master: new CookieStore({ keys: ['a cookie store key of at least 32 chars!'] }) }, async (ctx) => {
      if (ctx.path === '/anon') await ctx.session.withLock((s) => void ((s as Record<string, unknown>).cart = ['book']));
      if (ctx.path === '/login') await ctx.session.login(ada);
      if (ctx.path === '/logout') await ctx.session.logout();
      if (ctx.path === '/sessions') await ctx.session.sessionsOf(ada);
      ctx.body = { user: (await ctx.session.currentUser()) ?? null, id: ctx.session.id ?? null };
    });
    app.on('error', (e) => errors.push(e));
    const server = app.callback();
    const anon = await request(server).get('/anon');
    const login = await request(server).get('/login').set('Cookie', cookieHeader(anon.headers['set-cookie']));
    assert.deepEqual(login.body.user, ada);
    assert.notEqual(login.body.id, anon.body.id, 'login regenerates the id inside the cookie');
    const cookie = cookieHeader(login.headers['set-cookie']);
    assert.deepEqual((await request(server).get('/').set('Cookie', cookie)).body.user, ada);
    const out = await request(server).get('/logout').set('Cookie', cookie);
    assert.equal(out.body.user, null);
    assert.equal((await request(server).get('/').set('Cookie', cookieHeader(out.headers['set-cookie']))).body.user, null);
    const list = await request(server).get('/sessions').set('Cookie', cookie);
    assert.equal(list.status, 500);
    assert.ok(errors.some((e) => e instanceof SessionError && /need a server-side master store/.test(e.message)));
  });
});
