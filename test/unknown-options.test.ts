/**
 * Issue 14, item 1: options a plain-JavaScript app brings from koa-session,
 * koa-generic-session or express-session must fail at startup, naming our
 * equivalent, never be ignored silently (a `store` never written to, a `key`
 * that names no cookie). The same for cookie sub-options, store and locker
 * options, and for a store of another library passed as `master`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MemcachedStore,
  MemoryStore,
  MongoStore,
  PostgresLocker,
  PostgresStore,
  RedisStore,
  session,
  type SessionOptions,
} from '../src/index.js';

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

describe('unknown PostgreSQL options fail at construction, before any connection', () => {
  /** A pool that is never connected to: every case fails before the first query. */
  const pool = { connect: async () => assert.fail('connected'), end: async () => {}, on: () => pool };

  it('PostgresStore names our option for connect-pg-simple ones', () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['tableName', 'session', /Unknown PostgresStore option `tableName`\. Use `table`/],
      ['schemaName', 'app', /Unknown PostgresStore option `schemaName`.*`table: 'schema\.table'`/],
      ['conString', 'postgres://x', /Unknown PostgresStore option `conString`.*`pool`.*PostgresStore\.connect\(\{ connectionString \}\)/],
      [
        'conObject',
        { host: 'x' },
        /Unknown PostgresStore option `conObject`.*PostgresStore\.connect\(\{ connectionString, poolOptions \}\)/,
      ],
      ['pgPromise', {}, /Unknown PostgresStore option `pgPromise`.*node-postgres Pool/],
      ['createTableIfMissing', true, /Unknown PostgresStore option `createTableIfMissing`\. Use `createTable`/],
      ['ttl', 1000, /Unknown PostgresStore option `ttl`.*session\(\{ ttl \}\)/],
      ['pruneSessionInterval', 60, /Unknown PostgresStore option `pruneSessionInterval`.*`sweepIntervalMs`/],
      [
        'connectionString',
        'postgres://x',
        /Unknown PostgresStore option `connectionString`.*PostgresStore\.connect\(\{ connectionString \}\)/,
      ],
    ];
    for (const [option, value, message] of cases) {
      throwsTypeError(() => new PostgresStore(js({ pool, [option]: value }) as never), message);
    }
  });

  it('PostgresStore: a misspelt option lists the known ones', () => {
    throwsTypeError(
      () => new PostgresStore(js({ pool, tabel: 'sessions' }) as never),
      /Unknown PostgresStore option `tabel`\. Known options: pool, table, createTable, timeoutMs, sweepIntervalMs, sweepBatch$/,
    );
    throwsTypeError(() => new PostgresStore('postgres://x' as never), /Expected PostgresStore `options` to be an object/);
  });

  /** Runs `body` with `pg.Pool` counting the pools created (and keeping their configs); a pool is never connected here. */
  async function countingPools(body: (configs: Array<Record<string, unknown>>) => Promise<void>): Promise<void> {
    const pg = (await import('pg')).default;
    const RealPool = pg.Pool;
    const configs: Array<Record<string, unknown>> = [];
    pg.Pool = class extends RealPool {
      constructor(config?: ConstructorParameters<typeof RealPool>[0]) {
        super(config);
        configs.push({ ...config });
      }
    };
    try {
      await body(configs);
    } finally {
      pg.Pool = RealPool;
    }
  }

  async function connectRejects(options: Record<string, unknown>, message: RegExp): Promise<void> {
    await assert.rejects(PostgresStore.connect(js(options) as never), (error: unknown) => {
      assert.ok(error instanceof TypeError, `a TypeError, got ${String(error)}`);
      assert.match(error.message, message);
      return true;
    });
  }

  const connectionString = 'postgres://127.0.0.1:1/none';

  it('PostgresStore.connect refuses unknown options, naming ours', async () => {
    await countingPools(async (pools) => {
      const cases: Array<[Record<string, unknown>, RegExp]> = [
        [{ tableName: 'session' }, /Unknown PostgresStore\.connect option `tableName`\. Use `table`/],
        [{ conString: connectionString }, /Unknown PostgresStore\.connect option `conString`\. Use `connectionString`/],
        [{ pool }, /Unknown PostgresStore\.connect option `pool`.*new PostgresStore\(\{ pool \}\)/],
        [{ max: 20 }, /Unknown PostgresStore\.connect option `max`.*`poolOptions: \{ max \}`/],
        [{ ssl: true }, /Unknown PostgresStore\.connect option `ssl`.*`poolOptions: \{ ssl \}`/],
        [{ tabel: 'x' }, /Unknown PostgresStore\.connect option `tabel`\. Known options: connectionString, poolOptions, table,/],
      ];
      for (const [options, message] of cases) await connectRejects({ connectionString, ...options }, message);
      assert.equal(pools.length, 0, 'no pool was created for options that were refused');
    });
  });

  it('PostgresStore.connect checks poolOptions and the store options before it creates a pool (a refused option leaks none)', async () => {
    await countingPools(async (pools) => {
      const cases: Array<[Record<string, unknown>, RegExp]> = [
        [{ poolOptions: 'max=20' }, /Expected PostgresStore\.connect `poolOptions` to be an object, got `"max=20"`/],
        [{ poolOptions: null }, /Expected PostgresStore\.connect `poolOptions` to be an object, got `null`/],
        [{ timeoutMs: -1 }, /Expected PostgresStore(\.connect)? `timeoutMs` to be a positive number of ms, got `-1`/],
        [{ table: 'a;b' }, /Expected PostgresStore(\.connect)? `table` to be a table name/],
        [{ sweepBatch: 0 }, /Expected PostgresStore(\.connect)? `sweepBatch` to be a positive integer, got `0`/],
        [{ sweepIntervalMs: -1 }, /Expected PostgresStore(\.connect)? `sweepIntervalMs` to be a non-negative number of ms, got `-1`/],
        [{ createTable: 'yes' }, /Expected PostgresStore(\.connect)? `createTable` to be a boolean, got `"yes"`/],
      ];
      for (const [options, message] of cases) {
        await connectRejects({ connectionString, ...options }, message);
        assert.equal(pools.length, 0, `no pool was created for ${JSON.stringify(options)}`);
      }
    });
  });

  it('every documented PostgreSQL option is accepted, and poolOptions reach the pool', async () => {
    const store = new PostgresStore({
      pool,
      table: 'app.sessions',
      createTable: false,
      timeoutMs: 100,
      sweepIntervalMs: 0,
      sweepBatch: 5,
    });
    assert.equal(store.table, '"app"."sessions"');
    assert.ok(new PostgresLocker({ store, leaseMs: 1000, maxHoldMs: 5000, namespace: 'app:' }));
    assert.ok(new PostgresLocker({ pool, leaseMs: 1000 }));
    await countingPools(async (pools) => {
      const owned = await PostgresStore.connect({
        connectionString,
        poolOptions: { max: 3 },
        table: 'sessions',
        createTable: false,
        timeoutMs: 150,
        sweepIntervalMs: 0,
        sweepBatch: 5,
      });
      try {
        assert.deepEqual(pools, [{ connectionString, connectionTimeoutMillis: 150, max: 3 }]);
      } finally {
        await owned.close();
      }
    });
  });

  it('PostgresLocker', () => {
    throwsTypeError(() => new PostgresLocker(js({ pool, tableName: 'x' }) as never), /Unknown PostgresLocker option `tableName`.*`store`/);
    throwsTypeError(
      () => new PostgresLocker(js({ pool, lockTimeout: 100 }) as never),
      /Unknown PostgresLocker option `lockTimeout`.*session\(\{ lockTimeout \}\)/,
    );
    throwsTypeError(
      () => new PostgresLocker(js({ pool, prefix: 'x:' }) as never),
      /Unknown PostgresLocker option `prefix`\. Use `namespace`/,
    );
    throwsTypeError(
      () => new PostgresLocker(js({ pool, leaseMS: 100 }) as never),
      /Unknown PostgresLocker option `leaseMS`\. Known options: pool, store, leaseMs, maxHoldMs, namespace$/,
    );
  });
});
