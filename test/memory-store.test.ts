import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import request from 'supertest';
import { MemoryStore } from '../src/index.js';
import { cookieHeader, makeApp, sidOf } from './helpers/app.js';

declare module '../src/index.js' {
  interface SessionData {
    savedValue?: number;
  }
}

describe('MemoryStore specifics', () => {
  it('is bounded: past `max` the least recently used record is evicted', async () => {
    const store = new MemoryStore({ max: 3 });
    await store.set('a', '1', 60_000);
    await store.set('b', '2', 60_000);
    await store.set('c', '3', 60_000);
    await store.get('a'); // a is now the most recently used
    await store.set('d', '4', 60_000);
    assert.equal(store.size, 3);
    assert.equal(await store.get('b'), undefined, 'b was the least recently used');
    assert.equal(await store.get('a'), '1');
    await store.close();
  });

  it('answers a read after the I/O already due, with the record as it was when read was called', async () => {
    // A network store's reply comes in a later turn; requests that arrived together must be able
    // to queue on one lock turn and answer together (docs/performance.md), so the embedded store
    // must not answer before the I/O callbacks of its turn.
    const store = new MemoryStore();
    await store.write('k', 'v1', 1, 60_000, null);
    const order: string[] = [];
    setImmediate(() => order.push('I/O callback due before the read'));
    const reading = store.read('k').then((record) => {
      order.push('read answered');
      return record;
    });
    const getting = store.get('k');
    assert.equal(await store.write('k', 'v2', 2, 60_000, 1), true, 'a write issued after the read');
    assert.deepEqual(await reading, { value: 'v1', version: 1 }, 'the read holds the record of its call, not a later one');
    assert.equal(await getting, 'v1');
    assert.deepEqual(order, ['I/O callback due before the read', 'read answered']);
    assert.deepEqual(await store.read('k'), { value: 'v2', version: 2 });
    await store.close();
  });

  it("sweeps expired records on an unref'd timer and enforces expiry on read", async () => {
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    try {
      const store = new MemoryStore({ sweepIntervalMs: 1000 });
      await store.set('short', 'x', 500);
      await store.set('long', 'y', 5000);
      mock.timers.tick(600);
      assert.equal(await store.get('short'), undefined, 'expired on read before any sweep');
      await store.set('short2', 'x', 500);
      mock.timers.tick(1000); // the sweep runs
      assert.equal(store.size, 1);
      assert.equal(await store.get('long'), 'y');
      await store.close();
    } finally {
      mock.timers.reset();
    }
  });

  it("keeps what was saved: changing the scope's data object after withLock returns changes nothing stored", async () => {
    // The store only ever receives a serialized string; what can go wrong is the
    // session layer handing out the object it saved (or caching it) so that a
    // reference kept past the scope changes the next request's data.
    const store = new MemoryStore();
    let kept: { savedValue?: number } | undefined;
    const app = makeApp({ master: store }, async (ctx) => {
      if (ctx.path === '/save') {
        await ctx.session.withLock((s) => {
          s.savedValue = 1;
          kept = s;
        });
        kept!.savedValue = 2; // outside the scope: must not reach the store or the next read
        ctx.body = 'saved';
      } else {
        ctx.body = { savedValue: (await ctx.session.get()).savedValue };
      }
    });
    const saved = await request(app.callback()).get('/save');
    assert.equal(saved.status, 200);
    assert.equal(kept?.savedValue, 2);
    const read = await request(app.callback()).get('/read').set('Cookie', cookieHeader(saved.headers['set-cookie']));
    assert.deepEqual(read.body, { savedValue: 1 });
    assert.match((await store.get(sidOf(saved)))!, /"savedValue":1/);
    await store.close();
  });
});
