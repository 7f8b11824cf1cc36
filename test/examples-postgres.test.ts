/**
 * Smoke test of examples/postgres.ts, started exactly as its header says,
 * against a real PostgreSQL (PG_URL, or one started here): overlapping
 * increments all count, and /reset ends the session for good.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { cookiesOf, startExample } from './helpers/examples.js';
import { freshDatabase, postgresServer } from './helpers/postgres-server.js';
import { skipReason } from './helpers/servers.js';

const server = await postgresServer();
const db = server ? await freshDatabase(server, 'example') : undefined;
after(async () => {
  await db?.drop();
  await server?.stop();
});

type Count = { count: number; id: string };

describe('examples/postgres.ts runs as documented', { skip: server ? false : skipReason('postgres') }, () => {
  it('a counter whose 20 overlapping increments all count; /reset ends the session', async () => {
    const ex = await startExample('postgres', { PG_URL: db!.url });
    try {
      const first = await fetch(ex.url);
      assert.equal(first.status, 200, await first.clone().text());
      assert.equal(((await first.json()) as Count).count, 1);
      const cookie = cookiesOf(first);
      const counts = await Promise.all(
        Array.from({ length: 20 }, () =>
          fetch(ex.url, { headers: { cookie } }).then(async (r) => {
            assert.equal(r.status, 200);
            return ((await r.json()) as Count).count;
          }),
        ),
      );
      assert.deepEqual(
        counts.sort((a, b) => a - b),
        Array.from({ length: 20 }, (_, i) => i + 2),
      );
      const reset = await fetch(`${ex.url}/reset`, { headers: { cookie }, redirect: 'manual' });
      assert.equal(reset.status, 302);
      const again = await fetch(ex.url, { headers: { cookie } });
      assert.equal(((await again.json()) as Count).count, 1, 'the destroyed session is not resurrected');
    } finally {
      await ex.stop();
    }
  });
});
