/**
 * Bad input, by property: random Cookie headers (and random `x-session-id`
 * headers for the header transport) sent over raw TCP to a real app.
 *
 * For every request:
 * - never a 5xx (Node itself answers 400 to bytes HTTP forbids and 431 past its
 *   16 KB header limit; the app answers 200);
 * - every key the store is called with is `prefix + 43 chars of base64url` and
 *   a sid this server issued (Set-Cookie / response header), never a value a
 *   client chose;
 * - the sid the handle accepts is exactly the one an independent oracle
 *   predicts (first `sid` cookie, quotes stripped, Keygrip signature under one
 *   of `app.keys`), and when a value was present but refused,
 *   `session:invalid` fired exactly once with the reason the oracle predicts.
 *
 * Requests are written byte-for-byte on a socket (no HTTP client that would
 * refuse or normalise odd bytes); the oracle works on what the server sees:
 * the bytes decoded as latin1, leading/trailing whitespace trimmed, repeated
 * headers joined (`; ` for Cookie, `, ` for other headers).
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type Koa from 'koa';
import { MemoryLocker, MemoryStore, type SessionHandle } from '../../src/index.js';
import { CountingStore, listen, makeApp } from '../helpers/app.js';

/** `makeApp` signs with these; the first signs, both verify. */
const KEYS = ['test-key-1', 'test-key-0'] as const;
const PREFIX = 'p:';
const KEY_FORMAT = /^p:[A-Za-z0-9_-]{43}$/;
/** The documented sid format (src/sid/sid.ts): what passes the format check. */
const SID_FORMAT = /^[A-Za-z0-9_-]{16,128}$/;
const HEADER = 'x-session-id';
const NUM_RUNS = Number(process.env.PROPERTY_RUNS ?? 150);
/** `PROPERTY_STATS=1` prints how the generated inputs were classified (to check the generators hit every case). */
const stats = new Map<string, number>();
const tally = (label: string) => stats.set(label, (stats.get(label) ?? 0) + 1);
process.once('exit', () => {
  if (process.env.PROPERTY_STATS) console.log(Object.fromEntries([...stats].sort()));
});

type Data = { n?: number };
const handle = (ctx: Koa.Context) => ctx.session as unknown as SessionHandle<Data>;

// ---------------------------------------------------------------------------
// A raw HTTP/1.1 client: the request head goes out exactly as given.

interface RawResponse {
  status: number;
  headers: Array<[string, string]>;
  body: string;
}

function rawRequest(port: number, head: Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1');
    const settle = (error?: Error) => {
      const text = Buffer.concat(chunks).toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})[^\r\n]*\r\n/.exec(text);
      if (!match) {
        reject(new Error(`no HTTP response (${error?.message ?? 'connection closed'}); got ${JSON.stringify(text.slice(0, 200))}`));
        return;
      }
      const end = text.indexOf('\r\n\r\n');
      const lines = text
        .slice(match[0].length, end < 0 ? undefined : end)
        .split('\r\n')
        .filter(Boolean);
      const headers = lines.map((line): [string, string] => {
        const colon = line.indexOf(':');
        return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
      });
      resolve({ status: Number(match[1]), headers, body: end < 0 ? '' : text.slice(end + 4) });
    };
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.once('error', settle);
    socket.once('close', () => settle());
    socket.end(head);
  });
}

const CRLF = Buffer.from('\r\n');

/** `GET path` with each `[name, value bytes]` as its own header line. */
function requestHead(path: string, lines: ReadonlyArray<readonly [string, Buffer]>): Buffer {
  return Buffer.concat([
    Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n`),
    ...lines.flatMap(([name, value]) => [Buffer.from(`${name}: `), value, CRLF]),
    CRLF,
  ]);
}

/** What Node hands the app for repeated header lines: each value trimmed, then joined. */
function serverView(values: readonly Buffer[], joiner: string): string {
  return values.map((v) => v.toString('latin1').replace(/^[ \t]+|[ \t]+$/g, '')).join(joiner);
}

// ---------------------------------------------------------------------------
// Oracles, written from RFC 6265 / the documented contract, not from src.

/** Keygrip's signature of `data` under `key` (HMAC-SHA1, base64 made URL-safe, no padding). */
function keygrip(data: string, key: string): string {
  return createHmac('sha1', key)
    .update(data)
    .digest('base64')
    .replace(/\/|\+|=/g, (c) => ({ '/': '_', '+': '-', '=': '' })[c]!);
}

/** The value of the first cookie named `name` in a Cookie header as the server sees it (quotes stripped), or undefined. */
function firstCookie(header: string, name: string): string | undefined {
  for (const piece of header.split(';')) {
    const pair = piece.replace(/^ +/, '');
    if (!pair.startsWith(`${name}=`)) continue;
    const value = pair.slice(name.length + 1);
    return value.startsWith('"') ? value.slice(1, -1) : value;
  }
  return undefined;
}

type Expected = { accepted: string | null; invalid: Array<'bad-signature' | 'bad-format'> };

/** What the cookie transport must make of a Cookie header. */
function expectCookie(header: string): Expected {
  const value = firstCookie(header, 'sid');
  if (value === undefined || value === '') return { accepted: null, invalid: [] };
  const sig = firstCookie(header, 'sid.sig');
  const signed = sig !== undefined && sig !== '' && KEYS.some((k) => keygrip(`sid=${value}`, k) === sig);
  // The format is judged first: a malformed sid is 'bad-format' whatever its signature.
  if (!SID_FORMAT.test(value)) return { accepted: null, invalid: ['bad-format'] };
  if (!signed) return { accepted: null, invalid: ['bad-signature'] };
  return { accepted: value, invalid: [] };
}

function headerMac(sid: string, key: string): Buffer {
  return createHmac('sha256', key).update(`${HEADER}=${sid}`).digest();
}

/** What the header transport must make of an `x-session-id` value. */
function expectHeader(value: string): Expected {
  if (value === '') return { accepted: null, invalid: [] };
  const dot = value.lastIndexOf('.');
  const sid = value.slice(0, dot);
  // The MAC must be exactly 43 chars of base64url: junk a lenient decoder would skip is refused as a format error.
  if (dot < 0 || !SID_FORMAT.test(sid) || !/^[A-Za-z0-9_-]{43}$/.test(value.slice(dot + 1)))
    return { accepted: null, invalid: ['bad-format'] };
  const mac = Buffer.from(value.slice(dot + 1), 'base64url');
  const signed = KEYS.some((k) => mac.equals(headerMac(sid, k)));
  return signed ? { accepted: sid, invalid: [] } : { accepted: null, invalid: ['bad-signature'] };
}

// ---------------------------------------------------------------------------
// The app under test.

interface Harness {
  store: CountingStore;
  locker: MemoryLocker;
  port: number;
  /** Every sid the server handed out, in order. */
  issued: string[];
  /** Total `session:invalid` events. */
  invalidTotal: () => number;
  close(): Promise<void>;
}

async function harness(options: Parameters<typeof makeApp>[0]): Promise<Harness> {
  const store = new CountingStore(new MemoryStore());
  const locker = new MemoryLocker();
  let invalidTotal = 0;
  const app = makeApp({ master: store, locker, prefix: PREFIX, ...options }, async (ctx) => {
    const accepted = handle(ctx).id ?? null; // the transport's verdict, before any store call
    if (ctx.path === '/inc') await handle(ctx).withLock((s) => void (s.n = (s.n ?? 0) + 1));
    else if (ctx.path === '/get') await handle(ctx).get();
    ctx.body = { accepted, invalid: ctx.state.invalid ?? [] };
  });
  app.on('session:invalid', (event: { ctx: Koa.Context; reason: string }) => {
    invalidTotal++;
    (event.ctx.state.invalid ??= []).push(event.reason);
  });
  const server = await listen(app);
  return {
    store,
    locker,
    port: Number(new URL(server.url).port),
    issued: [],
    invalidTotal: () => invalidTotal,
    close: server.close,
  };
}

/** sid values a response hands out: `sid=` Set-Cookies, or the header transport's `<sid>.<mac>`. */
function sidsSet(res: RawResponse, transport: 'cookie' | 'header'): string[] {
  if (transport === 'header') {
    return res.headers.filter(([n, v]) => n === HEADER && v !== '').map(([, v]) => v.slice(0, v.lastIndexOf('.')));
  }
  return res.headers
    .filter(([n]) => n === 'set-cookie')
    .map(([, v]) => /^sid=([^;]*)/.exec(v)?.[1])
    .filter((v): v is string => v !== undefined && v !== '');
}

/**
 * Send one request and check everything that must hold whatever the input.
 * `expected`: the oracle's verdict when the request reaches the app.
 */
async function check(
  h: Harness,
  transport: 'cookie' | 'header',
  head: Buffer,
  expected: Expected | undefined,
  allowed: readonly number[] = [200],
): Promise<RawResponse> {
  const keysBefore = h.store.keys.length;
  const invalidBefore = h.invalidTotal();
  const issuedBefore = new Set(h.issued);
  const res = await rawRequest(h.port, head);
  assert.ok(res.status < 500, `never a 5xx, got ${res.status}`);
  assert.ok(allowed.includes(res.status), `status ${res.status}, expected one of ${allowed.join(', ')}`);
  const newKeys = h.store.keys.slice(keysBefore);
  tally(`${transport} ${res.status}`);
  if (res.status !== 200) {
    assert.deepEqual(newKeys, [], `a request Node refused (${res.status}) never reaches a store`);
    assert.equal(h.invalidTotal(), invalidBefore);
    assert.equal(h.locker.size, 0);
    return res;
  }
  const body = JSON.parse(res.body) as { accepted: string | null; invalid: string[] };
  const handedOut = sidsSet(res, transport);
  for (const sid of handedOut) {
    assert.match(sid, /^[A-Za-z0-9_-]{43}$/, 'every sid handed out is 256 bits of base64url');
    assert.ok(sid === body.accepted || !issuedBefore.has(sid), "a sid handed out is the accepted one or brand new, never another client's");
    if (!h.issued.includes(sid)) h.issued.push(sid);
  }
  const issued = new Set(h.issued);
  for (const key of newKeys) {
    assert.match(key, KEY_FORMAT, `store key ${JSON.stringify(key.slice(0, 80))} is prefix + a 43-char sid`);
    assert.ok(issued.has(key.slice(PREFIX.length)), `store key ${key} is a sid this server issued`);
  }
  if (body.accepted !== null) assert.ok(issuedBefore.has(body.accepted), 'only a sid this server issued is ever accepted');
  assert.equal(h.invalidTotal() - invalidBefore, body.invalid.length, 'every session:invalid belongs to this request');
  tally(`${transport} ${body.accepted === null ? 'fresh' : 'accepted'}${body.invalid.length ? ` invalid:${body.invalid.join(',')}` : ''}`);
  if (expected) {
    assert.deepEqual(body, expected, 'the accepted sid and the session:invalid reasons are what the oracle predicts');
  }
  assert.equal(h.locker.size, 0, 'no lock left behind');
  return res;
}

/** Issue `n` sessions (each a fresh /inc); returns the harness with `issued` filled. */
async function seed(h: Harness, transport: 'cookie' | 'header', n: number): Promise<void> {
  for (let i = 0; i < n; i++) await check(h, transport, requestHead('/inc', []), { accepted: null, invalid: [] });
  assert.equal(h.issued.length, n);
}

// ---------------------------------------------------------------------------
// Generators. Values are specs materialised against the sids issued so far.

const B64URL = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'];
const b64url = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...B64URL), minLength: min, maxLength: max });

/** Characters HTTP allows in a header value (tab, visible ASCII, obs-text via UTF-8), minus the cookie separator. */
const headerSafe = (s: string) => !/[\x00-\x08\x0a-\x1f\x7f;]/.test(s);
const oddChars = fc.constantFrom(
  '=',
  '"',
  ' ',
  '\t',
  ',',
  '.',
  '%',
  '\\',
  '{',
  '}',
  'é',
  '€',
  '😀',
  '\u0301',
  '\ud800',
  '\udfff',
  '\u00a0',
  '\u2028',
);
const rawString = fc
  .string({
    unit: fc.oneof(fc.constantFrom(...B64URL), oddChars, fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })),
    maxLength: 60,
  })
  .filter(headerSafe);

type Mangle = 'std-b64' | 'pad' | 'case' | 'trunc' | 'extend' | 'pct' | 'space' | 'lower';
type ValueSpec =
  | { t: 'issued'; i: number }
  | { t: 'sig'; i: number; key: number }
  | { t: 'wrong-sig' }
  | { t: 'forged'; s: string }
  | { t: 'mangled'; i: number; how: Mangle }
  | { t: 'raw'; s: string }
  | { t: 'long'; n: number; c: string }
  | { t: 'empty' };

const valueSpec: fc.Arbitrary<ValueSpec> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('issued' as const), i: fc.nat() }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('sig' as const), i: fc.nat(), key: fc.nat({ max: 1 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('wrong-sig' as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('forged' as const), s: b64url(16, 128) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('mangled' as const),
      i: fc.nat(),
      how: fc.constantFrom<Mangle>('std-b64', 'pad', 'case', 'trunc', 'extend', 'pct', 'space', 'lower'),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('raw' as const), s: rawString }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('long' as const),
      n: fc.integer({ min: 129, max: 4000 }),
      c: fc.constantFrom('A', '-', 'é', '"'),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('empty' as const) }) },
);

function mangle(sid: string, how: Mangle): string {
  switch (how) {
    case 'std-b64':
      return `${sid.replace(/-/g, '+').replace(/_/g, '/')}+/`; // the standard alphabet: outside the format
    case 'pad':
      return `${sid}=`;
    case 'case':
      return sid.replace(/[a-z]/i, (c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase())) + 'A'; // another, well-formed, unissued sid
    case 'trunc':
      return sid.slice(0, 42);
    case 'extend':
      return `${sid}A`;
    case 'pct':
      return [...sid].map((c) => `%${c.charCodeAt(0).toString(16)}`).join('');
    case 'space':
      return `${sid.slice(0, 20)} ${sid.slice(20)}`;
    case 'lower':
      return sid.toLowerCase();
  }
}

function materialise(spec: ValueSpec, issued: readonly string[]): string {
  const pick = (i: number) => issued[i % issued.length]!;
  switch (spec.t) {
    case 'issued':
      return pick(spec.i);
    case 'sig':
      return keygrip(`sid=${pick(spec.i)}`, KEYS[spec.key]!);
    case 'wrong-sig':
      return keygrip(`sid=${pick(0)}`, 'not-a-key-of-this-app');
    case 'forged':
      return spec.s;
    case 'mangled':
      return mangle(pick(spec.i), spec.how);
    case 'raw':
      return spec.s;
    case 'long':
      return spec.c.repeat(spec.n);
    case 'empty':
      return '';
  }
}

type NameSpec = 'sid' | 'sid.sig' | 'other' | 'SID' | 'xsid' | 'sid.sig2' | ' sid' | 'sid ' | 'sid.SIG' | '__Host-sid';
const nameSpec = fc.oneof(
  { weight: 6, arbitrary: fc.constant<NameSpec>('sid') },
  { weight: 5, arbitrary: fc.constant<NameSpec>('sid.sig') },
  { weight: 3, arbitrary: fc.constantFrom<NameSpec>('other', 'SID', 'xsid', 'sid.sig2', ' sid', 'sid ', 'sid.SIG', '__Host-sid') },
);

type PairSpec =
  | { t: 'pair'; name: NameSpec; quoted: boolean; value: ValueSpec }
  /** `sid=<v>; sid.sig=<valid signature of v>` with `v` outside the sid format: a signed value still fails the format check. */
  | { t: 'self-signed'; value: string }
  /** A piece with no `=`, or stray separators. */
  | { t: 'junk'; s: string };

const pairSpec: fc.Arbitrary<PairSpec> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ t: fc.constant('pair' as const), name: nameSpec, quoted: fc.boolean(), value: valueSpec }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('self-signed' as const),
      value: rawString.filter((s) => s !== '' && !s.startsWith('"') && !/^[ \t]|[ \t]$/.test(s) && !SID_FORMAT.test(s)),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('junk' as const), s: fc.constantFrom('', ' ', ';', '=', 'sid', '==', 'a=b=c', '"', 'sid.sig') }),
  },
);

function pairText(spec: PairSpec, issued: readonly string[]): string {
  switch (spec.t) {
    case 'pair': {
      const value = materialise(spec.value, issued);
      return `${spec.name}=${spec.quoted ? `"${value}"` : value}`;
    }
    case 'self-signed': {
      const seen = Buffer.from(spec.value).toString('latin1'); // what the server will sign-check
      return `sid=${spec.value}; sid.sig=${keygrip(`sid=${seen}`, KEYS[0])}`;
    }
    case 'junk':
      return spec.s;
  }
}

/** A cookie list split over 1–3 Cookie header lines (Node joins them with `; `). */
const cookieLines = fc.record({
  pairs: fc.array(pairSpec, { maxLength: 24 }),
  splits: fc.array(fc.nat(), { maxLength: 2 }),
  sep: fc.constantFrom('; ', ';', ';  '),
  path: fc.constantFrom('/id', '/get', '/inc'),
});

function linesOf(pairs: readonly string[], splits: readonly number[], sep: string): Buffer[] {
  const cuts = [...new Set(splits.map((s) => (pairs.length === 0 ? 0 : s % pairs.length)))].filter((c) => c > 0).sort((a, b) => a - b);
  const groups: string[][] = [];
  let from = 0;
  for (const cut of [...cuts, pairs.length]) {
    groups.push(pairs.slice(from, cut));
    from = cut;
  }
  return groups.map((g) => Buffer.from(g.join(sep))).filter((b) => serverView([b], '') !== '');
}

// ---------------------------------------------------------------------------

describe('property: random Cookie headers (cookie transport)', () => {
  let h: Harness;
  before(async () => {
    h = await harness({});
    await seed(h, 'cookie', 4);
  });
  after(() => h.close());

  it("structured but hostile cookie lists: 200, the oracle's sid or none, session:invalid exactly when a sid was refused, only issued keys reach the store", async () => {
    await fc.assert(
      fc.asyncProperty(cookieLines, async ({ pairs, splits, sep, path }) => {
        const lines = linesOf(
          pairs.map((p) => pairText(p, h.issued)),
          splits,
          sep,
        );
        const expected = expectCookie(serverView(lines, '; '));
        await check(
          h,
          'cookie',
          requestHead(
            path,
            lines.map((l) => ['Cookie', l] as const),
          ),
          expected,
        );
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('an issued sid with its valid signature is accepted wherever it sits (duplicates, quotes, old key, many cookies around it)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(),
        fc.array(pairSpec, { maxLength: 12 }),
        fc.array(
          pairSpec.filter((p) => !(p.t === 'pair' && p.name.trim() === 'sid.sig') && p.t !== 'self-signed'),
          { maxLength: 12 },
        ),
        fc.boolean(),
        fc.nat({ max: 1 }),
        async (i, beforeSig, afterPair, quoted, key) => {
          const sid = h.issued[i % h.issued.length]!;
          // No sid.sig before ours, no sid after-but-before: ours is the first sid only when nothing earlier is named sid.
          const prefixPairs = beforeSig
            .filter(
              (p) =>
                !(p.t === 'pair' && (p.name.replace(/^ +/, '') === 'sid' || p.name.replace(/^ +/, '') === 'sid.sig')) &&
                p.t !== 'self-signed' &&
                !(p.t === 'junk' && p.s.startsWith('sid')),
            )
            .map((p) => pairText(p, h.issued));
          const ours = [`sid=${quoted ? `"${sid}"` : sid}`, `sid.sig=${keygrip(`sid=${sid}`, KEYS[key]!)}`];
          const header = Buffer.from([...prefixPairs, ...ours, ...afterPair.map((p) => pairText(p, h.issued))].join('; '));
          const expected = expectCookie(serverView([header], ''));
          assert.equal(expected.accepted, sid, 'the oracle agrees the sid is the first one and signed');
          const res = await check(h, 'cookie', requestHead('/get', [['Cookie', header]]), expected);
          if (key === 1) {
            // Accepted, and not re-signed by a read: a re-sign here would drop the cookie's Max-Age (the next save re-signs).
            const resigned = res.headers.find(([n, v]) => n === 'set-cookie' && v.startsWith('sid.sig='));
            assert.equal(resigned, undefined, 'a read does not re-sign a sid signed with an older key');
          }
        },
      ),
      { numRuns: Math.ceil(NUM_RUNS / 2) },
    );
  });

  it("random bytes (all 256 byte values but CR/LF, mixed with sid fragments): 200 or Node's own 400, never a 5xx, never an unissued store key", async () => {
    const fragment = fc.oneof(
      { weight: 3, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a.filter((b) => b !== 0x0a && b !== 0x0d))) },
      { weight: 2, arbitrary: pairSpec.map((p) => ({ p })) },
      { weight: 2, arbitrary: fc.constantFrom('; ', ';', '=', '"', 'sid=', 'sid.sig=', ' ', '\t').map((s) => Buffer.from(s)) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fragment, { maxLength: 20 }), fc.constantFrom('/id', '/get', '/inc'), async (fragments, path) => {
        const value = Buffer.concat(fragments.map((f) => (Buffer.isBuffer(f) ? f : Buffer.from(pairText(f.p, h.issued)))));
        const legal = !value.some((b) => (b < 0x20 && b !== 0x09) || b === 0x7f);
        const lines = serverView([value], '') === '' ? [] : [['Cookie', value] as const];
        const expected = legal ? expectCookie(serverView([value], '')) : undefined;
        await check(h, 'cookie', requestHead(path, lines), expected, legal ? [200] : [200, 400]);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("huge headers: below Node's 16 KB limit the session works as usual; past it Node answers 431 itself and no store is touched", async () => {
    const limit = 16 * 1024;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.integer({ min: limit - 600, max: limit + 600 }), fc.integer({ min: 0, max: 3 * limit })),
        fc.constantFrom('one-value', 'many-cookies'),
        fc.nat(),
        fc.oneof(
          fc.constant<'none' | 'signed' | 'unsigned'>('signed'),
          fc.constantFrom<'none' | 'signed' | 'unsigned'>('none', 'unsigned'),
        ),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom('/get', '/inc'),
        async (size, shape, i, withSid, at, path) => {
          const sid = h.issued[i % h.issued.length]!;
          const ours =
            withSid === 'none' ? [] : withSid === 'signed' ? [`sid=${sid}`, `sid.sig=${keygrip(`sid=${sid}`, KEYS[0])}`] : [`sid=${sid}`];
          const fixed = ours.join('; ').length + 2;
          const fill = Math.max(0, size - fixed);
          const filler =
            shape === 'one-value'
              ? [`big=${'x'.repeat(Math.max(0, fill - 4))}`]
              : Array.from({ length: Math.ceil(fill / 12) }, (_, k) => `c${k % 1000}=vvvvvv`);
          const pairs = [...filler];
          pairs.splice(Math.floor(at * (pairs.length + 1)), 0, ...ours);
          const value = Buffer.from(pairs.join('; '));
          const head = requestHead(path, [['Cookie', value]]);
          const allowed = head.length <= 16_000 ? [200] : value.length >= limit ? [431] : [200, 431];
          await check(h, 'cookie', head, expectCookie(serverView([value], '')), allowed);
        },
      ),
      { numRuns: Math.ceil(NUM_RUNS / 3) },
    );
  });
});

describe('property: random x-session-id headers (header transport)', () => {
  let h: Harness;
  /** The full `<sid>.<mac>` token the server handed out for each issued sid. */
  const tokenOf = (sid: string) => `${sid}.${headerMac(sid, KEYS[0]).toString('base64url')}`;
  before(async () => {
    h = await harness({ sid: { header: HEADER } });
    await seed(h, 'header', 4);
  });
  after(() => h.close());

  type TokenSpec =
    | { t: 'issued'; i: number; key: number }
    | { t: 'other-mac'; i: number; j: number }
    | { t: 'forged'; sid: string; mac: string }
    | { t: 'junk-in-mac'; i: number; at: number; junk: string }
    | { t: 'trunc-mac'; i: number; n: number }
    | { t: 'no-dot'; i: number }
    | { t: 'dots'; i: number; extra: string }
    | { t: 'wrong-header'; i: number }
    | { t: 'raw'; s: string }
    | { t: 'long'; n: number };
  const tokenSpec: fc.Arbitrary<TokenSpec> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ t: fc.constant('issued' as const), i: fc.nat(), key: fc.nat({ max: 1 }) }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('other-mac' as const), i: fc.nat(), j: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('forged' as const), sid: b64url(16, 128), mac: b64url(0, 50) }) },
    {
      weight: 1,
      arbitrary: fc.record({
        t: fc.constant('junk-in-mac' as const),
        i: fc.nat(),
        at: fc.nat({ max: 43 }),
        junk: fc.constantFrom('=', '!', ' ', '+', '/', '==', '.', '\t', 'é'),
      }),
    },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('trunc-mac' as const), i: fc.nat(), n: fc.nat({ max: 42 }) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('no-dot' as const), i: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('dots' as const), i: fc.nat(), extra: fc.constantFrom('.', '..', '.x', 'x.') }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('wrong-header' as const), i: fc.nat() }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('raw' as const), s: rawString }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('long' as const), n: fc.integer({ min: 200, max: 8000 }) }) },
  );
  const token = (spec: TokenSpec): string => {
    const pick = (i: number) => h.issued[i % h.issued.length]!;
    switch (spec.t) {
      case 'issued':
        return `${pick(spec.i)}.${headerMac(pick(spec.i), KEYS[spec.key]!).toString('base64url')}`;
      case 'other-mac':
        return `${pick(spec.i)}.${headerMac(pick(spec.j + 1 + spec.i), KEYS[0]).toString('base64url')}`;
      case 'forged':
        return `${spec.sid}.${spec.mac}`;
      case 'junk-in-mac': {
        const t = tokenOf(pick(spec.i));
        const dot = t.lastIndexOf('.') + 1;
        return t.slice(0, dot + spec.at) + spec.junk + t.slice(dot + spec.at);
      }
      case 'trunc-mac':
        return tokenOf(pick(spec.i)).slice(0, 44 + spec.n);
      case 'no-dot':
        return tokenOf(pick(spec.i)).replace('.', '');
      case 'dots':
        return `${pick(spec.i)}${spec.extra}${tokenOf(pick(spec.i)).split('.')[1]}`;
      case 'wrong-header': {
        const sid = pick(spec.i);
        return `${sid}.${createHmac('sha256', KEYS[0]).update(`x-other=${sid}`).digest('base64url')}`;
      }
      case 'raw':
        return spec.s;
      case 'long':
        return `${'A'.repeat(spec.n)}.${'B'.repeat(43)}`;
    }
  };

  it("random header values (repeated headers, junk in the MAC, wrong keys, unicode, huge): the oracle's sid or none, session:invalid when refused, only issued keys reach the store", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof({ weight: 4, arbitrary: fc.tuple(tokenSpec) }, { weight: 1, arbitrary: fc.array(tokenSpec, { maxLength: 3 }) }),
        fc.constantFrom('/id', '/get', '/inc'),
        async (specs, path) => {
          const values = specs.map((s) => Buffer.from(token(s))).filter((b) => serverView([b], '') !== '');
          const expected = expectHeader(serverView(values, ', '));
          const res = await check(
            h,
            'header',
            requestHead(
              path,
              values.map((v) => [HEADER, v] as const),
            ),
            expected,
          );
          for (const [name, value] of res.headers) {
            if (name === HEADER && value !== '')
              assert.equal(value, tokenOf(value.slice(0, value.lastIndexOf('.'))), 'the server hands out its own signed token');
          }
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });
});
