/**
 * Issue 14, item 1: options a plain-JavaScript app brings from koa-session,
 * koa-generic-session or express-session must fail at startup, naming our
 * equivalent, never be ignored silently (a `store` never written to, a `key`
 * that names no cookie). The same for cookie sub-options, store and locker
 * options, and for a store of another library passed as `master`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemcachedStore, MemoryStore, MongoStore, RedisStore, session, type SessionOptions } from '../src/index.js';

/** What a JavaScript caller can pass: anything. */
const js = (options: Record<string, unknown>): SessionOptions => options as unknown as SessionOptions;

function throwsTypeError(run: () => unknown, message: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof TypeError, `a TypeError, got ${String(error)}`);
    assert.match(error.message, message);
    return true;
  });
}

describe('unknown session() options fail at session() time', () => {
  const peers: Array<[string, unknown, RegExp]> = [
    ['key', 'koa.sess', /Unknown option `key`.*`cookie\.name`/],
    ['store', { get() {}, set() {}, destroy() {} }, /Unknown option `store`.*`master`.*fromKoaStore.*fromConnectStore/],
    ['maxAge', 86_400_000, /Unknown option `maxAge`.*`ttl`.*`cookie\.maxAge`/],
    ['renew', true, /Unknown option `renew`.*`rolling: true`/],
    ['resave', false, /Unknown option `resave`.*saved only when/],
    ['saveUninitialized', false, /Unknown option `saveUninitialized`.*stored only once/],
    ['genSid', () => 'x', /Unknown option `genSid`.*`genid`/],
    ['signed', true, /Unknown option `signed`.*`cookie\.signed`/],
    ['secret', 'keyboard cat', /Unknown option `secret`.*app\.keys/],
    ['autoCommit', true, /Unknown option `autoCommit`/],
    ['overwrite', true, /Unknown option `overwrite`/],
    ['httpOnly', true, /Unknown option `httpOnly`.*`cookie\.httpOnly`/],
    ['domain', 'example.com', /Unknown option `domain`.*`cookie\.domain`/],
    ['sameSite', 'lax', /Unknown option `sameSite`.*`cookie\.sameSite`/],
  ];
  for (const [option, value, message] of peers) {
    it(`the peer option \`${option}\` names our equivalent`, () => {
      throwsTypeError(() => session(js({ [option]: value })), message);
    });
  }

  it('the koa-session port from the issue fails instead of running on a cookie named sid in memory', () => {
    const redisStore = { get: async () => undefined, set: async () => {}, destroy: async () => {} };
    throwsTypeError(() => session(js({ key: 'koa.sess', maxAge: 86_400_000, renew: true, store: redisStore })), /Unknown option `key`/);
  });

  it('a misspelt option lists the known ones', () => {
    throwsTypeError(() => session(js({ lockTimout: 100 })), /Unknown option `lockTimout`\. Known options: name, master, .*lockTimeout/);
  });

  it("express-session's `name` (the cookie name) points at `cookie.name`", () => {
    throwsTypeError(() => session(js({ name: 'connect.sid' })), /`name` to be a JavaScript identifier.*`cookie\.name`/);
  });

  it('unknown cookie, sid and auth sub-options fail too, with the path', () => {
    throwsTypeError(() => session(js({ cookie: { expires: new Date() } })), /Unknown option `cookie\.expires`.*`cookie\.maxAge`/);
    throwsTypeError(() => session(js({ cookie: { nmae: 'x' } })), /Unknown option `cookie\.nmae`\. Known options: name, domain/);
    throwsTypeError(() => session(js({ sid: { cookie: 'x' } })), /Unknown option `sid\.cookie`/);
    throwsTypeError(() => session(js({ auth: { userid: () => 1 } })), /Unknown option `auth\.userid`/);
  });

  it('every documented option is accepted', () => {
    const mw = session({
      name: 'session',
      master: new MemoryStore(),
      mirrors: [],
      mirrorWrites: 'await',
      maxPendingMirrorWrites: 10,
      storeTimeout: 100,
      ttl: 1000,
      lockTimeout: 100,
      absoluteTtl: 5000,
      rolling: false,
      prefix: '',
      genid: () => 'a'.repeat(32),
      cookie: { name: 'sid', path: '/', signed: true },
      sid: {},
      auth: { userKey: 'user', maxSessionsPerUser: 3 },
    });
    assert.equal(typeof mw, 'function');
  });
});

describe('an object that is not a Store names what it lacks', () => {
  it('a bare object', () => {
    throwsTypeError(
      () => session(js({ master: {} })),
      /Expected `master` to be a Store \(name, get\(\), set\(\), destroy\(\)\): it lacks name, get\(\), set\(\), destroy\(\)$/,
    );
  });

  it('a koa-session / koa-generic-session store (koa-redis: promise get/set/destroy, no name) points at fromKoaStore', () => {
    const koaRedis = {
      client: {},
      get: async (_sid: string) => undefined,
      set: async (_sid: string, _sess: unknown, _ttl: number) => {},
      destroy: async (_sid: string) => {},
    };
    throwsTypeError(
      () => session(js({ master: koaRedis })),
      /`master` to be a Store.*it lacks name\. It looks like a koa-session \/ koa-generic-session store.*`fromKoaStore\(store\)`/,
    );
  });

  it('an express-session (connect) store (callback API) points at fromConnectStore', () => {
    class ConnectStore {
      get(_sid: string, _cb: () => void): void {}
      set(_sid: string, _session: unknown, _cb: () => void): void {}
      destroy(_sid: string, _cb: () => void): void {}
      regenerate(): void {}
    }
    throwsTypeError(
      () => session(js({ mirrors: [new ConnectStore()] })),
      /`mirrors\[0\]` to be a Store.*It looks like an express-session \(connect\) store.*`fromConnectStore\(store\)`/,
    );
  });
});

describe('unknown store options fail at construction', () => {
  it('RedisStore', () => {
    throwsTypeError(
      () => new RedisStore(js({ client: {}, url: 'redis://x' }) as never),
      /Unknown RedisStore option `url`.*RedisStore\.connect\(\{ url \}\)/,
    );
    throwsTypeError(() => new RedisStore(js({ client: {}, ttl: 1 }) as never), /Unknown RedisStore option `ttl`.*session\(\{ ttl \}\)/);
  });

  it('RedisStore.connect', async () => {
    await assert.rejects(
      RedisStore.connect(js({ url: 'redis://127.0.0.1:1', host: 'x' }) as never),
      /Unknown RedisStore\.connect option `host`/,
    );
    await assert.rejects(
      RedisStore.connect(js({ url: 'localhost:6379' }) as never),
      /Expected RedisStore\.connect `url` to be a redis:\/\/ or rediss:\/\/ URL, got `"localhost:6379"`/,
    );
  });

  it('MemcachedStore', () => {
    throwsTypeError(
      () => new MemcachedStore(js({ hosts: ['127.0.0.1:11211'] }) as never),
      /Unknown MemcachedStore option `hosts`.*`servers`/,
    );
  });

  it('MongoStore and MongoStore.connect', async () => {
    throwsTypeError(
      () => new MongoStore(js({ mongoUrl: 'mongodb://x' }) as never),
      /Unknown MongoStore option `mongoUrl`.*MongoStore\.connect\(\{ url \}\)/,
    );
    await assert.rejects(
      MongoStore.connect(js({ url: 'mongodb://127.0.0.1:1', collection: 'sessions' }) as never),
      /Unknown MongoStore\.connect option `collection`.*`collectionName`/,
    );
  });

  it('MemoryStore', () => {
    throwsTypeError(
      () => new MemoryStore(js({ maxSize: 10 }) as never),
      /Unknown MemoryStore option `maxSize`\. Known options: max, sweepIntervalMs/,
    );
  });
});
