/** MemoryStore against the shared store conformance suite. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MemoryStore } from '../../src/memory/store.js';
import { storeConformance } from './conformance.js';

storeConformance('memory', () => new MemoryStore({ max: 10_000, sweepIntervalMs: 60_000 }), {
  extraTests: () => {
    it('evicts the least recently used record past `max`', async () => {
      const store = new MemoryStore({ max: 2 });
      try {
        await store.set('a', '1', 60_000);
        await store.set('b', '2', 60_000);
        await store.get('a'); // a is now more recent than b
        await store.set('c', '3', 60_000);
        assert.equal(await store.get('b'), undefined);
        assert.equal(await store.get('a'), '1');
        assert.equal(await store.get('c'), '3');
      } finally {
        await store.close?.();
      }
    });
  },
});
