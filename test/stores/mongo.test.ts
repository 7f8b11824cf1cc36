/**
 * MongoStore against a real MongoDB-wire-protocol server (MONGO_URL, or
 * FerretDB 1.x with SQLite started here): the conformance suite, then the TTL
 * index (idempotent under concurrent creation; explicit degradation where the
 * server has no TTL indexes, as FerretDB 1.x) and faults (server down,
 * restarted).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MongoClient, type Db } from 'mongodb';
import { StoreError } from '../../src/errors.js';
import { MongoStore, type MongoSessionDocument } from '../../src/mongo/store.js';
import { mongoServer, skipReason, type StartedServer } from '../helpers/servers.js';
import { storeConformance } from './conformance.js';

const server = await mongoServer();
const skip = server ? false : skipReason('mongo');
let client: MongoClient | undefined;
let db: Db;
if (server) {
  client = await new MongoClient(server.url, { serverSelectionTimeoutMS: 5000 }).connect();
  // A database per run: the suite can use a shared MONGO_URL server without clearing it.
  db = client.db(`kls_test_${randomUUID().slice(0, 8)}`);
}
after(async () => {
  if (server?.external) await db?.dropDatabase().catch(() => {});
  await client?.close();
  await server?.stop();
});

/** A fresh collection name for one test. */
const fresh = (label: string): string => `${label}_${randomUUID().slice(0, 8)}`;

/** Collect the process warnings emitted while `fn` runs. */
async function warningsDuring(fn: () => Promise<void>): Promise<Error[]> {
  const seen: Error[] = [];
  const listener = (warning: Error): void => {
    seen.push(warning);
  };
  process.on('warning', listener);
  try {
    await fn();
    // process.emitWarning delivers on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', listener);
  }
  return seen;
}

// FerretDB on SQLite serializes writes: on a busy machine the 1,000-write burst
// of the suite takes seconds, past the 2 s production default of `timeoutMs`.
storeConformance(
  'mongo',
  () => new MongoStore({ collection: db.collection<MongoSessionDocument>(fresh('conformance')), timeoutMs: 30_000 }),
  {
    skip,
    extraTests: (ctx) => {
      const { key } = ctx;
      const store = (): MongoStore => ctx.store as MongoStore;

      it('stores one document per session: { _id: sid, value, expiresAt: Date }', async () => {
        const before = Date.now();
        await store().set(key('shape'), '{"s":1}', 60_000);
        const doc = await store().collection.findOne({ _id: key('shape') });
        assert.ok(doc);
        assert.deepEqual(Object.keys(doc).sort(), ['_id', 'expiresAt', 'value']);
        assert.equal(doc.value, '{"s":1}');
        assert.ok(doc.expiresAt instanceof Date);
        assert.ok(doc.expiresAt.getTime() >= before + 60_000 && doc.expiresAt.getTime() <= Date.now() + 60_000);
      });

      it('an expired document still in the collection (TTL monitor not run yet) reads as absent', async () => {
        await store().collection.replaceOne(
          { _id: key('stale') },
          { value: '{"stale":1}', expiresAt: new Date(Date.now() - 1000) },
          { upsert: true },
        );
        assert.equal(await store().get(key('stale')), undefined);
      });

      it('a hand-written document whose value is not a string is handed on as text (the session layer judges it)', async () => {
        await store().collection.replaceOne(
          { _id: key('not-string') },
          { value: { a: 1 } as unknown as string, expiresAt: new Date(Date.now() + 60_000) },
          { upsert: true },
        );
        assert.equal(typeof (await store().get(key('not-string'))), 'string');
      });

      it('connect() creates its own client and close() closes it', async () => {
        const own = await MongoStore.connect({ url: server!.url, dbName: db.databaseName, collectionName: fresh('owned') });
        await own.set(key('owned'), '{"o":1}', 60_000);
        assert.equal(await own.get(key('owned')), '{"o":1}');
        await own.close();
        await assert.rejects(own.get(key('owned')), StoreError);
        // The client we passed elsewhere is unaffected.
        assert.equal((await db.command({ ping: 1 })).ok, 1);
      });

      it("a duplicate-key error is reported without the server's message (it quotes the key)", async () => {
        // A unique index on `value` makes a second session with the same record a duplicate; the record here holds a sid.
        const name = fresh('dup');
        await db.collection(name).createIndex({ value: 1 }, { unique: true });
        const dup = new MongoStore({ db, collectionName: name });
        const sid = 'Zm9vYmFyLWJhei1xdXV4LTEyMzQ1Njc4OTAtX19fX18';
        try {
          await dup.set('first', sid, 60_000);
          const error = await dup.set('second', sid, 60_000).then(
            () => undefined,
            (e: unknown) => e,
          );
          assert.ok(error instanceof StoreError, String(error));
          assert.equal(error.message, '[mongo] SET failed: duplicate key (E11000)');
          assert.ok(!String(error.stack).includes(sid) && !String((error.cause as Error).message).includes(sid));
        } finally {
          await dup.close();
        }
      });

      it('versioned documents: { _id, value, v, expiresAt }; a tombstone has no value; claims are removed after use', async () => {
        const k = key('doc-shape');
        await store().write(k, '{"d":1}', 1, 60_000, null);
        await store().write(k, '{"d":2}', 2, 60_000, 1);
        const doc = await store().collection.findOne({ _id: k });
        assert.deepEqual(Object.keys(doc ?? {}).sort(), ['_id', 'expiresAt', 'v', 'value']);
        assert.equal(doc?.v, 2);
        await store().write(k, undefined, 3, 60_000, 2);
        const tomb = await store().collection.findOne({ _id: k });
        assert.deepEqual(Object.keys(tomb ?? {}).sort(), ['_id', 'expiresAt', 'v']);
        assert.equal(await store().collection.countDocuments({ _id: { $in: [`${k}#cas1`, `${k}#cas2`] } }), 0);
      });

      it('a document written by hand without v is version 0 and can be saved from it', async () => {
        const k = key('hand-v0');
        await store().collection.insertOne({ _id: k, value: '{"h":1}', expiresAt: new Date(Date.now() + 60_000) });
        assert.deepEqual(await store().read(k), { value: '{"h":1}', version: 0 });
        assert.equal(await store().write(k, '{"h":2}', 1, 60_000, 0), true);
        assert.deepEqual(await store().read(k), { value: '{"h":2}', version: 1 });
      });

      it('an insert (condition null) replaces an expired document the sweep has not removed yet', async () => {
        const k = key('expired-insert');
        await store().collection.insertOne({ _id: k, value: '{"old":1}', v: 7, expiresAt: new Date(Date.now() - 1000) });
        assert.equal(await store().write(k, '{"new":1}', 1, 60_000, null), true);
        assert.deepEqual(await store().read(k), { value: '{"new":1}', version: 1 });
      });

      it('rejects bad options with a TypeError naming the option', () => {
        // @ts-expect-error neither collection nor db
        assert.throws(() => new MongoStore({}), /exactly one of `collection`/);
        assert.throws(() => new MongoStore({ db, ttlIndex: 'sometimes' as 'auto' }), /`ttlIndex`/);
        assert.throws(() => new MongoStore({ db, timeoutMs: -1 }), /`timeoutMs`/);
      });
    },
  },
);

describe('MongoStore TTL index', { skip }, () => {
  it('is created once, safely, when ten stores (processes) start together', async () => {
    const name = fresh('concurrent');
    const stores = Array.from({ length: 10 }, () => new MongoStore({ db, collectionName: name }));
    try {
      const modes = await Promise.all(stores.map((s) => s.ensureIndexes()));
      assert.equal(new Set(modes).size, 1, `modes ${modes.join(',')}`);
      const indexes = await db.collection(name).listIndexes().toArray();
      const onExpiresAt = indexes.filter((i) => Object.keys(i.key).join() === 'expiresAt');
      assert.equal(onExpiresAt.length, 1, JSON.stringify(indexes));
      if (modes[0] === 'ttl-index') {
        assert.equal(onExpiresAt[0]!.expireAfterSeconds, 0);
      } else {
        // FerretDB 1.x: no TTL index; a plain index serves the sweep.
        assert.equal(modes[0], 'sweep');
        assert.equal(onExpiresAt[0]!.expireAfterSeconds, undefined);
      }
      // Later calls (and writes) do not create anything again.
      assert.equal(await stores[0]!.ensureIndexes(), modes[0]);
      assert.equal((await db.collection(name).listIndexes().toArray()).length, indexes.length);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('where TTL indexes are unsupported, degrades explicitly: one warning, a sweep that deletes only expired documents', async (t) => {
    const name = fresh('degrade');
    const store = new MongoStore({ db, collectionName: name });
    const other = new MongoStore({ db, collectionName: name });
    try {
      let mode: string | undefined;
      const warnings = await warningsDuring(async () => {
        mode = await store.ensureIndexes();
        await other.ensureIndexes();
      });
      if (mode === 'ttl-index') {
        assert.equal(warnings.filter((w) => (w as { code?: string }).code === 'KOA_LOCKED_SESSION_NO_TTL_INDEX').length, 0);
        return t.skip('this server supports TTL indexes (real MongoDB): nothing to degrade');
      }
      assert.equal(store.expiry, 'sweep');
      const ours = warnings.filter((w) => (w as { code?: string }).code === 'KOA_LOCKED_SESSION_NO_TTL_INDEX');
      assert.equal(ours.length, 1, 'one warning per collection, not per store');
      assert.match(ours[0]!.message, /^\[mongo\] the server does not support TTL indexes/);

      await store.collection.insertMany([
        { _id: 'expired-1', value: '{}', expiresAt: new Date(Date.now() - 10) },
        { _id: 'expired-2', value: '{}', expiresAt: new Date(Date.now() - 10_000) },
        { _id: 'live', value: '{}', expiresAt: new Date(Date.now() + 60_000) },
      ]);
      assert.equal(await store.sweep(), 2);
      assert.deepEqual(
        (await store.collection.find().toArray()).map((d) => d._id),
        ['live'],
      );
    } finally {
      await store.close();
      await other.close();
    }
  });

  it("ttlIndex: 'require' fails with a StoreError where TTL indexes are unsupported", async () => {
    const store = new MongoStore({ db, collectionName: fresh('require'), ttlIndex: 'require' });
    try {
      const result = await store.ensureIndexes().catch((error: unknown) => error);
      if (result === 'ttl-index') return; // real MongoDB
      assert.ok(result instanceof StoreError, String(result));
      assert.match(result.message, /^\[mongo\] CREATE INDEX failed: the server does not support TTL indexes .*ttlIndex: 'require'/);
      await assert.rejects(store.set('x', '{}', 60_000), StoreError);
    } finally {
      await store.close();
    }
  });

  it("ttlIndex: 'off' creates no index", async () => {
    const name = fresh('off');
    const store = new MongoStore({ db, collectionName: name, ttlIndex: 'off' });
    await store.set('x', '{"x":1}', 60_000);
    assert.equal(store.expiry, 'none');
    const indexes = await db.collection(name).listIndexes().toArray();
    assert.deepEqual(
      indexes.map((i) => i.name),
      ['_id_'],
    );
    await store.close();
  });
});

describe('MongoStore faults', {
  skip: server && !server.external ? false : skip || 'MONGO_URL is set: fault tests need a server started here (they stop and restart it)',
}, () => {
  const started = server as StartedServer;
  const DRIVER_SELECTION_MS = 30_000;
  let store: MongoStore;
  before(async () => {
    // The driver's own server selection waits far longer than our deadline, so
    // only `timeoutMs` can end a call quickly while the server is down.
    store = await MongoStore.connect({
      url: started.url,
      dbName: 'kls_faults',
      timeoutMs: 500,
      clientOptions: { serverSelectionTimeoutMS: DRIVER_SELECTION_MS },
    });
  });
  after(async () => {
    await store?.close();
  });

  it('server down: operations reject with a StoreError within timeoutMs; the same store works once the server is back', async () => {
    await store.set('fault', '{"before":1}', 60_000);
    await started.halt();
    try {
      const t0 = Date.now();
      const results = await Promise.allSettled([store.get('fault'), store.set('fault', '{"during":1}', 60_000), store.destroy('fault')]);
      const took = Date.now() - t0;
      for (const r of results) {
        assert.ok(
          r.status === 'rejected' &&
            r.reason instanceof StoreError &&
            r.reason.status === 503 &&
            /^\[mongo\] (FIND|SET|DELETE) failed/.test(r.reason.message),
          r.status === 'rejected' ? String(r.reason) : 'resolved',
        );
      }
      assert.ok(
        took < DRIVER_SELECTION_MS,
        `took ${took} ms: our 500 ms deadline, not the driver's ${DRIVER_SELECTION_MS} ms server selection, ended the calls`,
      );
    } finally {
      await started.resume();
    }
    // Same store object, same client: FerretDB keeps its SQLite files. The set and destroy that timed
    // out had an unknown outcome: either may still have been applied when the server resumed.
    assert.ok(['{"before":1}', '{"during":1}', undefined].includes(await store.get('fault')));
    await store.set('fault', '{"after":1}', 60_000);
    assert.equal(await store.get('fault'), '{"after":1}');
  });
});
