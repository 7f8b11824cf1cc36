/**
 * issue 20 items 1–4: a migrated old session is moved at most once, ever.
 * Real koa-session (cookie mode), express-session + connect-redis, on a real
 * Redis with RedisStore + RedisLocker:
 * - after a logout, the old cookie replayed once the old marker lifetime (our
 *   `ttl`) has passed gives an anonymous session, not the user again;
 * - a koa-session `maxAge: 'session'` cookie (no expiry) is not moved without `until`;
 * - a validly signed old cookie holding `__proto__` never reaches `map` as a prototype;
 * - a request with our valid cookie and another user's old cookie expires the old one;
 * - overlapping first requests after the switch all end on ONE session.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { RedisStore as ConnectRedis } from 'connect-redis';
import express from 'express';
import expressSessionMiddleware from 'express-session';
import Koa from 'koa';
import koaSessionMiddleware from 'koa-session';
import { createClient } from 'redis';
import request from 'supertest';
import {
  expressSession,
  koaSessionCookie,
  RedisLocker,
  RedisStore,
  session,
  type Locker,
  type MigrationSource,
  type Store,
} from '../../src/index.js';
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
const lockers: Locker[] = [];
after(async () => {
  await Promise.all(lockers.map((l) => l.close?.()));
  await client?.quit().catch(() => {});
  await redis?.stop();
});

const KEYS = ['app key kept from the old app'];
const SECRET = 'old express secret';
const LOGGED_IN = { views: 7, account: { id: 'u42' } };

function cookiesOf(res: { headers: Record<string, unknown> }, name?: RegExp): string {
  const all = ([] as string[]).concat((res.headers['set-cookie'] as string[] | undefined) ?? []);
  return all
    .filter((c) => !/expires=Thu, 01 Jan 1970/i.test(c) && (!name || name.test(c)))
    .map((c) => c.split(';')[0])
    .join('; ');
}
const ourCookie = (res: { headers: Record<string, unknown> }) => cookiesOf(res, /^sid(\.sig)?=/);
const expired = (res: { headers: Record<string, unknown> }, name: string) =>
  ([] as string[])
    .concat((res.headers['set-cookie'] as string[] | undefined) ?? [])
    .some((c) => c.startsWith(`${name}=;`) && /expires=Thu, 01 Jan 1970/i.test(c));

/** GET / counts a visit under the lock; GET /logout destroys the session. */
function newApp(options: { master: Store; locker: Locker; ttl?: number; migrateFrom: MigrationSource }) {
  const app = new Koa();
  app.keys = KEYS;
  app.use(session({ auth: { userKey: 'account' }, ...options }));
  app.use(async (ctx) => {
    if (ctx.path === '/logout') {
      await ctx.session.destroy();
      ctx.body = 'bye';
      return;
    }
    const views = await ctx.session.withLock((s) => (s.views = (s.views ?? 0) + 1));
    ctx.body = { views, user: (await ctx.session.get()).account ?? null, id: ctx.session.id ?? null };
  });
  return app.callback();
}

async function loginOnOldKoa(options: Record<string, unknown>, data: object = LOGGED_IN): Promise<string> {
  const app = new Koa();
  app.keys = KEYS;
  app.use(koaSessionMiddleware(options, app));
  app.use(async (ctx) => {
    Object.assign(ctx.session as object, data);
    ctx.body = 'ok';
  });
  return cookiesOf(await request(app.callback()).get('/login'));
}

const master = () => new RedisStore({ client: client!, prefix: `kls${randomUUID().slice(0, 8)}:` });
const locker = () => {
  const l = new RedisLocker({ client: client! });
  lockers.push(l);
  return l;
};

/** Resolves once Redis has expired a key set now with a `ttlMs` lifetime: the moment a marker kept only `ttl` would be gone. */
async function redisExpiry(ttlMs: number): Promise<void> {
  const probe = `probe:${randomUUID()}`;
  await client!.set(probe, '1', { PX: ttlMs });
  while ((await client!.exists(probe)) === 1) await delay(50); // polling Redis for the key's expiry (an event, no threshold asserted)
}

describe('a migrated-then-logged-out user stays out', { skip }, () => {
  for (const retire of [true, false]) {
    it(`koa-session cookie mode (retire: ${retire}): the old cookie replayed after our ttl gives an anonymous session`, async () => {
      const oldCookie = await loginOnOldKoa({ key: 'koa.sess', maxAge: 86_400_000 });
      const ttl = 1500;
      const app = newApp({ master: master(), locker: locker(), ttl, migrateFrom: koaSessionCookie({ retire }) });
      const first = await request(app).get('/').set('Cookie', oldCookie);
      assert.deepEqual({ views: first.body.views, user: first.body.user }, { views: 8, user: { id: 'u42' } });
      await request(app).get('/logout').set('Cookie', ourCookie(first));
      const right = await request(app).get('/').set('Cookie', oldCookie);
      assert.deepEqual({ views: right.body.views, user: right.body.user }, { views: 1, user: null }, 'right after the logout');
      await redisExpiry(ttl);
      const later = await request(app).get('/').set('Cookie', oldCookie);
      assert.deepEqual({ views: later.body.views, user: later.body.user }, { views: 1, user: null }, 'after the old marker lifetime');
    });
  }

  it('express-session + connect-redis (retire: false): the same after a logout', async () => {
    const store = new ConnectRedis({ client: client!, prefix: `sess:${randomUUID().slice(0, 8)}:` });
    const old = express();
    old.use(expressSessionMiddleware({ store, secret: SECRET, resave: false, saveUninitialized: false, cookie: { maxAge: 86_400_000 } }));
    old.get('/login', (req, res) => void (Object.assign(req.session, LOGGED_IN), res.send('ok')));
    const oldCookie = cookiesOf(await request(old).get('/login'));
    const ttl = 1500;
    const app = newApp({ master: master(), locker: locker(), ttl, migrateFrom: expressSession({ store, secret: SECRET, retire: false }) });
    const first = await request(app).get('/').set('Cookie', oldCookie);
    assert.deepEqual(first.body.user, { id: 'u42' });
    await request(app).get('/logout').set('Cookie', ourCookie(first));
    await redisExpiry(ttl);
    const later = await request(app).get('/').set('Cookie', oldCookie);
    assert.deepEqual({ views: later.body.views, user: later.body.user }, { views: 1, user: null });
  });

  it("a koa-session maxAge: 'session' cookie (no expiry) is not moved without until, and is with it", async () => {
    const oldCookie = await loginOnOldKoa({ key: 'koa.sess', maxAge: 'session' });
    const without = await request(newApp({ master: master(), locker: locker(), migrateFrom: koaSessionCookie() }))
      .get('/')
      .set('Cookie', oldCookie);
    assert.deepEqual({ views: without.body.views, user: without.body.user }, { views: 1, user: null });
    const until = new Date(Date.now() + 86_400_000);
    const withUntil = await request(newApp({ master: master(), locker: locker(), migrateFrom: koaSessionCookie({ until }) }))
      .get('/')
      .set('Cookie', oldCookie);
    assert.deepEqual({ views: withUntil.body.views, user: withUntil.body.user }, { views: 8, user: { id: 'u42' } });
  });
});

describe('old data is parsed with our rules', () => {
  it('a signed koa-session cookie holding __proto__ never gives map a prototype', async () => {
    const app = new Koa();
    app.keys = KEYS;
    app.use((ctx) => {
      const payload = Buffer.from(`{"__proto__":{"isAdmin":true},"views":1,"_expire":${Date.now() + 60_000}}`).toString('base64');
      ctx.cookies.set('koa.sess', payload, { signed: true });
      ctx.body = 'ok';
    });
    const oldCookie = cookiesOf(await request(app.callback()).get('/'));
    const seen: Array<Record<string, unknown>> = [];
    const source = koaSessionCookie({ map: (data) => (seen.push(data), data) });
    const reader = new Koa();
    reader.keys = KEYS;
    reader.use(async (ctx) => void (await source.read(ctx), (ctx.body = 'ok')));
    await request(reader.callback()).get('/').set('Cookie', oldCookie);
    assert.equal(seen.length, 1);
    assert.equal(Object.getPrototypeOf(seen[0]), Object.prototype);
    assert.equal((seen[0] as { isAdmin?: unknown }).isAdmin, undefined);
    assert.deepEqual(seen[0], { views: 1 });
  });
});

describe('our session wins over an old cookie of another user', { skip }, () => {
  it('the old cookie is expired, so after a logout the next request does not move the other user in', async () => {
    const otherUser = await loginOnOldKoa({ key: 'koa.sess', maxAge: 86_400_000 }, { account: { id: 'someone else' } });
    const app = newApp({ master: master(), locker: locker(), migrateFrom: koaSessionCookie() });
    const mine = await request(app).get('/'); // a session of ours, anonymous
    const both = await request(app)
      .get('/logout')
      .set('Cookie', `${ourCookie(mine)}; ${otherUser}`);
    assert.ok(expired(both, 'koa.sess'), 'the old cookie is expired when our session wins');
    // The browser drops the expired cookies; the next request brings neither.
    const next = await request(app).get('/');
    assert.deepEqual(next.body.user, null);
  });
});

describe('overlapping first requests after the switch', { skip }, () => {
  it('express-session + connect-redis, retire: true: 8 overlapping first requests on two lockers, 10 rounds, all on one session', async () => {
    const shared = master();
    const apps = [locker(), locker()].map((l) =>
      newApp({ master: shared, locker: l, migrateFrom: expressSession({ store: oldStore, secret: SECRET }) }),
    );
    for (let round = 0; round < 10; round++) {
      const old = express();
      old.use(
        expressSessionMiddleware({
          store: oldStore,
          secret: SECRET,
          resave: false,
          saveUninitialized: false,
          cookie: { maxAge: 86_400_000 },
        }),
      );
      old.get('/login', (req, res) => void (Object.assign(req.session, LOGGED_IN), res.send('ok')));
      const oldCookie = cookiesOf(await request(old).get('/login'));
      const results = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          await delay(2 * i); // the load shape seen in the field: requests 2 ms apart
          return request(apps[i % 2]!)
            .get('/')
            .set('Cookie', oldCookie);
        }),
      );
      assert.equal(new Set(results.map((r) => r.body.id)).size, 1, `round ${round}: one session`);
      assert.deepEqual(
        results.map((r) => r.body.views).sort((a, b) => a - b),
        [8, 9, 10, 11, 12, 13, 14, 15],
      );
      assert.ok(results.every((r) => r.body.user?.id === 'u42'));
    }
  });
});
const oldStore = redis ? new ConnectRedis({ client: client!, prefix: `sess:${randomUUID().slice(0, 8)}:` }) : (undefined as never);
