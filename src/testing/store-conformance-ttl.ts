/**
 * The TTL part of the store conformance suite: a record is readable until its
 * TTL and gone after it, `set` replaces the TTL, `touch` extends it without
 * reviving what expired or was destroyed. The only waits are past a TTL:
 * expiry is the behaviour under test, never a way to synchronise.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ConformanceContext, LONG_TTL, pastTtl } from './store-conformance-context.js';

/** Expiry must have happened within this many TTLs after the write. */
const EXPIRY_BOUND_FACTOR = 4;

/** The TTLs the suite runs with (see `ConformanceOptions` for their meaning and defaults). */
export interface TtlSettings {
  readonly shortTtlMs: number;
  readonly readableTtlMs: number;
  readonly earlyExpiryMs: number;
}

/** Declare the TTL tests inside the current `describe`. */
export function ttlConformance(ctx: ConformanceContext, { shortTtlMs, readableTtlMs, earlyExpiryMs }: TtlSettings): void {
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
}
