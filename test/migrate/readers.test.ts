/**
 * The migration readers against sessions created by the REAL peer libraries on
 * a real redis-server: koa-session (cookie mode, and with koa-redis as external
 * store), koa-generic-session + koa-redis, express-session + connect-redis. Each
 * old app writes a session; our reader, in a Koa app with the same keys /
 * secret, finds the same data; a tampered or wrongly signed cookie finds
 * nothing; retire() deletes the old record.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { RedisStore as ConnectRedis } from 'connect-redis';
import express from 'express';
import expressSessionMiddleware from 'express-session';
import Koa from 'koa';
import koaSessionMiddleware from 'koa-session';
import genericSessionMiddleware from 'koa-generic-session';
import redisStore from 'koa-redis';
import { createClient } from 'redis';
import request from 'supertest';
import { expressSession, genericSession, koaSessionCookie, type FoundSession, type MigrationSource } from '../../src/index.js';
import { redisServer, skipReason } from '../helpers/servers.js';

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
function koaRedis() {
  const store = redisStore({ url: redis!.url });
  koaRedisStores.push(store);
  return store;
}

/**
 * `name=value` pairs of a response's Set-Cookie headers. Not test/helpers' cookieHeader:
 * that one drops values ending in '=' (deleted cookies), and koa-session's base64 payload can.
 */
function cookieHeader(setCookie: string[] | string | undefined): string {
  const list = Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [];
  return list
    .filter((c) => !/expires=Thu, 01 Jan 1970/i.test(c))
    .map((c) => c.split(';')[0])
    .join('; ');
}

const OLD_KEYS = ['old app key 1'];
const DATA = { views: 3, user: { id: 'u1', name: 'Ada' } };

/** A Koa app of ours that runs `source.read` and answers what it found. */
function reader(source: MigrationSource, keys: string[] = OLD_KEYS, after?: (found: FoundSession) => Promise<void>) {
  const app = new Koa();
  app.keys = keys;
  app.use(async (ctx) => {
    const found = await source.read(ctx);
    if (found && after) await after(found);
    ctx.body = { found: found ? { source: found.source, data: found.data } : null };
  });
  return app.callback();
}

/** A Koa app on the old library, whose GET /login writes DATA into its session. */
function oldKoaApp(middleware: (app: Koa) => Koa.Middleware) {
  const app = new Koa();
  app.keys = OLD_KEYS;
  app.use(middleware(app));
  app.use(async (ctx) => {
    Object.assign(ctx.session as object, DATA);
    ctx.body = 'ok';
  });
  return app.callback();
}

describe('koa-session, cookie mode', () => {
  it('finds the session the real koa-session wrote, minus its bookkeeping', async () => {
    const old = await request(oldKoaApp((app) => koaSessionMiddleware({ key: 'koa.sess', maxAge: 86_400_000 }, app))).get('/login');
    const cookie = cookieHeader(old.headers['set-cookie']);
    assert.match(cookie, /koa\.sess=.*koa\.sess\.sig=/);
    const res = await request(reader(koaSessionCookie())).get('/').set('Cookie', cookie);
    assert.deepEqual(res.body.found, { source: 'koa-session', data: DATA });
  });

  it('a tampered payload, a missing signature or other keys find nothing', async () => {
    const old = await request(oldKoaApp((app) => koaSessionMiddleware({}, app))).get('/login');
    const cookie = cookieHeader(old.headers['set-cookie']);
    const forged = Buffer.from(JSON.stringify({ ...DATA, user: { id: 'admin' } })).toString('base64');
    const tampered = cookie.replace(/koa\.sess=[^;]*/, `koa.sess=${forged}`);
    assert.equal((await request(reader(koaSessionCookie())).get('/').set('Cookie', tampered)).body.found, null);
    const unsigned = cookie.replace(/;?\s*koa\.sess\.sig=[^;]*/, '');
    assert.equal((await request(reader(koaSessionCookie())).get('/').set('Cookie', unsigned)).body.found, null);
    assert.equal(
      (
        await request(reader(koaSessionCookie(), ['another key']))
          .get('/')
          .set('Cookie', cookie)
      ).body.found,
      null,
    );
  });

  it('an expired koa-session payload is not migrated', async () => {
    const old = await request(oldKoaApp((app) => koaSessionMiddleware({ maxAge: 1 }, app))).get('/login');
    const cookie = cookieHeader(old.headers['set-cookie']);
    // _expire = write time + 1 ms: past once this millisecond is over.
    const writtenAt = Date.now();
    while (Date.now() <= writtenAt + 1) await new Promise((resolve) => setImmediate(resolve));
    assert.equal((await request(reader(koaSessionCookie())).get('/').set('Cookie', cookie)).body.found, null);
  });
});

describe('koa-session with koa-redis as external store', { skip }, () => {
  it('finds the session by the signed external key; retire() deletes it from the store', async () => {
    const store = koaRedis();
    const old = await request(oldKoaApp((app) => koaSessionMiddleware({ store: store as never }, app))).get('/login');
    const cookie = cookieHeader(old.headers['set-cookie']);
    const externalKey = /koa\.sess=([^;]*)/.exec(cookie)![1]!;
    assert.ok(await store.get(externalKey), 'koa-session wrote the record into Redis');
    const source = koaSessionCookie({ store: store as never });
    const res = await request(reader(source, OLD_KEYS, (found) => found.retire()))
      .get('/')
      .set('Cookie', cookie);
    assert.deepEqual(res.body.found, { source: 'koa-session', data: DATA });
    assert.equal(await store.get(externalKey), null);
  });
});

describe('koa-generic-session with koa-redis', { skip }, () => {
  it('finds the session under koa:sess:<sid>; retire() deletes it', async () => {
    const store = koaRedis();
    const prefix = `koa:sess:${randomUUID().slice(0, 8)}:`;
    const old = await request(oldKoaApp(() => genericSessionMiddleware({ store, prefix }))).get('/login');
    const cookie = cookieHeader(old.headers['set-cookie']);
    const sid = /koa\.sid=([^;]*)/.exec(cookie)![1]!;
    assert.ok(await store.get(prefix + sid), 'koa-generic-session wrote the record into Redis');
    const source = genericSession({ store, until: UNTIL, prefix });
    const res = await request(reader(source, OLD_KEYS, (found) => found.retire()))
      .get('/')
      .set('Cookie', cookie);
    assert.deepEqual(res.body.found, { source: 'koa-generic-session', data: DATA });
    assert.equal(await store.get(prefix + sid), null);
  });

  it('another app key finds nothing', async () => {
    const store = koaRedis();
    const old = await request(oldKoaApp(() => genericSessionMiddleware({ store }))).get('/login');
    const res = await request(reader(genericSession({ store, until: UNTIL }), ['not the old key']))
      .get('/')
      .set('Cookie', cookieHeader(old.headers['set-cookie']));
    assert.equal(res.body.found, null);
  });
});

describe('express-session with connect-redis', { skip }, () => {
  function oldExpressApp(store: ConnectRedis, secret: string) {
    const app = express();
    app.use(expressSessionMiddleware({ store, secret, resave: false, saveUninitialized: false }));
    app.get('/login', (req, res) => {
      Object.assign(req.session, DATA);
      res.send('ok');
    });
    return app;
  }

  it('finds the session behind the s:-signed connect.sid; retire() deletes it', async () => {
    const prefix = `sess:${randomUUID().slice(0, 8)}:`;
    const store = new ConnectRedis({ client: client!, prefix });
    const old = await request(oldExpressApp(store, 'old express secret')).get('/login');
    const cookie = cookieHeader(old.headers['set-cookie']);
    assert.match(cookie, /^connect\.sid=s%3A/);
    const sid = decodeURIComponent(/connect\.sid=([^;]*)/.exec(cookie)![1]!)
      .slice(2)
      .split('.')[0]!;
    assert.ok(await client!.get(prefix + sid), 'express-session wrote the record into Redis');
    // Secret rotation: any of the secrets verifies, as in express-session.
    const source = expressSession({ store, secret: ['newer secret', 'old express secret'] });
    const res = await request(reader(source, OLD_KEYS, (found) => found.retire()))
      .get('/')
      .set('Cookie', cookie);
    assert.deepEqual(res.body.found, { source: 'express-session', data: DATA });
    assert.equal(await client!.get(prefix + sid), null);
  });

  it('a wrong secret or an unsigned sid finds nothing', async () => {
    const store = new ConnectRedis({ client: client!, prefix: `sess:${randomUUID().slice(0, 8)}:` });
    const old = await request(oldExpressApp(store, 'old express secret')).get('/login');
    const cookie = cookieHeader(old.headers['set-cookie']);
    assert.equal(
      (
        await request(reader(expressSession({ store, secret: 'wrong' })))
          .get('/')
          .set('Cookie', cookie)
      ).body.found,
      null,
    );
    const sid = decodeURIComponent(/connect\.sid=([^;]*)/.exec(cookie)![1]!)
      .slice(2)
      .split('.')[0]!;
    assert.equal(
      (
        await request(reader(expressSession({ store, secret: 'old express secret' })))
          .get('/')
          .set('Cookie', `connect.sid=${sid}`)
      ).body.found,
      null,
    );
  });
});

describe('reader options', () => {
  it('bad programmer input fails fast, naming the fix', () => {
    assert.throws(() => expressSession({ store: {} as never, secret: 's' }), /express-session\(\{ store \}\)/);
    assert.throws(
      () => expressSession({ until: UNTIL, store: { get() {}, set() {}, destroy() {} }, secret: [] }),
      /express-session\(\{ secret \}\)/,
    );
    assert.throws(() => genericSession({} as never), /koa-generic-session\(\{ store \}\)/);
    assert.throws(() => koaSessionCookie({ retire: 'yes' as never }), /\{ retire \}/);
  });
});
