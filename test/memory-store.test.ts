import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { MemoryStore } from '../src/index.js';

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

  it('sweeps expired records on an unref\'d timer and enforces expiry on read', async () => {
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

  it('stores copies: changing an object after saving it changes nothing stored', async () => {
    const store = new MemoryStore();
    const data = { a: 1 };
    await store.set('k', JSON.stringify(data), 60_000);
    data.a = 2;
    assert.equal(await store.get('k'), '{"a":1}');
    await store.close();
  });
});
