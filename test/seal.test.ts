import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createKeyring, seal, unseal, type UnsealResult } from '../src/cookie/seal.js';

const KEY_A = 'a'.repeat(16) + 'A-secret-for-tests-0123456789'; // ≥ 32 chars
const KEY_B = randomBytes(32);
const T0 = Date.UTC(2030, 0, 1);

function ok(r: UnsealResult): string {
  assert.equal(r.ok, true, r.ok ? '' : `expected ok, got ${r.reason}`);
  return (r as { value: string }).value;
}

function reason(r: UnsealResult): string | undefined {
  return r.ok ? undefined : r.reason;
}

/** Flip one bit of the decoded bytes of part `i` of a sealed value and re-encode it canonically. */
function flipBit(sealed: string, i: number, bit = 0, byte = 0): string {
  const parts = sealed.split('.');
  const b = Buffer.from(parts[i]!, 'base64url');
  b[byte] = b[byte]! ^ (1 << bit);
  parts[i] = b.toString('base64url');
  return parts.join('.');
}

describe('seal/unseal: round trip', () => {
  for (const encrypt of [true, false]) {
    it(`${encrypt ? 'encrypted' : 'signed-only'}: strings of any content come back unchanged`, () => {
      const ring = createKeyring([KEY_A]);
      for (const text of ['', '{"count":1}', 'dots.in.it', 'new\nline', 'émoji 🍪 ünïcödé', 'x'.repeat(3000)]) {
        const s = seal(text, ring, { encrypt });
        assert.equal(ok(unseal(s, ring, { encrypt })), text);
      }
    });
  }

  it('property: any string round-trips in both modes, with raw key arrays too', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.boolean(), (text, encrypt) => {
        const s = seal(text, [KEY_B], { encrypt });
        assert.equal(ok(unseal(s, [KEY_B], { encrypt })), text);
      }),
      { numRuns: 200 },
    );
  });

  it('has the documented v1 format, cookie-safe, with a fresh IV per seal', () => {
    const ring = createKeyring([KEY_A]);
    const s1 = seal('same', ring);
    const s2 = seal('same', ring);
    assert.notEqual(s1, s2, 'a random IV makes two seals of one plaintext differ');
    const parts = s1.split('.');
    assert.equal(parts.length, 6);
    assert.equal(parts[0], 'v1');
    assert.equal(parts[1], 'e');
    assert.equal(parts[2]!.length, 4, 'key id');
    assert.equal(Buffer.from(parts[3]!, 'base64url').length, 12, 'iv');
    assert.equal(Buffer.from(parts[5]!, 'base64url').length, 16, 'tag');
    assert.match(s1, /^[A-Za-z0-9_.-]+$/);
    assert.notEqual(s1.split('.')[3], s2.split('.')[3]);

    const signed = seal('same', ring, { encrypt: false }).split('.');
    assert.equal(signed.length, 5);
    assert.deepEqual(signed.slice(0, 3), ['v1', 's', parts[2]]);
    assert.equal(Buffer.from(signed[4]!, 'base64url').length, 32, 'HMAC-SHA256');
  });

  it('encrypted values do not contain the plaintext; signed-only values are readable', () => {
    const ring = createKeyring([KEY_A]);
    const secret = 'user=alice;role=admin';
    const enc = seal(secret, ring).split('.');
    assert.ok(!Buffer.from(enc[4]!, 'base64url').toString('latin1').includes('alice'));
    const signed = seal(secret, ring, { encrypt: false }).split('.');
    // Anyone holding the cookie can read it: this is what the README warns about.
    assert.equal(Buffer.from(signed[3]!, 'base64url').toString('utf8'), `0.${secret}`);
  });
});

describe('seal/unseal: key rotation', () => {
  const oldKey = 'old-key-'.padEnd(40, 'o');
  const newKey = 'new-key-'.padEnd(40, 'n');

  it('a value sealed with the old key still opens after a new key is put first, and reports the old index', () => {
    const s = seal('data', [oldKey]);
    const r = unseal(s, [newKey, oldKey]);
    assert.equal(ok(r), 'data');
    assert.equal((r as { keyIndex: number }).keyIndex, 1);
  });

  it('new seals use the first key: they open with the new key alone, not with the old one alone', () => {
    const s = seal('data', [newKey, oldKey]);
    assert.equal(s.split('.')[2], seal('x', [newKey]).split('.')[2], 'key id of the first key');
    assert.equal(ok(unseal(s, [newKey])), 'data');
    assert.equal(reason(unseal(s, [oldKey])), 'unknown-key');
    assert.equal((unseal(s, [newKey, oldKey]) as { keyIndex: number }).keyIndex, 0);
  });

  it('once the old key is dropped, its values are refused as re-keyed (unknown-key), in both modes', () => {
    for (const encrypt of [true, false]) {
      const s = seal('data', [oldKey], { encrypt });
      assert.equal(reason(unseal(s, [newKey], { encrypt })), 'unknown-key');
    }
  });

  it('string and Buffer keys are distinct keys (no accidental equivalence)', () => {
    const buf = randomBytes(32);
    const str = buf.toString('base64'); // 44 chars: a string key is its UTF-8 text, not decoded
    assert.equal(reason(unseal(seal('d', [buf]), [str])), 'unknown-key');
  });
});

describe('seal/unseal: tampering and bad input never throw', () => {
  const ring = createKeyring([KEY_A]);
  const enc = seal('{"user":"alice"}', ring, { ttlMs: 60_000, now: T0 });
  const signed = seal('{"user":"alice"}', ring, { encrypt: false, ttlMs: 60_000, now: T0 });
  const open = (s: string, encrypt = true) => unseal(s, ring, { encrypt, now: T0 });

  it('the untouched values open', () => {
    assert.equal(ok(open(enc)), '{"user":"alice"}');
    assert.equal(ok(open(signed, false)), '{"user":"alice"}');
  });

  it('a flipped bit in the IV, the ciphertext (first and last byte) or the tag is refused as tampered', () => {
    assert.equal(reason(open(flipBit(enc, 3))), 'tampered', 'iv');
    assert.equal(reason(open(flipBit(enc, 4))), 'tampered', 'ciphertext first byte');
    const ctLen = Buffer.from(enc.split('.')[4]!, 'base64url').length;
    assert.equal(reason(open(flipBit(enc, 4, 7, ctLen - 1))), 'tampered', 'ciphertext last byte');
    assert.equal(reason(open(flipBit(enc, 5))), 'tampered', 'tag first byte');
    assert.equal(reason(open(flipBit(enc, 5, 7, 15))), 'tampered', 'tag last byte');
  });

  it('every single-bit flip of every byte of an encrypted value is refused', () => {
    const parts = enc.split('.');
    for (const i of [3, 4, 5]) {
      const len = Buffer.from(parts[i]!, 'base64url').length;
      for (let byte = 0; byte < len; byte++) {
        for (let bit = 0; bit < 8; bit++) {
          assert.equal(open(flipBit(enc, i, bit, byte)).ok, false, `part ${i} byte ${byte} bit ${bit}`);
        }
      }
    }
  });

  it('signed-only: a changed payload or MAC is refused (readable, not forgeable)', () => {
    assert.equal(reason(open(flipBit(signed, 3), false)), 'tampered', 'payload');
    assert.equal(reason(open(flipBit(signed, 4), false)), 'tampered', 'mac');
    // Forge: a new readable payload with the old MAC.
    const parts = signed.split('.');
    parts[3] = Buffer.from(`0.{"user":"admin"}`).toString('base64url');
    assert.equal(reason(open(parts.join('.'), false)), 'tampered');
    // Forge: the attacker's own key cannot produce a value we accept.
    const attacker = seal('{"user":"admin"}', [randomBytes(32)], { encrypt: false });
    assert.equal(reason(open(attacker, false)), 'unknown-key');
    // Even when the attacker copies our key id into the header.
    const forged = attacker.split('.');
    forged[2] = parts[2]!;
    assert.equal(reason(open(forged.join('.'), false)), 'tampered');
  });

  it('a changed header is refused: version, mode and key id are authenticated', () => {
    assert.equal(reason(open(enc.replace(/^v1\./, 'v2.'))), 'version');
    assert.equal(reason(open(enc.replace(/^v1\./, 'v0.'))), 'version');
    assert.equal(reason(open(enc.replace(/^v1\.e\./, 'v1.s.'))), 'mode');
    assert.equal(reason(open(enc.replace(/^v1\.e\./, 'v1.x.'))), 'malformed');
    assert.equal(reason(open(enc, false)), 'mode', 'encrypted value given to a signed-only reader');
    assert.equal(reason(open(signed, true)), 'mode', 'signed value given to an encrypting reader');
    assert.equal(reason(open(flipBit(enc, 2))), 'unknown-key');
  });

  it('a value sealed for another purpose (cookie name) is refused', () => {
    const s = seal('d', ring, { purpose: 'session' });
    assert.equal(ok(unseal(s, ring, { purpose: 'session' })), 'd');
    assert.equal(reason(unseal(s, ring, { purpose: 'auth' })), 'tampered');
    assert.equal(reason(unseal(s, ring)), 'tampered');
    const sig = seal('d', ring, { purpose: 'session', encrypt: false });
    assert.equal(reason(unseal(sig, ring, { purpose: 'auth', encrypt: false })), 'tampered');
  });

  it('every truncation of a sealed value is refused', () => {
    for (const [s, encrypt] of [
      [enc, true],
      [signed, false],
    ] as const) {
      for (let len = 0; len < s.length; len++) {
        const r = open(s.slice(0, len), encrypt);
        assert.equal(r.ok, false, `prefix of length ${len}`);
      }
      // Dropping a whole part, or adding one.
      const parts = s.split('.');
      assert.equal(reason(open(parts.slice(0, -1).join('.'), encrypt)), 'malformed');
      assert.equal(reason(open(`${s}.AAAA`, encrypt)), 'malformed');
    }
  });

  it('non-canonical base64url spellings and foreign characters are refused', () => {
    const parts = enc.split('.');
    const tag = parts[5]!; // 22 chars for 16 bytes: the last char carries 4 unused bits
    const last = tag.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sameBits = alphabet[(alphabet.indexOf(last) & ~0b1111) | ((alphabet.indexOf(last) + 1) & 0b1111)]!;
    assert.deepEqual(Buffer.from(tag.slice(0, -1) + sameBits, 'base64url'), Buffer.from(tag, 'base64url'));
    parts[5] = tag.slice(0, -1) + sameBits;
    assert.equal(reason(open(parts.join('.'))), 'malformed');
    assert.equal(reason(open(enc.replace(/\.([^.]*)$/, '.$1=='))), 'malformed', 'padding');
    const plus = enc.split('.');
    plus[3] = `+${plus[3]!.slice(1)}`;
    assert.equal(reason(open(plus.join('.'))), 'malformed', 'standard base64 alphabet');
    const space = enc.split('.');
    space[4] = ` ${space[4]}`;
    assert.equal(reason(open(space.join('.'))), 'malformed', 'whitespace (Buffer.from would skip it)');
  });

  it('garbage of every shape is refused without throwing', () => {
    for (const g of [
      '',
      '.',
      '....',
      'v1',
      'v1.',
      'v1.e',
      'v1.e.....',
      'null',
      '{}',
      '%%%',
      ' ',
      'v1.e.AAAA.AAAA.AAAA.AAAA',
      'v1.s.AAAA.AAAA.AAAA',
    ]) {
      assert.equal(open(g).ok, false, JSON.stringify(g));
      assert.equal(open(g, false).ok, false, JSON.stringify(g));
    }
    for (const g of [undefined, null, 42, {}, [], Buffer.from(enc)]) {
      assert.equal(reason(unseal(g, ring)), 'malformed');
    }
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.boolean(), (text, encrypt) => {
        assert.equal(unseal(text, ring, { encrypt }).ok, false);
        assert.equal(unseal(`v1.${encrypt ? 'e' : 's'}.${text}`, ring, { encrypt }).ok, false);
      }),
      { numRuns: 500 },
    );
  });

  it('oversized input is refused before any work', () => {
    assert.equal(reason(unseal('v1.e.' + 'A'.repeat(20_000), ring)), 'too-large');
    assert.equal(reason(unseal(enc, ring, { maxLength: 10, now: T0 })), 'too-large');
  });
});

describe('seal/unseal: expiry inside the seal', () => {
  const ring = createKeyring([KEY_A]);

  for (const encrypt of [true, false]) {
    it(`${encrypt ? 'encrypted' : 'signed-only'}: opens until the expiry, refused as expired from then on (injected clock)`, () => {
      const s = seal('d', ring, { encrypt, ttlMs: 1000, now: T0 });
      const r = unseal(s, ring, { encrypt, now: T0 + 999 });
      assert.equal(ok(r), 'd');
      assert.equal((r as { expiresAt: number }).expiresAt, T0 + 1000);
      assert.equal(reason(unseal(s, ring, { encrypt, now: T0 + 1000 })), 'expired');
      assert.equal(reason(unseal(s, ring, { encrypt, now: T0 + 10 ** 9 })), 'expired');
    });
  }

  it('a client cannot extend the expiry: it is authenticated with the data', () => {
    const s = seal('d', ring, { encrypt: false, ttlMs: 1000, now: T0 }).split('.');
    s[3] = Buffer.from(`${T0 + 10 ** 9}.d`).toString('base64url');
    assert.equal(reason(unseal(s.join('.'), ring, { encrypt: false, now: T0 })), 'tampered');
  });

  it('without ttlMs the value does not expire by itself', () => {
    const r = unseal(seal('d', ring), ring, { now: T0 + 10 ** 12 });
    assert.equal(ok(r), 'd');
    assert.equal((r as { expiresAt: number | undefined }).expiresAt, undefined);
  });

  it('rejects a non-positive ttl when sealing (a programming error, thrown)', () => {
    for (const ttlMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => seal('d', ring, { ttlMs }), TypeError);
    }
  });
});

describe('createKeyring: key validation', () => {
  it('accepts strings of ≥ 32 characters and 32-byte Buffers/Uint8Arrays', () => {
    assert.equal(createKeyring(['x'.repeat(32)]).keys.length, 1);
    assert.equal(createKeyring([randomBytes(32), new Uint8Array(32).fill(7), 'k'.repeat(64)]).keys.length, 3);
  });

  it('rejects short strings, wrong-size buffers and other values with a message naming the fix', () => {
    const bad: unknown[] = [
      '',
      'short',
      'x'.repeat(31),
      randomBytes(16),
      randomBytes(31),
      randomBytes(33),
      randomBytes(64),
      42,
      null,
      undefined,
      {},
    ];
    for (const key of bad) {
      assert.throws(
        () => createKeyring([key as string]),
        (err: unknown) => err instanceof TypeError && /keys\[0\]/.test(err.message) && /openssl rand -base64 32/.test(err.message),
        String(key),
      );
    }
    assert.throws(() => createKeyring(['x'.repeat(40), 'short']), /keys\[1\]/);
  });

  it('rejects an empty or missing key list', () => {
    assert.throws(() => createKeyring([]), /non-empty array/);
    // @ts-expect-error JS callers
    assert.throws(() => createKeyring(undefined), /non-empty array/);
    // @ts-expect-error JS callers
    assert.throws(() => createKeyring('x'.repeat(40)), /non-empty array/);
  });

  it('only keyrings made by createKeyring count as keyrings (an options-shaped object is rejected)', () => {
    // @ts-expect-error JS callers
    assert.throws(() => seal('d', { keys: ['x'.repeat(40)] }), /non-empty array/);
  });

  it('never prints the key in the error', () => {
    const secret = 'hunter2-but-longer';
    assert.throws(
      () => createKeyring([secret]),
      (err: Error) => !err.message.includes(secret),
    );
  });

  it("copies Buffer keys: changing the caller's buffer afterwards changes nothing", () => {
    const buf = randomBytes(32);
    const ring = createKeyring([buf]);
    const s = seal('d', ring);
    buf.fill(0);
    assert.equal(ok(unseal(s, ring)), 'd');
  });
});
