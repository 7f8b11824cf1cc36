/**
 * Smoke tests of the store examples (examples/redis.ts, memcached.ts, mongo.ts,
 * mirrors.ts), started exactly as the README says, against real servers
 * (REDIS_URL / MEMCACHED_URL / MONGO_URL, or ones started here).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { cookiesOf, startExample } from './helpers/examples.js';
import { memcachedServer, mongoServer, redisServer, skipReason, type TestServer } from './helpers/servers.js';

const [redis, memcached, mongo] = await Promise.all([redisServer(), memcachedServer(), mongoServer()]);
after(async () => {
  await Promise.all([redis?.stop(), memcached?.stop(), mongo?.stop()]);
});

const env = {
  REDIS_URL: redis?.url ?? '',
  MEMCACHED_URL: memcached?.url ?? '',
  MONGO_URL: mongo?.url ?? '',
  // A database per run, so a shared MONGO_URL server is not polluted by old runs.
  MONGO_DB: `kls_examples_${randomUUID().slice(0, 8)}`,
};

function skipUnless(...servers: ReadonlyArray<readonly [TestServer | undefined, string]>): string | false {
  const missing = servers.find(([server]) => !server);
  return missing ? skipReason(missing[1]) : false;
}

type Count = { count: number; id: string };

/** 20 overlapping increments on one session must give exactly 1..20 (no lost update). */
async function countsUnderLoad(url: string): Promise<string> {
  const first = await fetch(url);
  assert.equal(first.status, 200, await first.clone().text());
  assert.equal(((await first.json()) as Count).count, 1);
  const cookie = cookiesOf(first);
  const counts = await Promise.all(
    Array.from({ length: 20 }, () =>
      fetch(url, { headers: { cookie } }).then(async (r) => {
        assert.equal(r.status, 200);
        return ((await r.json()) as Count).count;
      }),
    ),
  );
  assert.deepEqual(
    counts.sort((a, b) => a - b),
    Array.from({ length: 20 }, (_, i) => i + 2),
  );
  return cookie;
}

describe('store examples run as documented', () => {
  for (const [name, servers] of [
    ['redis', [[redis, 'redis']]],
    ['memcached', [[memcached, 'memcached']]],
    ['mongo', [[mongo, 'mongo']]],
  ] as const) {
    it(`${name}: a counter whose overlapping increments all count`, { skip: skipUnless(...servers) }, async () => {
      const ex = await startExample(name, env);
      try {
        const cookie = await countsUnderLoad(ex.url);
        const reset = await fetch(`${ex.url}/reset`, { headers: { cookie }, redirect: 'manual' });
        assert.equal(reset.status, 302);
        const again = await fetch(ex.url, { headers: { cookie } });
        assert.equal(((await again.json()) as Count).count, 1, 'the destroyed session is not resurrected');
      } finally {
        await ex.stop();
      }
    });
  }

  it('mirrors: Redis master and Mongo mirror hold the same record', { skip: skipUnless([redis, 'redis'], [mongo, 'mongo']) }, async () => {
    const ex = await startExample('mirrors', env);
    try {
      const cookie = await countsUnderLoad(ex.url);
      const both = (await (await fetch(`${ex.url}/mirror`, { headers: { cookie } })).json()) as { master: string; mirror: string };
      assert.match(both.master, /"count":21/);
      assert.equal(both.mirror, both.master);
      await fetch(`${ex.url}/reset`, { headers: { cookie }, redirect: 'manual' });
      const gone = (await (await fetch(`${ex.url}/mirror`, { headers: { cookie } })).json()) as { master: unknown; mirror: unknown };
      assert.equal(gone.master ?? null, null);
      assert.equal(gone.mirror ?? null, null);
    } finally {
      await ex.stop();
    }
  });
});
