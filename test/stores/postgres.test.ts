/**
 * PostgresStore against a real PostgreSQL (PG_URL, or one started here): the
 * conformance suite with the versioned cases, then the schema (created once
 * and safely by many stores at once; never with `createTable: false`), the
 * sweep, and faults (server down, restarted).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { StoreError } from '../../src/errors.js';
import { PostgresStore } from '../../src/postgres/store.js';
import { freshDatabase, postgresServer } from '../helpers/postgres-server.js';
import { skipReason, type StartedServer } from '../helpers/servers.js';
import { storeConformance } from './conformance.js';

const server = await postgresServer();
const skip = server ? false : skipReason('postgres');
const db = server ? await freshDatabase(server, 'store') : undefined;
const pool = db ? new pg.Pool({ connectionString: db.url, max: 20 }) : undefined;
pool?.on('error', () => {}); // idle connections die when the server restarts below
after(async () => {
  await pool?.end();
  await db?.drop();
  await server?.stop();
});

let tables = 0;
const freshTable = (label: string): string => `${label}_${process.pid}_${++tables}`;

storeConformance('postgres', () => new PostgresStore({ pool: pool!, table: freshTable('conformance'), timeoutMs: 30_000 }), {
  skip,
  extraTests: (ctx) => {
    const { key } = ctx;
    const store = (): PostgresStore => ctx.store as PostgresStore;

    it('stores one row per session: sid, value, v, expires_at', async () => {
      await store().write(key('row'), '{"a":1}', 3, 60_000, null);
      const { rows } = await pool!.query(`SELECT sid, value, v, expires_at FROM ${store().table} WHERE sid = $1`, [key('row')]);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].value, '{"a":1}');
      assert.equal(Number(rows[0].v), 3);
      assert.ok(rows[0].expires_at instanceof Date && rows[0].expires_at.getTime() > Date.now() + 50_000);
    });

    it('reads a row written by hand (no version) as version 0, and a tombstone (NULL value) as a tombstone', async () => {
      await pool!.query(`INSERT INTO ${store().table} (sid, value, expires_at) VALUES ($1, 'by hand', now() + interval '1 minute')`, [
        key('hand'),
      ]);
      assert.deepEqual(await store().read(key('hand')), { value: 'by hand', version: 0 });
      await pool!.query(`INSERT INTO ${store().table} (sid, value, v, expires_at) VALUES ($1, NULL, 7, now() + interval '1 minute')`, [
        key('tomb'),
      ]);
      assert.deepEqual(await store().read(key('tomb')), { value: undefined, version: 7 });
      assert.equal(await store().get(key('tomb')), undefined);
    });

    it('sweep deletes expired rows in batches and keeps live ones', async () => {
      const table = freshTable('sweep');
      const sweeper = new PostgresStore({ pool: pool!, table, sweepBatch: 7, sweepIntervalMs: 0 });
      await sweeper.ensureTable();
      await pool!.query(
        `INSERT INTO ${sweeper.table} (sid, value, expires_at) SELECT 'dead' || i, 'x', now() - interval '1 second' FROM generate_series(1, 30) i`,
      );
      await sweeper.set('alive', 'x', 60_000);
      assert.equal(await sweeper.sweep(), 30);
      const { rows } = await pool!.query(`SELECT sid FROM ${sweeper.table}`);
      assert.deepEqual(
        rows.map((r: { sid: string }) => r.sid),
        ['alive'],
      );
      await sweeper.close();
    });
  },
});

describe('PostgresStore schema and faults', { skip }, () => {
  it('eight stores starting at once create the table exactly once, without an error', async () => {
    const table = freshTable('together');
    const pools = Array.from({ length: 8 }, () => new pg.Pool({ connectionString: db!.url, max: 1 }));
    try {
      const stores = pools.map((p) => new PostgresStore({ pool: p, table }));
      await Promise.all(stores.map((s) => s.ensureTable()));
      await Promise.all(stores.map((s, i) => s.set(`k${i}`, 'v', 60_000)));
      assert.equal(await stores[0]!.get('k7'), 'v');
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('createTable: false never creates the table: operations fail naming the store until it exists', async () => {
    const table = freshTable('migrated');
    const store = new PostgresStore({ pool: pool!, table, createTable: false });
    await assert.rejects(
      store.get('x'),
      (error: unknown) => error instanceof StoreError && error.store === 'postgres' && /does not exist/.test(error.message),
    );
    await new PostgresStore({ pool: pool!, table }).ensureTable(); // the migration
    await store.set('x', 'v', 60_000);
    assert.equal(await store.get('x'), 'v');
  });

  it('rejects a table name that is not an identifier, naming the option', () => {
    assert.throws(() => new PostgresStore({ pool: pool!, table: 'sessions; DROP TABLE x' }), /PostgresStore `table`/);
  });

  it('server down: a StoreError within timeoutMs; server back: works again without a new store', {
    skip: server?.external ? 'PG_URL server: not ours to stop' : false,
  }, async () => {
    const started = server as StartedServer;
    const own = new pg.Pool({ connectionString: db!.url, connectionTimeoutMillis: 500 });
    own.on('error', () => {});
    const store = new PostgresStore({ pool: own, table: freshTable('faults'), timeoutMs: 1000 });
    try {
      await store.set('k', 'before', 60_000);
      await started.halt();
      await assert.rejects(store.get('k'), (error: unknown) => error instanceof StoreError && error.store === 'postgres');
      await assert.rejects(
        store.write('k', 'during', 1, 60_000, 0),
        (error: unknown) => error instanceof StoreError && error.outcome === 'none',
      );
      await started.resume();
      assert.equal(await store.get('k'), 'before');
    } finally {
      await own.end();
    }
  });
});
