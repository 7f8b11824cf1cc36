/**
 * Issue 20 item 6: on FerretDB (claims), a write whose outcome is unknown (its
 * `replaceOne` held in the network past `timeoutMs`) must keep its claim, so
 * that no other writer moves the record from the same version while the held
 * write may still land. Each trial: A's replace is held by the proxy, A
 * rejects; B then writes on the same version; A's bytes are released the
 * moment B sends its replace (or, when B is refused, once B was answered).
 * A 200 for B (write() true) must mean the final record holds B's change.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { MongoClient } from 'mongodb';
import { StoreError } from '../../src/errors.js';
import { MongoStore, type MongoSessionDocument } from '../../src/stores/mongo.js';
import { mongoServer, skipReason } from '../helpers/servers.js';
import { stallProxy } from '../helpers/stall.js';

const server = await mongoServer();
const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  await server?.stop();
});

const TTL = 60_000;
const TIMEOUT = 300;
const TRIALS = 12;
/** The BSON key of an `update` command's statements: only A's replace carries it (claims are inserts and deletes). */
const UPDATE_MARKER = '\x04updates\x00';

describe('MongoStore claims: a write whose outcome is unknown keeps its claim', { skip: server ? false : skipReason('mongo') }, () => {
  it(`B is never answered true while the final record lacks B's change (${TRIALS} trials)`, async () => {
    const proxy = await stallProxy(Number(new URL(server!.url).port));
    const dbName = `kls_unknown_${randomUUID().slice(0, 8)}`;
    const directClient = await new MongoClient(server!.url).connect();
    const stalledClient = await new MongoClient(`mongodb://127.0.0.1:${proxy.port}/`, { serverSelectionTimeoutMS: 2000 }).connect();
    cleanup.push(() => directClient.close(), () => stalledClient.close(true), () => proxy.close());
    const directCollection = directClient.db(dbName).collection<MongoSessionDocument>('sessions');
    const b = new MongoStore({ collection: directCollection, timeoutMs: 5000, claims: true });
    const a = new MongoStore({ collection: stalledClient.db(dbName).collection<MongoSessionDocument>('sessions'), timeoutMs: TIMEOUT, claims: true });
    await a.ensureIndexes();
    // Release A's held bytes the moment B sends its replace: both reach the server together.
    let onBReplace: (() => void) | undefined;
    const original = directCollection.replaceOne.bind(directCollection) as (...args: unknown[]) => Promise<unknown>;
    (directCollection as unknown as Record<string, unknown>).replaceOne = (...args: unknown[]) => {
      const fire = onBReplace;
      onBReplace = undefined;
      fire?.();
      return original(...args);
    };

    let lost = 0;
    let bApplied = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const sid = `unk${randomUUID().replace(/-/g, '')}`;
      assert.equal(await b.write(sid, '{"n":0}', 1, TTL, null), true);
      const stall = proxy.stallNextWrite(UPDATE_MARKER);
      const error = await a.write(sid, '{"n":"A"}', 2, TTL, 1).then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof StoreError, `A must fail (its write is held): ${String(error)}`);
      await stall.caught;
      let delivered: Promise<void> | undefined;
      onBReplace = () => void (delivered = stall.deliver());
      const bWrote = await b.write(sid, '{"n":"B"}', 2, TTL, 1);
      onBReplace = undefined;
      await (delivered ?? stall.deliver());
      const final = await b.read(sid);
      assert.ok(final?.version === 2 || final?.version === 1, `unexpected final ${JSON.stringify(final)}`);
      if (bWrote) {
        bApplied++;
        if (final?.value !== '{"n":"B"}') lost++;
      }
    }
    assert.equal(lost, 0, `B answered true but the final record lacked B's change in ${lost} of ${TRIALS} trials (B applied ${bApplied})`);
  });
});
