// The deep paths of DESIGN.md's layout (src/stores/*, src/lockers/*, src/replica.ts) keep
// working for one release after the layout by layer (issue 22): each is the same class as
// the package's export, so `instanceof` and the fast path see one identity.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as pkg from '../src/index.js';

const DEEP: Array<[string, string]> = [
  ['../src/stores/memory.js', 'MemoryStore'],
  ['../src/stores/redis.js', 'RedisStore'],
  ['../src/stores/memcached.js', 'MemcachedStore'],
  ['../src/stores/mongo.js', 'MongoStore'],
  ['../src/stores/postgres.js', 'PostgresStore'],
  ['../src/stores/cookie.js', 'CookieStore'],
  ['../src/lockers/memory.js', 'MemoryLocker'],
  ['../src/lockers/redis.js', 'RedisLocker'],
  ['../src/lockers/postgres.js', 'PostgresLocker'],
];

test('the old deep import paths give the package classes themselves', async () => {
  for (const [path, name] of DEEP) {
    const mod = (await import(path)) as Record<string, unknown>;
    assert.equal(typeof mod[name], 'function', `${path} exports ${name}`);
    assert.equal(mod[name], (pkg as Record<string, unknown>)[name], `${path}'s ${name} is the package's`);
  }
  const replica = (await import('../src/replica.js')) as Record<string, unknown>;
  assert.equal(typeof replica.Replica, 'function', 'src/replica.ts exports Replica');
});
