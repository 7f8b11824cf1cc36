/**
 * Child process of test/no-sid-in-messages.test.ts (run with
 * NODE_DEBUG=koa-locked-session, so every debug line goes to stderr): runs
 * fault scenarios against real servers and prints, as the last stdout line,
 * JSON `{ texts, sids, outcomes }`: every message the library produced
 * (errors with stack and cause chain, Koa's default error log goes to stderr,
 * diagnostics-channel messages, mirror-error reports minus their documented
 * `sid` field), every sid seen, and each scenario's statuses.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import Koa from 'koa';
import Memcached from 'memcached';
import { MongoClient } from 'mongodb';
import { createClient } from 'redis';
import request from 'supertest';
import {
  CHANNELS,
  CookieStore,
  MemcachedStore,
  MemoryLocker,
  MemoryStore,
  MongoStore,
  RedisLocker,
  RedisStore,
  session,
  type MongoSessionDocument,
  type SessionOptions,
} from '../../src/index.js';
import type { WriteCondition } from '../../src/contracts/store.js';
import { memcachedServer, mongoServer, redisServer, tcpProxy, type TcpProxy } from './servers.js';
import { cookieHeader, setCookies } from './cookies.js';

declare module '../../src/index.js' {
  interface SessionData {
    n?: number;
  }
}

const texts: string[] = [];
const sids = new Set<string>();
const outcomes: Record<string, number[] | string> = {};
const show = (v: unknown) => inspect(v, { depth: 6, breakLength: Infinity });

for (const name of Object.values(CHANNELS)) diagnostics_channel.subscribe(name, (message) => texts.push(`${name}: ${show(message)}`));

const TIMEOUT = 300;
const cleanup: Array<() => Promise<unknown>> = [];

/** An app whose errors are collected and also printed by Koa's default error log (stderr). */
function app(options: SessionOptions, handler?: (ctx: Koa.Context) => Promise<void>) {
  const a = new Koa();
  a.keys = ['k1'];
  a.on('error', (err: Error) => {
    texts.push(`app error: ${show(err)}`);
    a.onerror(err); // Koa's own log line, as an app without a listener would print it
  });
  a.on('session:mirror-error', (report: { sid: string; error: unknown }) => {
    sids.add(report.sid.slice(report.sid.length - 43)); // `sid` is documented to carry the key; its error must not
    const { sid: _sid, ...rest } = report;
    texts.push(`mirror-error: ${show(rest)}`);
  });
  a.use(session({ storeTimeout: TIMEOUT, lockTimeout: TIMEOUT, ...options }));
  a.use(async (ctx) => {
    await (handler ?? (async (c) => void (await c.session.withLock((s) => void (s.n = (s.n ?? 0) + 1)))))(ctx);
    if (ctx.session.id) sids.add(ctx.session.id);
    ctx.body = 'ok';
  });
  return a.callback();
}

/** The cookies a response set, recording every sid in them. */
function cookiesOf(res: request.Response): string {
  for (const c of setCookies(res)) if (/^[A-Za-z0-9_-]{43}$/.test(c.value)) sids.add(c.value);
  return cookieHeader(res);
}

async function scenario(name: string, run: () => Promise<number[]>) {
  try {
    outcomes[name] = await run();
  } catch (error) {
    outcomes[name] = `threw: ${show(error)}`;
  }
}

const [redis, memcached, mongo] = await Promise.all([redisServer(), memcachedServer(), mongoServer()]);

if (redis) {
  const proxy = await tcpProxy(Number(new URL(redis.url).port));
  const client = createClient({ url: `redis://127.0.0.1:${proxy.port}` });
  client.on('error', () => {});
  await client.connect();
  cleanup.push(
    () => proxy.close(),
    () => client.disconnect(),
  );
  const prefix = `nosid-${randomUUID().slice(0, 6)}:`;
  const options = {
    master: new RedisStore({ client, prefix }),
    locker: new RedisLocker({ client, prefix: `${prefix}lock:`, commandTimeoutMs: TIMEOUT }),
  };

  await scenario('redis black-holed during the lock', async () => {
    const server = app(options);
    const first = await request(server).get('/');
    const cookie = cookiesOf(first);
    proxy.blackhole();
    const second = await request(server).get('/').set('Cookie', cookie);
    proxy.pass();
    return [first.status, second.status];
  });

  await scenario('redis black-holed during the save', async () => {
    const server = app(options, async (ctx) => {
      if (ctx.path === '/stall')
        await ctx.session.withLock((s) => {
          s.n = (s.n ?? 0) + 1;
          proxy.blackhole();
        });
      else await ctx.session.withLock((s) => void (s.n = (s.n ?? 0) + 1));
    });
    const first = await request(server).get('/');
    const cookie = cookiesOf(first);
    const second = await request(server).get('/stall').set('Cookie', cookie);
    proxy.pass();
    return [first.status, second.status];
  });
}

if (memcached) {
  const proxy = await tcpProxy(Number(memcached.url.split(':')[1]));
  const client = new Memcached(`127.0.0.1:${proxy.port}`, { retries: 0, poolSize: 1, timeout: TIMEOUT } as Memcached.options);
  cleanup.push(
    () => proxy.close(),
    async () => client.end(),
  );
  const store = new MemcachedStore({ client, prefix: `nosid-${randomUUID().slice(0, 6)}:`, timeoutMs: TIMEOUT });

  await scenario('dead memcached master', async () => {
    const server = app({ master: store });
    const first = await request(server).get('/');
    const cookie = cookiesOf(first);
    proxy.blackhole();
    const second = await request(server).get('/').set('Cookie', cookie);
    proxy.cut();
    const third = await request(server).get('/').set('Cookie', cookie);
    proxy.pass();
    return [first.status, second.status, third.status];
  });

  await scenario('dead mirror', async () => {
    const server = app({ master: new MemoryStore(), mirrors: [store] });
    proxy.blackhole();
    const first = await request(server).get('/');
    const cookie = cookiesOf(first);
    const second = await request(server).get('/').set('Cookie', cookie);
    proxy.pass();
    return [first.status, second.status];
  });
}

if (mongo) {
  const proxy = await tcpProxy(Number(new URL(mongo.url).port));
  const client = await new MongoClient(`mongodb://127.0.0.1:${proxy.port}/`, {
    maxPoolSize: 1,
    serverSelectionTimeoutMS: TIMEOUT,
  }).connect();
  cleanup.push(
    () => proxy.close(),
    () => client.close(true),
  );
  const collection = client.db(`kls_nosid_${randomUUID().slice(0, 8)}`).collection<MongoSessionDocument>('sessions');
  await scenario('dead mongo master', async () => {
    const server = app({ master: new MongoStore({ collection, timeoutMs: TIMEOUT }) });
    const first = await request(server).get('/');
    const cookie = cookiesOf(first);
    proxy.blackhole();
    const second = await request(server).get('/').set('Cookie', cookie);
    proxy.pass();
    return [first.status, second.status];
  });
}

/** A store whose driver quotes the key in its errors (as Mongo's E11000 "dup key: { _id: … }" does), wrapped in a cause. */
class QuotingStore extends MemoryStore {
  failing = false;
  #fail(op: string, key: string): never {
    const inner = new Error(`${op} failed: dup key: { _id: "${key}" } on {${key.slice(key.length - 43)}}`);
    throw new Error(`driver error for ${key}`, { cause: inner });
  }
  override async read(key: string) {
    if (this.failing) this.#fail('read', key);
    return super.read(key);
  }
  override async write(key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition) {
    if (this.failing) this.#fail('write', key);
    return super.write(key, value, version, ttlMs, condition);
  }
}

await scenario('driver errors quoting the key', async () => {
  const master = new QuotingStore();
  const mirror = new QuotingStore();
  mirror.failing = true;
  const server = app({ master, mirrors: [mirror], prefix: 'sess:' });
  const first = await request(server).get('/');
  const cookie = cookiesOf(first);
  master.failing = true;
  const second = await request(server).get('/').set('Cookie', cookie);
  return [first.status, second.status];
});

await scenario('tampered cookies', async () => {
  const server = app({ master: new MemoryStore() });
  const first = await request(server).get('/');
  const cookie = cookiesOf(first);
  const tampered = await request(server)
    .get('/')
    .set('Cookie', cookie.replace(/sid\.sig=[^;]*/, 'sid.sig=AAAAAAAAAAAAAAAAAAAAAAAAAAA'));
  cookiesOf(tampered);
  const sealed = app({ master: new CookieStore({ keys: ['s'.repeat(32)] }) });
  const own = await request(sealed).get('/');
  const ownCookie = cookiesOf(own);
  const flipped = ownCookie.replace(/=(.)/, (_, c: string) => `=${c === 'A' ? 'B' : 'A'}`);
  const bad = await request(sealed).get('/').set('Cookie', flipped);
  return [first.status, tampered.status, own.status, bad.status];
});

await scenario('lock timeout', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const server = app({ master: new MemoryStore(), locker: new MemoryLocker() }, async (ctx) => {
    if (ctx.path === '/hold')
      await ctx.session.withLock(async (s) => {
        s.n = 1;
        entered();
        await gate;
      });
    else await ctx.session.withLock((s) => void (s.n = 2));
  });
  const first = await request(server).get('/');
  const cookie = cookiesOf(first);
  const holding = request(server)
    .get('/hold')
    .set('Cookie', cookie)
    .then((r) => r.status);
  await inside;
  const waiter = await request(server).get('/').set('Cookie', cookie);
  release();
  return [first.status, waiter.status, await holding];
});

for (const c of cleanup.reverse()) await Promise.race([c().catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
await Promise.all([redis?.stop(), memcached?.stop(), mongo?.stop()]);
process.stdout.write(
  `\n${JSON.stringify({ texts, sids: [...sids], outcomes, servers: { redis: !!redis, memcached: !!memcached, mongo: !!mongo } })}\n`,
);
process.exit(0);
