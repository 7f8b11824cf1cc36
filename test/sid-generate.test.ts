import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { MemoryStore } from '../src/index.js';
import { generateSid, isValidSid } from '../src/sid/sid.js';
import { makeApp, sidOf } from './helpers/app.js';

// Sids are drawn from a pool of CSPRNG bytes refilled 128 sids at a time (src/sid/sid.ts):
// across refills every sid must stay 43 chars of base64url and no bytes may be handed out twice.
describe('generated sids', () => {
  it('1,000 sids (several pool refills): each 43 base64url chars of 32 bytes, all distinct', () => {
    const sids = Array.from({ length: 1000 }, generateSid);
    for (const sid of sids) {
      assert.match(sid, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(Buffer.from(sid, 'base64url').length, 32);
      assert.ok(isValidSid(sid));
    }
    assert.equal(new Set(sids).size, sids.length);
    // No two sids share a 16-byte half either (a pool cursor stepping wrong would repeat bytes at an offset).
    const halves = sids.flatMap((sid) => {
      const bytes = Buffer.from(sid, 'base64url');
      return [bytes.subarray(0, 16).toString('hex'), bytes.subarray(16).toString('hex')];
    });
    assert.equal(new Set(halves).size, halves.length);
  });

  it('300 new sessions over HTTP get 300 different sids', async () => {
    const app = makeApp({ master: new MemoryStore() }, async (ctx) => {
      await ctx.session.withLock((s) => void ((s as { n?: number }).n = 1));
      ctx.body = 'ok';
    });
    const server = app.callback();
    const sids = new Set<string>();
    for (let i = 0; i < 300; i++) sids.add(sidOf(await request(server).get('/')));
    assert.equal(sids.size, 300);
  });
});
