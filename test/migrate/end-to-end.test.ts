/**
 * End to end through the real middleware: a user logged in on the old app
 * (express-session + connect-redis, written by the real libraries) comes to the
 * new app and is still logged in, with the data intact and updates applied,
 * and overlapping first requests land on one session without losing one.
 *
 * Until `migrateFrom` is wired into the middleware, the test wires
 * migrateRequest() in front of session() the way an app could today: a request
 * without our cookie is migrated, and the new sid is handed to session() as if
 * the browser had sent it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { RedisStore as ConnectRedis } from 'connect-redis';
import express from 'express';
import expressSessionMiddleware from 'express-session';
import Koa from 'koa';
import { createClient } from 'redis';
import request from 'supertest';
import { expressSession, migrateRequest, RedisLocker, RedisStore, session, type Locker } from '../../src/index.js';
import { generateSid } from '../../src/sid.js';
import { redisServer, skipReason } from '../helpers/servers.js';

declare module '../../src/index.js' {
  interface SessionData {
    views?: number;
    account?: { id: string };
  }
}

const redis = await redisServer();
const skip = redis ? false : skipReason('redis');
const client = redis ? await createClient({ url: redis.url }).connect() : undefined;
client?.on('error', () => {});
after(async () => {
  await client?.quit().catch(() => {});
  await redis?.stop();
});

const SECRET = 'old express secret';

async function loggedInOnTheOldApp(store: ConnectRedis): Promise<string> {
  const app = express();
  app.use(expressSessionMiddleware({ store, secret: SECRET, resave: false, saveUninitialized: false }));
  app.get('/login', (req, res) => {
    Object.assign(req.session, { views: 7, account: { id: 'u42' } });
    res.send('ok');
  });
  const res = await request(app).get('/login');
  return String(res.headers['set-cookie']).split(';')[0]!;
}

function newApp(oldStore: ConnectRedis, locker: Locker, prefix: string) {
  const master = new RedisStore({ client: client!, prefix });
  const app = new Koa();
  app.keys = ['new app key'];
  app.use(async (ctx, next) => {
    if (!ctx.cookies.get('sid', { signed: true })) {
      const moved = await migrateRequest(ctx, expressSession({ store: oldStore, secret: SECRET }), {
        locker, lockTimeoutMs: 10_000, markers: master, prefix: 'migrate:', markerTtlMs: 86_400_000,
        create: async (data) => {
          const sid = generateSid();
          await master.set(sid, JSON.stringify(data), 86_400_000);
          return sid;
        },
      });
      if (moved) {
        const sig = (ctx.cookies as unknown as { keys: { sign(data: string): string } }).keys.sign(`sid=${moved.sid}`);
        ctx.request.headers.cookie = `sid=${moved.sid}; sid.sig=${sig}`;
        ctx.cookies.set('sid', moved.sid, { signed: true });
      }
    }
    await next();
  });
  app.use(session({ master, locker }));
  app.use(async (ctx) => {
    const views = await ctx.session.withLock((s) => (s.views = (s.views ?? 0) + 1));
    ctx.body = { views, user: (await ctx.session.get()).account ?? null, id: ctx.session.id };
  });
  return app.callback();
}

function ourCookie(res: { headers: Record<string, unknown> }): string {
  const all = ([] as string[]).concat((res.headers['set-cookie'] as string[] | undefined) ?? []);
  return all.filter((c) => /^sid(\.sig)?=[^;]/.test(c)).map((c) => c.split(';')[0]).join('; ');
}

describe('switching from express-session + connect-redis', { skip }, () => {
  it('the user is still logged in, the data intact, and the old session retired', async () => {
    const oldStore = new ConnectRedis({ client: client!, prefix: `sess:${randomUUID().slice(0, 8)}:` });
    const oldCookie = await loggedInOnTheOldApp(oldStore);
    const locker = new RedisLocker({ client: client! });
    try {
      const app = newApp(oldStore, locker, `kls${randomUUID().slice(0, 8)}:`);
      const first = await request(app).get('/').set('Cookie', oldCookie);
      assert.deepEqual({ views: first.body.views, user: first.body.user }, { views: 8, user: { id: 'u42' } });
      assert.match(String(first.headers['set-cookie']), /connect\.sid=;/, 'the old cookie is expired');
      const next = await request(app).get('/').set('Cookie', ourCookie(first));
      assert.deepEqual({ views: next.body.views, user: next.body.user, id: next.body.id }, { views: 9, user: { id: 'u42' }, id: first.body.id });
      // The old cookie, replayed, finds nothing to migrate any more: a fresh session.
      const replay = await request(app).get('/').set('Cookie', oldCookie);
      assert.deepEqual({ views: replay.body.views, user: replay.body.user }, { views: 1, user: null });
    } finally {
      await locker.close();
    }
  });

  it('20 overlapping first requests with the old cookie end on one session at views 7 + 20', async () => {
    const oldStore = new ConnectRedis({ client: client!, prefix: `sess:${randomUUID().slice(0, 8)}:` });
    const oldCookie = await loggedInOnTheOldApp(oldStore);
    const lockers = [new RedisLocker({ client: client! }), new RedisLocker({ client: client! })];
    try {
      const prefix = `kls${randomUUID().slice(0, 8)}:`;
      const apps = lockers.map((locker) => newApp(oldStore, locker, prefix)); // two "processes"
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => request(apps[i % 2]!).get('/').set('Cookie', oldCookie)));
      assert.equal(new Set(results.map((r) => r.body.id)).size, 1, 'one session');
      assert.deepEqual(results.map((r) => r.body.views).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => 8 + i));
      assert.ok(results.every((r) => r.body.user?.id === 'u42'));
    } finally {
      await Promise.all(lockers.map((l) => l.close()));
    }
  });
});
