/**
 * The basic part of the store conformance suite: get, set, destroy, and that
 * records and keys come back exactly as written (unicode, size, many at once,
 * every character of the sid charset).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { type ConformanceContext, LONG_TTL } from './store-conformance-context.js';

/** Declare the get/set/destroy tests inside the current `describe`. */
export function basicConformance(ctx: ConformanceContext): void {
  const { key } = ctx;

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
}
