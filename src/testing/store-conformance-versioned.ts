/**
 * The versioned-write part of the store conformance suite (VersionedStore in
 * src/contracts/store.ts): writes that refuse to overwrite newer data, so a
 * write that lands late can never erase what a later scope saved. Every
 * built-in server-side store has it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isVersioned, type VersionedStore } from '../contracts/store.js';
import { type ConformanceContext, LONG_TTL, pastTtl } from './store-conformance-context.js';

/** Declare the versioned-write tests (their own `describe`) inside the current one. */
export function versionedConformance(ctx: ConformanceContext, shortTtlMs: number): void {
  const { key } = ctx;
  const v = (): VersionedStore => {
    assert.ok(isVersioned(ctx.store), `${ctx.store.name} must implement read() and write() (VersionedStore)`);
    return ctx.store;
  };

  describe('versioned writes', () => {
    it('a record written with a version reads back with it; get() sees only the value', async () => {
      assert.equal(await v().write(key('ver-rt'), '{"a":1}', 1, LONG_TTL, null), true);
      assert.deepEqual(await v().read(key('ver-rt')), { value: '{"a":1}', version: 1 });
      assert.equal(await ctx.store.get(key('ver-rt')), '{"a":1}');
    });

    it('a record written by set() (or by hand) is version 0 and can be updated from it', async () => {
      await ctx.store.set(key('ver-0'), '{"a":0}', LONG_TTL);
      assert.deepEqual(await v().read(key('ver-0')), { value: '{"a":0}', version: 0 });
      assert.equal(await v().write(key('ver-0'), '{"a":1}', 1, LONG_TTL, 0), true);
      assert.deepEqual(await v().read(key('ver-0')), { value: '{"a":1}', version: 1 });
    });

    it('an insert (condition null) is refused when a record or a tombstone exists', async () => {
      await v().write(key('ver-ins'), '{"a":1}', 1, LONG_TTL, null);
      assert.equal(await v().write(key('ver-ins'), '{"b":1}', 1, LONG_TTL, null), false);
      assert.deepEqual(await v().read(key('ver-ins')), { value: '{"a":1}', version: 1 });
      await v().write(key('ver-ins-t'), undefined, 3, LONG_TTL, 'newer');
      assert.equal(await v().write(key('ver-ins-t'), '{"b":1}', 1, LONG_TTL, null), false);
    });

    it('a write expecting a version that moved on is refused and changes nothing (the late writer)', async () => {
      const k = key('ver-late');
      await v().write(k, '{"n":1}', 1, LONG_TTL, null);
      // Two scopes read version 1; the first to land wins, the late one is refused.
      assert.equal(await v().write(k, '{"n":2}', 2, LONG_TTL, 1), true);
      assert.equal(await v().write(k, '{"n":2,"late":true}', 2, LONG_TTL, 1), false);
      assert.equal(await v().write(k, '{"n":3}', 3, LONG_TTL, 2), true);
      assert.deepEqual(await v().read(k), { value: '{"n":3}', version: 3 });
    });

    it('a write expecting a version never recreates a deleted record', async () => {
      const k = key('ver-gone');
      await v().write(k, '{"n":1}', 1, LONG_TTL, null);
      assert.equal(await v().write(k, undefined, 2, 0, 1), true);
      assert.equal(await v().read(k), undefined);
      assert.equal(await ctx.store.get(k), undefined);
      assert.equal(await v().write(k, '{"n":2}', 2, LONG_TTL, 1), false);
      assert.equal(await ctx.store.get(k), undefined);
    });

    it('a delete expecting a version that moved on is refused', async () => {
      const k = key('ver-del-late');
      await v().write(k, '{"n":1}', 1, LONG_TTL, null);
      await v().write(k, '{"n":2}', 2, LONG_TTL, 1);
      assert.equal(await v().write(k, undefined, 2, 0, 1), false);
      assert.deepEqual(await v().read(k), { value: '{"n":2}', version: 2 });
    });

    it('a delete with a TTL leaves a tombstone: read shows it, get() does not, touch does not revive it', async () => {
      const k = key('ver-tomb');
      await v().write(k, '{"n":1}', 1, LONG_TTL, null);
      assert.equal(await v().write(k, undefined, 2, LONG_TTL, 1), true);
      assert.deepEqual(await v().read(k), { value: undefined, version: 2 });
      assert.equal(await ctx.store.get(k), undefined);
      await ctx.store.touch?.(k, LONG_TTL);
      assert.equal(await ctx.store.get(k), undefined);
      assert.equal(await v().write(k, '{"n":2}', 2, LONG_TTL, 1), false, 'a late write expecting the deleted version');
    });

    it('mirror writes (newer) apply in version order whatever order they arrive in', async () => {
      const k = key('ver-newer');
      assert.equal(await v().write(k, '{"n":3}', 3, LONG_TTL, 'newer'), true);
      assert.equal(await v().write(k, '{"n":2}', 2, LONG_TTL, 'newer'), false);
      assert.equal(await v().write(k, '{"n":3,"dup":1}', 3, LONG_TTL, 'newer'), false);
      assert.deepEqual(await v().read(k), { value: '{"n":3}', version: 3 });
      assert.equal(await v().write(k, '{"n":4}', 4, LONG_TTL, 'newer'), true);
      assert.deepEqual(await v().read(k), { value: '{"n":4}', version: 4 });
    });

    it('a mirror tombstone refuses older writes landing after it', async () => {
      const k = key('ver-newer-tomb');
      await v().write(k, '{"n":1}', 1, LONG_TTL, 'newer');
      assert.equal(await v().write(k, undefined, 3, LONG_TTL, 'newer'), true);
      assert.equal(await v().write(k, '{"n":2,"user":"x"}', 2, LONG_TTL, 'newer'), false);
      assert.equal(await ctx.store.get(k), undefined);
    });

    it('a tombstone expires with its TTL', async () => {
      const k = key('ver-tomb-ttl');
      await v().write(k, undefined, 5, shortTtlMs, 'newer');
      await pastTtl(Date.now() + shortTtlMs);
      assert.equal(await v().read(k), undefined);
      assert.equal(await v().write(k, '{"n":1}', 1, LONG_TTL, null), true);
    });

    it('of 20 concurrent writes expecting the same version exactly one applies', async () => {
      const k = key('ver-race');
      await v().write(k, '{"n":0}', 1, LONG_TTL, null);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => v().write(k, `{"n":${i}}`, 2, LONG_TTL, 1)));
      assert.equal(results.filter(Boolean).length, 1);
      const winner = results.indexOf(true);
      assert.deepEqual(await v().read(k), { value: `{"n":${winner}}`, version: 2 });
    });

    it('a version read back is the number written, up to 2^53 - 1', async () => {
      const k = key('ver-big');
      await v().write(k, '{"b":1}', Number.MAX_SAFE_INTEGER, LONG_TTL, null);
      assert.deepEqual(await v().read(k), { value: '{"b":1}', version: Number.MAX_SAFE_INTEGER });
    });
  });
}
