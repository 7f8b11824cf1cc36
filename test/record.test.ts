/**
 * The stored record (src/core/record.ts): data plus the `$session` settings, in the
 * exact format earlier releases wrote and read, with the data serialized once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonSerializer, SerializationError, type Serializer } from '../src/index.js';
import { RecordFormat } from '../src/core/record.js';

const DAY = 86_400_000;

describe('the record format', () => {
  it('writes what JSON.stringify({ ...data, $session }) writes, serializing the data once, and reads it back', () => {
    let calls = 0;
    const counting: Serializer = { stringify: (d) => (calls++, JSON.stringify(d)), parse: jsonSerializer.parse };
    const format = new RecordFormat({ serializer: jsonSerializer, ttl: DAY, absoluteTtl: undefined });
    const data = { user: { id: 7 }, '1': 'x', cart: ['a'], gone: undefined };
    const meta = { ttl: 60_000, remember: false as const };
    const value = format.encode(data, meta);
    assert.equal(value, JSON.stringify({ ...data, $session: meta }));
    assert.deepEqual(format.decode(value!), { data: { user: { id: 7 }, '1': 'x', cart: ['a'] }, meta });
    // A custom serializer gets the whole record in one call (it may not be JSON).
    const custom = new RecordFormat({ serializer: counting, ttl: DAY, absoluteTtl: undefined });
    calls = 0;
    assert.equal(custom.encode({ a: 1 }, undefined), '{"a":1}');
    assert.equal(calls, 1);
    assert.deepEqual(custom.decode(custom.encode({ a: 1 }, meta)!), { data: { a: 1 }, meta });
  });

  it('empty data is no record, with or without settings; the reserved key is refused', () => {
    const format = new RecordFormat({ serializer: jsonSerializer, ttl: DAY, absoluteTtl: DAY });
    assert.equal(format.encode({}, { created: 1 }), undefined);
    assert.equal(format.encode({ a: undefined }, { created: 1 }), undefined);
    assert.throws(() => format.encode({ $session: 1 }, undefined), SerializationError);
  });

  it('settings read back are trusted only within the configured limits', () => {
    const format = new RecordFormat({ serializer: jsonSerializer, ttl: 1000, absoluteTtl: undefined });
    const decoded = format.decode(JSON.stringify({ a: 1, $session: { ttl: 10 * DAY, remember: 'no', created: 'x' } }));
    assert.deepEqual(decoded, { data: { a: 1 }, meta: { ttl: 1000 } });
    assert.equal(format.decode('[1]'), undefined);
    assert.equal(format.ttl(decoded!.meta), 1000);
  });
});
