/**
 * End to end through the real middleware with `migrateFrom`: users logged in
 * on the old app — sessions written by the REAL peer libraries (koa-session in
 * cookie mode, koa-generic-session + koa-redis, express-session +
 * connect-redis) on a real Redis — come to the new app and are still logged
 * in, with their data intact and updates applied; overlapping first requests
 * land on ONE session without losing an update; the old session is retired
 * (or kept with `retire: false`); and a request without any old cookie costs
 * no store call.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { RedisStore as ConnectRedis } from 'connect-redis';
import express from 'express';
import expressSessionMiddleware from 'express-session';
import Koa from 'koa';
import genericSessionMiddleware from 'koa-generic-session';
import redisStore from 'koa-redis';
import koaSessionMiddleware from 'koa-session';
import { createClient } from 'redis';
import request from 'supertest';
import {
  CookieStore,
  expressSession,
  genericSession,
  koaSessionCookie,
  MemoryStore,
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

/** The end of the migration window (the old sessions here carry no expiry of their own). */
const UNTIL = new Date(Date.now() + 86_400_000);
const redis = await redisServer();
const skip = redis ? false : skipReason('redis');
const client = redis ? await createClient({ url: redis.url }).connect() : undefined;
client?.on('error', () => {});
const koaRedisStores: Array<{ quit(): Promise<unknown> }> = [];
after(async () => {
  for (const store of koaRedisStores) {
    // koa-generic-session turns its store's 'disconnect' into a rejection nobody handles: not ours to test.
    (store as unknown as import('node:events').EventEmitter).removeAllListeners('disconnect');
    await store.quit().catch(() => {});
  }
  await client?.quit().catch(() => {});
  await redis?.stop();
});

const KEYS = ['app key kept from the old app'];
const SECRET = 'old express secret';
const LOGGED_IN = { views: 7, account: { id: 'u42' } };

/** `name=value` pairs of the cookies a response sets (not the ones it expires). */
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

/** The new app: GET / counts a visit under the lock; GET /peek only reads; GET /plain never touches the session. */
function newApp(options: { master: Store; locker?: Locker; migrateFrom: MigrationSource | MigrationSource[] }) {
  const app = new Koa();
  app.keys = KEYS;
  app.use(session(options));
  app.use(async (ctx) => {
    if (ctx.path === '/plain') {
      ctx.body = 'ok';
      return;
    }
    const views =
      ctx.path === '/peek' ? (await ctx.session.get()).views : await ctx.session.withLock((s) => (s.views = (s.views ?? 0) + 1));
    ctx.body = { views: views ?? null, user: (await ctx.session.get()).account ?? null, id: ctx.session.id ?? null };
  });
  return app.callback();
}

/** A Koa app on an old library whose GET /login logs the user in. */
async function loginOnOldKoa(middleware: (app: Koa) => Koa.Middleware): Promise<string> {
  const app = new Koa();
  app.keys = KEYS;
  app.use(middleware(app));
  app.use(async (ctx) => {
    Object.assign(ctx.session as object, LOGGED_IN);
    ctx.body = 'ok';
  });
  return cookiesOf(await request(app.callback()).get('/login'));
}

async function loginOnOldExpress(store: ConnectRedis, saveUninitialized = false): Promise<string> {
  const app = express();
  app.use(expressSessionMiddleware({ store, secret: SECRET, resave: false, saveUninitialized }));
  app.get('/login', (req, res) => {
    Object.assign(req.session, LOGGED_IN);
    res.send('ok');
  });
  app.get('/visit', (_req, res) => res.send('ok'));
  return cookiesOf(await request(app).get(saveUninitialized ? '/visit' : '/login'));
}

function koaRedis() {
  const store = redisStore({ url: redis!.url });
  koaRedisStores.push(store);
  return store;
}

/** A store that records every call made on it (to prove a request cost none). */
function counting(store: Store): { store: Store; calls: string[] } {
  const calls: string[] = [];
  const proxy = new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function' || property === 'constructor') return value;
      return (...args: unknown[]) => {
        calls.push(String(property));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, calls };
}

describe('switching from koa-session (cookie mode)', () => {
  it('the user is still logged in with the data intact, the old cookie expired, and later requests use ours', async () => {
    const oldCookie = await loginOnOldKoa((app) => koaSessionMiddleware({ key: 'koa.sess', maxAge: 86_400_000 }, app));
    assert.match(oldCookie, /koa\.sess=.*koa\.sess\.sig=/, 'koa-session set its signed cookie');
    const app = newApp({ master: new MemoryStore(), migrateFrom: koaSessionCookie({ key: 'koa.sess' }) });

    const first = await request(app).get('/').set('Cookie', oldCookie);
    assert.deepEqual({ views: first.body.views, user: first.body.user }, { views: 8, user: { id: 'u42' } });
    assert.ok(expired(first, 'koa.sess'), 'the old cookie is expired');
    const next = await request(app).get('/').set('Cookie', ourCookie(first));
    assert.deepEqual(next.body, { views: 9, user: { id: 'u42' }, id: first.body.id });
  });

  it('a first request that only reads (get) sees the migrated data and keeps the session', async () => {
    const oldCookie = await loginOnOldKoa((app) => koaSessionMiddleware({}, app));
    const app = newApp({ master: new MemoryStore(), migrateFrom: koaSessionCookie() });
    const peek = await request(app).get('/peek').set('Cookie', oldCookie);
    assert.deepEqual({ views: peek.body.views, user: peek.body.user }, { views: 7, user: { id: 'u42' } });
    assert.ok(peek.body.id, 'the session has a sid of ours');
    const next = await request(app).get('/').set('Cookie', ourCookie(peek));
    assert.deepEqual(next.body, { views: 8, user: { id: 'u42' }, id: peek.body.id });
  });

  it('a tampered old cookie migrates nothing: a fresh session', async () => {
    const oldCookie = await loginOnOldKoa((app) => koaSessionMiddleware({}, app));
    const forged = Buffer.from(JSON.stringify({ views: 1000, account: { id: 'admin' } })).toString('base64');
    const tampered = oldCookie.replace(/koa\.sess=[^;]*/, `koa.sess=${forged}`);
    const app = newApp({ master: new MemoryStore(), migrateFrom: koaSessionCookie() });
    const res = await request(app).get('/').set('Cookie', tampered);
    assert.deepEqual({ views: res.body.views, user: res.body.user }, { views: 1, user: null });
  });
});

describe('switching from koa-session with an external store (koa-redis)', { skip }, () => {
  it('the user is still logged in, the data intact, the old record retired', async () => {
    const store = koaRedis();
    const oldCookie = await loginOnOldKoa((app) => koaSessionMiddleware({ key: 'koa.sess', store: store as never }, app));
    const externalKey = /koa\.sess=([^;]*)/.exec(oldCookie)![1]!;
    assert.ok(await store.get(externalKey), 'koa-session wrote the record into Redis');
    const app = newApp({ master: new MemoryStore(), migrateFrom: koaSessionCookie({ key: 'koa.sess', store: store as never }) });
    const first = await request(app).get('/').set('Cookie', oldCookie);
    assert.deepEqual({ views: first.body.views, user: first.body.user }, { views: 8, user: { id: 'u42' } });
    assert.equal(await store.get(externalKey), null, 'the old record is retired');
  });
});

describe('a migrated login is a login like any other', () => {
  it('is listed in the per-user index, so revokeAll signs it out', async () => {
    const oldCookie = await loginOnOldKoa((app) => koaSessionMiddleware({}, app));
    const app = new Koa();
    app.keys = KEYS;
    app.use(session({ master: new MemoryStore(), auth: { userKey: 'account' }, migrateFrom: koaSessionCookie() }));
    app.use(async (ctx) => {
      if (ctx.path === '/revoke') {
        ctx.body = { revoked: (await ctx.session.revokeAll({ id: 'u42' } as never)).length };
        return;
      }
      const account = (await ctx.session.get()).account ?? null;
      ctx.body = { account, sessions: account ? (await ctx.session.sessionsOf(account as never)).length : 0 };
    });
    const first = await request(app.callback()).get('/').set('Cookie', oldCookie);
    assert.deepEqual(first.body, { account: { id: 'u42' }, sessions: 1 });
    assert.deepEqual((await request(app.callback()).get('/revoke')).body, { revoked: 1 });
    assert.deepEqual((await request(app.callback()).get('/').set('Cookie', ourCookie(first))).body, { account: null, sessions: 0 });
  });
});

describe('requests without an old cookie', () => {
  it('cost no store call when they bring no cookie, or only cookies no source knows', async () => {
    const { store, calls } = counting(new MemoryStore());
    const app = newApp({
      master: store,
      migrateFrom: [koaSessionCookie(), expressSession({ until: UNTIL, store: { get() {}, destroy() {} } as never, secret: SECRET })],
    });
    const bare = await request(app).get('/peek');
    const other = await request(app).get('/peek').set('Cookie', 'theme=dark; koa.sess.sig=abc');
    assert.deepEqual(
      [bare.body, other.body],
      [
        { views: null, user: null, id: null },
        { views: null, user: null, id: null },
      ],
    );
    assert.deepEqual(calls, [], 'no store call');
  });

  it('do not ask a source whose cookie the request lacks', async () => {
    const asked: string[] = [];
    const source: MigrationSource = {
      name: 'custom',
      retire: true,
      carries: (ctx) => ctx.get('Cookie').includes('old='),
      async read(ctx) {
        asked.push(ctx.get('Cookie'));
        return undefined;
      },
    };
    const app = newApp({ master: new MemoryStore(), migrateFrom: source });
    await request(app).get('/peek').set('Cookie', 'theme=dark');
    await request(app).get('/');
    assert.deepEqual(asked, []);
    await request(app).get('/peek').set('Cookie', 'old=1');
    assert.deepEqual(asked, ['old=1'], 'asked once the cookie is there');
  });

  it('a valid session of ours is never replaced by the old one', async () => {
    const oldCookie = await loginOnOldKoa((app) => koaSessionMiddleware({}, app));
    const app = newApp({ master: new MemoryStore(), migrateFrom: koaSessionCookie({ retire: false }) });
    const ours = await request(app).get('/'); // a new session of ours, views 1
    const both = await request(app)
      .get('/')
      .set('Cookie', `${ourCookie(ours)}; ${oldCookie}`);
    assert.deepEqual(both.body, { views: 2, user: null, id: ours.body.id });
  });
});

describe('switching from koa-generic-session + koa-redis', { skip }, () => {
  it('the user is still logged in, the data intact, the old record retired from Redis', async () => {
    const store = koaRedis();
    const prefix = `koa:sess:${randomUUID().slice(0, 8)}:`;
    const oldCookie = await loginOnOldKoa(() => genericSessionMiddleware({ store, prefix }));
    const oldSid = /koa\.sid=([^;]*)/.exec(oldCookie)![1]!;
    assert.ok(await store.get(prefix + oldSid), 'koa-generic-session wrote the record into Redis');

    const locker = new RedisLocker({ client: client! });
    try {
      const app = newApp({
        master: new RedisStore({ client: client!, prefix: `kls${randomUUID().slice(0, 8)}:` }),
        locker,
        migrateFrom: genericSession({ store, until: UNTIL, prefix }),
      });
      const first = await request(app).get('/').set('Cookie', oldCookie);
      assert.deepEqual({ views: first.body.views, user: first.body.user }, { views: 8, user: { id: 'u42' } });
      assert.ok(expired(first, 'koa.sid'), 'the old cookie is expired');
      assert.equal(await store.get(prefix + oldSid), null, 'the old record is retired');
      const next = await request(app).get('/').set('Cookie', ourCookie(first));
      assert.deepEqual(next.body, { views: 9, user: { id: 'u42' }, id: first.body.id });
    } finally {
      await locker.close();
    }
  });
});

describe('switching from express-session + connect-redis', { skip }, () => {
  const oldStore = () => new ConnectRedis({ client: client!, prefix: `sess:${randomUUID().slice(0, 8)}:` });
  const master = () => new RedisStore({ client: client!, prefix: `kls${randomUUID().slice(0, 8)}:` });

  it('the user is still logged in, the data intact, and the old session retired', async () => {
    const store = oldStore();
    const oldCookie = await loginOnOldExpress(store);
    const locker = new RedisLocker({ client: client! });
    try {
      const app = newApp({ master: master(), locker, migrateFrom: expressSession({ store, secret: SECRET, until: UNTIL }) });
      const first = await request(app).get('/').set('Cookie', oldCookie);
      assert.deepEqual({ views: first.body.views, user: first.body.user }, { views: 8, user: { id: 'u42' } });
      assert.ok(expired(first, 'connect.sid'), 'the old cookie is expired');
      const next = await request(app).get('/').set('Cookie', ourCookie(first));
      assert.deepEqual(next.body, { views: 9, user: { id: 'u42' }, id: first.body.id });
      // The old cookie, replayed after its record was retired, still ends on the one moved session (never a second one).
      const replay = await request(app).get('/').set('Cookie', oldCookie);
      assert.deepEqual(replay.body, { views: 10, user: { id: 'u42' }, id: first.body.id });
    } finally {
      await locker.close();
    }
  });

  it('20 overlapping first requests in two processes end on one session at views 7 + 20', async () => {
    const store = oldStore();
    const oldCookie = await loginOnOldExpress(store);
    const lockers = [new RedisLocker({ client: client! }), new RedisLocker({ client: client! })];
    try {
      const shared = master();
      const migrateFrom = expressSession({ store, secret: SECRET, until: UNTIL });
      const apps = lockers.map((locker) => newApp({ master: shared, locker, migrateFrom })); // two "processes"
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          request(apps[i % 2]!)
            .get('/')
            .set('Cookie', oldCookie),
        ),
      );
      assert.equal(new Set(results.map((r) => r.body.id)).size, 1, 'one session');
      assert.deepEqual(
        results.map((r) => r.body.views).sort((a, b) => a - b),
        Array.from({ length: 20 }, (_, i) => 8 + i),
      );
      assert.ok(results.every((r) => r.body.user?.id === 'u42'));
      assert.ok(
        results.every((r) => ourCookie(r) !== ''),
        'every response, the creating one or not, sets our cookie',
      );
    } finally {
      await Promise.all(lockers.map((l) => l.close()));
    }
  });

  it('retire: false keeps the old session and cookie, and still moves it once', async () => {
    const store = oldStore();
    const oldCookie = await loginOnOldExpress(store);
    const oldSid = /connect\.sid=s%3A([^.]*)/.exec(oldCookie)![1]!;
    const locker = new RedisLocker({ client: client! });
    try {
      const app = newApp({ master: master(), locker, migrateFrom: expressSession({ store, secret: SECRET, until: UNTIL, retire: false }) });
      const first = await request(app).get('/').set('Cookie', oldCookie);
      assert.equal(expired(first, 'connect.sid'), false, 'the old cookie stays');
      const kept = await new Promise((resolve, reject) => store.get(oldSid, (error, value) => (error ? reject(error) : resolve(value))));
      assert.deepEqual((kept as { account?: unknown }).account, { id: 'u42' }, 'the old record stays');
      const again = await request(app).get('/').set('Cookie', oldCookie); // e.g. a tab that never got our cookie
      assert.deepEqual(again.body, { views: 9, user: { id: 'u42' }, id: first.body.id });
    } finally {
      await locker.close();
    }
  });

  it('an empty old session (saveUninitialized) gives a fresh session and is retired', async () => {
    const store = oldStore();
    const oldCookie = await loginOnOldExpress(store, true);
    const oldSid = /connect\.sid=s%3A([^.]*)/.exec(oldCookie)![1]!;
    const app = newApp({ master: master(), migrateFrom: expressSession({ store, secret: SECRET, until: UNTIL }) });
    const res = await request(app).get('/').set('Cookie', oldCookie);
    assert.deepEqual({ views: res.body.views, user: res.body.user }, { views: 1, user: null });
    const gone = await new Promise((resolve, reject) => store.get(oldSid, (error, value) => (error ? reject(error) : resolve(value))));
    assert.equal(gone ?? null, null);
  });
});

describe('migrateFrom is checked at session() time', () => {
  it('refuses a value that is not a migration source, naming the readers', () => {
    assert.throws(
      () => session({ migrateFrom: { name: 'x' } as never }),
      /migrateFrom.*koaSessionCookie\(\), genericSession\(\) or expressSession\(\)/,
    );
    assert.throws(() => session({ migrateFrom: [koaSessionCookie(), 'koa.sess' as never] }), /migrateFrom\[1\]/);
  });

  it('refuses a CookieStore master, which has nowhere to record that a session was moved', () => {
    assert.throws(
      () => session({ master: new CookieStore({ keys: ['a cookie store key of 32 chars!!'] }), migrateFrom: koaSessionCookie() }),
      /migrateFrom.*server-side master/,
    );
  });
});
