/**
 * One conformance suite for every `Store` (the contract in src/contracts/store.ts),
 * run by each of our store tests against a real server of its kind, and shipped
 * to store authors as `koa-locked-session/testing`.
 *
 * Keys are unique per run (a random tag), so the suite can run against a
 * shared server (REDIS_URL…) without clearing it. The only waits are past a
 * TTL: expiry is the behaviour under test, never a way to synchronise.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isVersioned, type Store, type VersionedStore } from '../contracts/store.js';

/** What store-specific tests get from the suite. */
export interface ConformanceContext {
  /** The store under test (created by the factory before the first test). */
  readonly store: Store;
  /** A key unique to this run: `<tag>-<label>` (label from `[A-Za-z0-9_:.-]`). */
  key(label: string): string;
}

/** Options of {@link storeConformance}. */
export interface ConformanceOptions {
  /** Store-specific tests, declared inside the suite's `describe`. */
  extraTests?: (ctx: ConformanceContext) => void;
  /** Skip the whole suite with this reason (e.g. no server). */
  skip?: string | false | undefined;
  /** The short TTL of tests that only wait for an expiry (ms). @default 50 */
  shortTtlMs?: number;
  /**
   * The TTL of tests that must act on a record inside its TTL (read it, touch it)
   * before waiting for the expiry: long enough for one call on a slow machine (ms).
   * @default 1000
   */
  readableTtlMs?: number;
  /**
   * How long before its TTL the store may lose a record (ms). Only for a store
   * with a known, documented gap (memcached's one-second clock). @default 0
   */
  earlyExpiryMs?: number;
  /**
   * Whether the store must pass the versioned-write tests (VersionedStore).
   * `false` only for stores that cannot write conditionally (adapted peer stores).
   * @default true
   */
  versioned?: boolean;
}

/** A TTL long enough never to expire during a test (ms). */
const LONG_TTL = 60_000;
/** Expiry must have happened within this many TTLs after the write. */
const EXPIRY_BOUND_FACTOR = 4;

/** Wait until the wall clock has passed `at` (ms), plus a margin for the store's clock granularity. */
async function pastTtl(at: number): Promise<void> {
  const wait = at + 25 - Date.now();
  if (wait > 0) await sleep(wait);
}

/**
 * Declare the conformance suite for `name`. `factory` creates the store once
 * (before the first test); `store.close()` runs after the last.
 */
export function storeConformance(name: string, factory: () => Store | Promise<Store>, options: ConformanceOptions = {}): void {
  const { extraTests, skip = false, shortTtlMs = 50, readableTtlMs = 1000, earlyExpiryMs = 0, versioned = true } = options;
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
    await pastTtl(writtenAt + shortTtlMs);
  }
  /**
   * Read `k` until the record is gone; resolves to when the read that saw it gone
   * finished. Every read before that must return `value`. Fails when the record
   * is still there `EXPIRY_BOUND_FACTOR` TTLs after the write (expiry is the
   * behaviour under test, so the bound is a multiple of the TTL, not a constant).
   */
  async function pollUntilAbsent(k: string, value: string, writeStarted: number, ttlMs: number): Promise<number> {
    const deadline = writeStarted + ttlMs * EXPIRY_BOUND_FACTOR;
    for (;;) {
      const got = await ctx.store.get(k);
      const readAt = Date.now();
      if (got === undefined) return readAt;
      assert.equal(got, value);
      assert.ok(readAt < deadline, `${k} still readable ${readAt - writeStarted} ms after a write with a ${ttlMs} ms TTL`);
      await sleep(Math.max(5, ttlMs / 20));
    }
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

    it('expiry is enforced on read: readable until its TTL, gone after it', async () => {
      // A TTL long enough to read within on any machine (asserted, never skipped),
      // then reads until the record is gone, bounded by a multiple of the TTL.
      const k = key('expires');
      const writeStarted = Date.now();
      await ctx.store.set(k, '{"e":1}', readableTtlMs);
      assert.equal(await ctx.store.get(k), '{"e":1}', 'readable right after the write, inside its TTL');
      const goneAt = await pollUntilAbsent(k, '{"e":1}', writeStarted, readableTtlMs);
      // The store dates the record at the earliest when the write started, so a
      // read that finds it gone cannot have finished before that plus the TTL.
      assert.ok(
        goneAt >= writeStarted + readableTtlMs - earlyExpiryMs,
        `gone ${goneAt - writeStarted} ms after the write of a ${readableTtlMs} ms TTL`,
      );
    });

    it('set again replaces the TTL', async () => {
      await setShort(key('re-ttl'), '{"r":1}');
      await ctx.store.set(key('re-ttl'), '{"r":2}', LONG_TTL);
      await pastShortTtl(Date.now());
      assert.equal(await ctx.store.get(key('re-ttl')), '{"r":2}');
    });

    it('touch extends the expiry without changing the record', async (t) => {
      if (!ctx.store.touch) return t.skip('this store has no touch()');
      // The touch must land inside the first TTL: a TTL long enough on any machine.
      const k = key('touch');
      const writeStarted = Date.now();
      await ctx.store.set(k, '{"t":1}', readableTtlMs);
      await ctx.store.touch(k, LONG_TTL);
      assert.equal(await ctx.store.get(k), '{"t":1}', 'touched inside its TTL');
      await pastTtl(writeStarted + readableTtlMs);
      assert.equal(await ctx.store.get(k), '{"t":1}', 'still there after the first TTL');
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
      const value =
        JSON.stringify({ s: 'héllo wörld — 日本語 🎉👩‍👩‍👧 \u2028\u2029 ç' }) + 'raw: 日本語 🎉 \r\nEND\r\n\\\n\t\u0000\u0001 tail';
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
        'a',
        'A',
        '0',
        '-',
        '_',
        '.',
        ':',
        '..',
        '::',
        'a.b',
        'a:b',
        'a-b',
        'a_b',
        'A-Z_a-z.0-9:end',
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

    if (versioned) versionedConformance(ctx, () => pastShortTtl(Date.now()), shortTtlMs);
    else it('is not versioned (plain writes): the adapter must not pretend otherwise', () => assert.equal(isVersioned(ctx.store), false));

    extraTests?.(ctx);
  });
}

/**
 * The versioned-write contract (VersionedStore in src/contracts/store.ts): writes
 * that refuse to overwrite newer data, so a write that lands late can never
 * erase what a later scope saved. Every built-in server-side store has it.
 */
function versionedConformance(ctx: ConformanceContext, waitShortTtl: () => Promise<void>, shortTtlMs: number): void {
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
      await waitShortTtl();
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
