import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Koa from 'koa';
import request from 'supertest';
import { resolveOptions } from '../src/options.js';
import { cookieTransport, headerTransport } from '../src/sid/transport.js';
import { MAX_CHARS, MAX_ENTRIES, Signer, sha256Mac } from '../src/sid/signer.js';

/** A Koa app whose only job is to read the sid through `transport`, as the middleware does. */
function reader(transport: ReturnType<typeof cookieTransport>) {
  const app = new Koa();
  app.keys = ['k1'];
  const reasons = new Map<string, number>();
  app.use((ctx) => {
    const read = transport.read(ctx);
    const r = read.invalid ?? (read.sid ? 'ok' : 'none');
    reasons.set(r, (reasons.get(r) ?? 0) + 1);
    ctx.body = 'ok';
  });
  return { app, reasons };
}

/** Run `count` requests through `app` without sockets (Koa's own request path, no HTTP parsing cost). */
async function drive(app: Koa, count: number, headers: (i: number) => Record<string, string>) {
  const handle = app.callback();
  const { IncomingMessage, ServerResponse } = await import('node:http');
  const { Socket } = await import('node:net');
  for (let i = 0; i < count; i++) {
    const req = new IncomingMessage(new Socket());
    req.method = 'GET';
    req.url = '/';
    req.headers = headers(i);
    const res = new ServerResponse(req);
    await handle(req, res);
  }
}

describe('junk sids never pin memory in the signature cache', () => {
  it('10,000 requests with a 15 KB unsigned/forged sid cookie leave nothing in the cache', async () => {
    const transport = cookieTransport(resolveOptions({}).cookie);
    const { app, reasons } = reader(transport);
    const junk = 'A'.repeat(15_000);
    await drive(app, 10_000, (i) => ({ cookie: `sid=${junk}${i}; sid.sig=${'B'.repeat(27)}` }));
    assert.equal(reasons.get('bad-format'), 10_000, 'refused on its format, before any signature work');
    assert.deepEqual(transport.signer!.cacheStats, { entries: 0, chars: 0 });
  });

  it('valid-format sids under forged signatures leave nothing either (cookie and header)', async () => {
    const cookie = cookieTransport(resolveOptions({}).cookie);
    const a = reader(cookie);
    await drive(a.app, 2_000, (i) => ({ cookie: `sid=${String(i).padStart(43, 'x')}; sid.sig=${'B'.repeat(27)}` }));
    assert.equal(cookie.signer!.cacheStats.entries, 0);

    const header = headerTransport('x-session');
    const b = reader(header);
    await drive(b.app, 2_000, (i) => ({ 'x-session': `${String(i).padStart(43, 'x')}.${'C'.repeat(43)}` }));
    assert.equal(b.reasons.get('bad-signature'), 2_000);
    assert.equal(header.signer!.cacheStats.entries, 0);
  });

  it('what the server signed is remembered, bounded by entries and by characters', () => {
    const signer = new Signer(sha256Mac);
    const keys = ['k'];
    for (let i = 0; i < MAX_ENTRIES + 500; i++) signer.sign(keys, `sid=${String(i).padStart(43, '0')}`);
    // Two generations of MAX_ENTRIES / 2: never more than MAX_ENTRIES, and the newest half always kept.
    assert.ok(
      signer.cacheStats.entries <= MAX_ENTRIES && signer.cacheStats.entries >= MAX_ENTRIES / 2,
      `${signer.cacheStats.entries} entries`,
    );
    const wide = new Signer(sha256Mac);
    for (let i = 0; i < 5_000; i++) wide.sign(keys, `sid=${String(i).padStart(400, '0')}`);
    assert.ok(wide.cacheStats.chars <= MAX_CHARS, `${wide.cacheStats.chars} chars`);
    assert.ok(wide.cacheStats.entries < 5_000);
    // A signature the server made verifies from the cache, and a valid client signature is remembered.
    const fresh = new Signer(sha256Mac);
    const sig = sha256Mac('k', 'sid=abc');
    assert.equal(fresh.verify(keys, 'sid=abc', sig), 0);
    assert.equal(fresh.cacheStats.entries, 1);
  });
});
