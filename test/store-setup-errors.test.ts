/**
 * Issue 14, item 7 (stores): setup mistakes name their fix. A missing
 * optional client package names the install command instead of a bare
 * ERR_MODULE_NOT_FOUND; a malformed store URL is a StoreError naming the
 * store instead of the driver's raw parse error.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { MongoStore, RedisStore, StoreError } from '../src/index.js';

const run = promisify(execFile);

function isSetupError(store: string, message: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof StoreError, `a StoreError, got ${String(error)}`);
    assert.equal(error.store, store);
    assert.equal(error.status, 500, 'a setup mistake, not an outage (503)');
    assert.match(error.message, message);
    return true;
  };
}

describe('a malformed store URL is a StoreError naming the store', () => {
  it('MongoStore.connect: not a MongoParseError', async () => {
    await assert.rejects(MongoStore.connect({ url: 'mongodb://?x' }), isSetupError('mongo', /^\[mongo\] invalid url mongodb:\/\/\?x: /));
    await assert.rejects(MongoStore.connect({ url: 'mongodb://host:notaport/' }), isSetupError('mongo', /^\[mongo\] invalid url/));
  });

  it('RedisStore.connect: not a bare TypeError from the URL parser', async () => {
    await assert.rejects(
      RedisStore.connect({ url: 'redis://host/notadb' }),
      isSetupError('redis', /^\[redis\] invalid url redis:\/\/host\/notadb: /),
    );
  });

  it('credentials in a malformed URL are masked', async () => {
    await assert.rejects(RedisStore.connect({ url: 'redis://user:hunter2@host/notadb' }), (error: unknown) => {
      assert.ok(error instanceof StoreError);
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
  });
});

/**
 * Module hooks that make `redis`, `memcached` and `mongodb` unresolvable, as
 * in an app that installed none of them (registered after tsx, so they run first).
 */
const HIDE = `
const hidden = new Set(['redis', 'memcached', 'mongodb']);
export async function resolve(specifier, context, next) {
  if (hidden.has(specifier)) {
    throw Object.assign(new Error("Cannot find package '" + specifier + "' imported from " + context.parentURL), { code: 'ERR_MODULE_NOT_FOUND' });
  }
  return next(specifier, context);
}`;
const REGISTER = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HIDE)}`)});`;

describe('a missing optional package names the install command', () => {
  it('redis, memcached and mongodb, each when the store that needs it creates its client', async () => {
    const index = new URL('../src/index.ts', import.meta.url).href;
    const script = `
      const { MemcachedStore, MongoStore, RedisStore } = await import(${JSON.stringify(index)});
      const out = {};
      const attempts = {
        redis: () => RedisStore.connect({ url: 'redis://127.0.0.1:1' }),
        mongodb: () => MongoStore.connect({ url: 'mongodb://127.0.0.1:1' }),
        memcached: () => new MemcachedStore({ servers: '127.0.0.1:1' }).get('k'),
      };
      for (const [pkg, attempt] of Object.entries(attempts)) {
        try { await attempt(); out[pkg] = 'no error'; } catch (error) { out[pkg] = { name: error.name, store: error.store, status: error.status, message: error.message }; }
      }
      process.stdout.write(JSON.stringify(out));
    `;
    const { stdout } = await run(process.execPath, [
      '--import',
      'tsx',
      '--import',
      `data:text/javascript,${encodeURIComponent(REGISTER)}`,
      '--input-type=module',
      '-e',
      script,
    ]);
    const out = JSON.parse(stdout) as Record<string, { name: string; store: string; status: number; message: string }>;
    for (const [pkg, store] of [
      ['redis', 'redis'],
      ['mongodb', 'mongo'],
      ['memcached', 'memcached'],
    ] as const) {
      assert.deepEqual(
        { name: out[pkg]?.name, store: out[pkg]?.store, status: out[pkg]?.status },
        { name: 'StoreError', store, status: 500 },
        `${pkg}: ${JSON.stringify(out[pkg])}`,
      );
      assert.match(out[pkg]!.message, new RegExp(`the \`${pkg}\` package is not installed: run \`npm install ${pkg}\``));
    }
  });
});
