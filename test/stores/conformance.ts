/**
 * One conformance suite for every `Store` (the contract in src/stores/store.ts),
 * run by each test/stores/<name>.test.ts against a real server of its kind.
 *
 * Keys are unique per run (a random tag), so the suite can run against a
 * shared server (REDIS_URL…) without clearing it. The only waits are past a
 * TTL: expiry is the behaviour under test, never a way to synchronise.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Store } from '../../src/stores/store.js';

/** What store-specific tests get from the suite. */
export interface ConformanceContext {
  /** The store under test (created by the factory before the first test). */
  readonly store: Store;
  /** A key unique to this run: `<tag>-<label>` (label from `[A-Za-z0-9_:.-]`). */
  key(label: string): string;
}

export interface ConformanceOptions {
  /** Store-specific tests, declared inside the suite's `describe`. */
  extraTests?: (ctx: ConformanceContext) => void;
  /** Skip the whole suite with this reason (e.g. no server). */
  skip?: string | false | undefined;
  /** The short TTL of the expiry tests (ms). @default 50 */
  shortTtlMs?: number;
}

/** A TTL long enough never to expire during a test (ms). */
const LONG_TTL = 60_000;

/**
 * Declare the conformance suite for `name`. `factory` creates the store once
 * (before the first test); `store.close()` runs after the last.
 */
export function storeConformance(name: string, factory: () => Store | Promise<Store>, options: ConformanceOptions = {}): void {
  const { extraTests, skip = false, shortTtlMs = 50 } = options;
  const tag = `t${randomUUID().slice(0, 8)}`;
  let current: Store | undefined;
  const ctx: ConformanceContext = {
    get store(): Store {
      if (!current) throw new Error(`${name}: the store factory has not run (or failed)`);
      return current;
    },
    key: (label) => `${tag}-${label}`,
  };
  const { key } = ctx;

  /** Set with `shortTtlMs`; resolves to when the write completed (the latest the store can date it from). */
  async function setShort(k: string, value: string): Promise<number> {
    await ctx.store.set(k, value, shortTtlMs);
    return Date.now();
  }
  /** Wait until `shortTtlMs` (plus a margin) has passed since `writtenAt`. */
  async function pastShortTtl(writtenAt: number): Promise<void> {
    const wait = writtenAt + shortTtlMs + 25 - Date.now();
    if (wait > 0) await sleep(wait);
  }

  describe(`${name} store conformance`, { skip }, () => {
    before(async () => {
      current = await factory();
    });
    after(async () => {
      await current?.close?.();
    });

    it('has a name for logs and errors', () => {
      assert.equal(typeof ctx.store.name, 'string');
      assert.ok(ctx.store.name.length > 0);
    });

    it('get of an absent key resolves undefined', async () => {
      assert.equal(await ctx.store.get(key('never-written')), undefined);
    });

    it('set then get round-trips the record', async () => {
      const value = JSON.stringify({ count: 1, user: { id: 42 } });
      await ctx.store.set(key('round-trip'), value, LONG_TTL);
      assert.equal(await ctx.store.get(key('round-trip')), value);
    });

    it('set overwrites an existing record', async () => {
      await ctx.store.set(key('overwrite'), '{"v":1}', LONG_TTL);
      await ctx.store.set(key('overwrite'), '{"v":2}', LONG_TTL);
      assert.equal(await ctx.store.get(key('overwrite')), '{"v":2}');
    });

    it('destroy removes the record, and destroying an absent key resolves', async () => {
      await ctx.store.set(key('destroy'), '{"a":1}', LONG_TTL);
      await ctx.store.destroy(key('destroy'));
      assert.equal(await ctx.store.get(key('destroy')), undefined);
      await ctx.store.destroy(key('destroy'));
      await ctx.store.destroy(key('destroy-never-written'));
    });

    it('expiry is enforced on read', async () => {
      const start = Date.now();
      const writtenAt = await setShort(key('expires'), '{"e":1}');
      const early = await ctx.store.get(key('expires'));
      // Only conclusive when the read finished inside the TTL (a slow machine may not).
      if (Date.now() - start < shortTtlMs) assert.equal(early, '{"e":1}');
      await pastShortTtl(writtenAt);
      assert.equal(await ctx.store.get(key('expires')), undefined);
    });

    it('set again replaces the TTL', async () => {
      await setShort(key('re-ttl'), '{"r":1}');
      await ctx.store.set(key('re-ttl'), '{"r":2}', LONG_TTL);
      await pastShortTtl(Date.now());
      assert.equal(await ctx.store.get(key('re-ttl')), '{"r":2}');
    });

    it('touch extends the expiry without changing the record', async (t) => {
      if (!ctx.store.touch) return t.skip('this store has no touch()');
      const writtenAt = await setShort(key('touch'), '{"t":1}');
      await ctx.store.touch(key('touch'), LONG_TTL);
      await pastShortTtl(writtenAt);
      assert.equal(await ctx.store.get(key('touch')), '{"t":1}');
    });

    it('touch on an absent key does not create it', async (t) => {
      if (!ctx.store.touch) return t.skip('this store has no touch()');
      await ctx.store.touch(key('touch-absent'), LONG_TTL);
      assert.equal(await ctx.store.get(key('touch-absent')), undefined);
    });

    it('touch does not bring back an expired record', async (t) => {
      if (!ctx.store.touch) return t.skip('this store has no touch()');
      const writtenAt = await setShort(key('touch-expired'), '{"x":1}');
      await pastShortTtl(writtenAt);
      await ctx.store.touch(key('touch-expired'), LONG_TTL);
      assert.equal(await ctx.store.get(key('touch-expired')), undefined);
    });

    it('touch after destroy does not recreate the record', async (t) => {
      if (!ctx.store.touch) return t.skip('this store has no touch()');
      await ctx.store.set(key('touch-destroyed'), '{"d":1}', LONG_TTL);
      await ctx.store.destroy(key('touch-destroyed'));
      await ctx.store.touch(key('touch-destroyed'), LONG_TTL);
      assert.equal(await ctx.store.get(key('touch-destroyed')), undefined);
    });

    it('a TTL over 30 days is kept (not read as a date in 1970)', async () => {
      await ctx.store.set(key('long-ttl'), '{"l":1}', 40 * 24 * 3600_000);
      assert.equal(await ctx.store.get(key('long-ttl')), '{"l":1}');
    });

    it('round-trips unicode, control characters and line breaks exactly', async () => {
      const value = JSON.stringify({ s: 'héllo wörld — 日本語 🎉👩‍👩‍👧 \u2028\u2029 ç' }) +
        'raw: 日本語 🎉 \r\nEND\r\n\\\n\t\u0000\u0001 tail';
      await ctx.store.set(key('unicode'), value, LONG_TTL);
      assert.equal(await ctx.store.get(key('unicode')), value);
    });

    it('round-trips a 100 KB record', async () => {
      const value = JSON.stringify({ blob: 'x'.repeat(50_000), more: 'é'.repeat(25_000) });
      assert.ok(Buffer.byteLength(value) > 100_000);
      await ctx.store.set(key('big'), value, LONG_TTL);
      assert.equal(await ctx.store.get(key('big')), value);
    });

    it('keeps 1,000 concurrent sets on distinct keys', async () => {
      const keys = Array.from({ length: 1000 }, (_, i) => key(`many-${i}`));
      await Promise.all(keys.map((k, i) => ctx.store.set(k, `{"i":${i}}`, LONG_TTL)));
      const values = await Promise.all(keys.map((k) => ctx.store.get(k)));
      const wrong = values.flatMap((v, i) => (v === `{"i":${i}}` ? [] : [`${keys[i]}=${String(v)}`]));
      assert.deepEqual(wrong, [], `${wrong.length} of 1000 records missing or wrong`);
    });

    it('keeps keys with any characters of the sid charset plus ":" and "." apart', async () => {
      const labels = [
        'a', 'A', '0', '-', '_', '.', ':', '..', '::', 'a.b', 'a:b', 'a-b', 'a_b', 'A-Z_a-z.0-9:end',
        // a 43-character base64url sid, like the middleware generates
        'Zm9vYmFyLWJhei1xdXV4LTEyMzQ1Njc4OTAtX19fX18',
        'x'.repeat(64),
      ];
      for (const [i, label] of labels.entries()) await ctx.store.set(key(label), `{"k":${i}}`, LONG_TTL);
      for (const [i, label] of labels.entries()) assert.equal(await ctx.store.get(key(label)), `{"k":${i}}`, `key ${label}`);
      await ctx.store.destroy(key('a.b'));
      assert.equal(await ctx.store.get(key('a.b')), undefined);
      assert.equal(await ctx.store.get(key('a:b')), `{"k":${labels.indexOf('a:b')}}`);
    });

    extraTests?.(ctx);
  });
}
