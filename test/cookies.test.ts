import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import Koa from 'koa';
import request from 'supertest';
import { MemoryStore, session } from '../src/index.js';
import { CountingStore, cookieHeader, makeApp, sidOf } from './helpers/app.js';
import { countingApp } from './helpers/counting-app.js';
import { expiresAfter, setCookies } from './helpers/cookies.js';

declare module '../src/index.js' {
  interface SessionData {
    name?: string;
    count?: number;
  }
}

function setup(options: Parameters<typeof makeApp>[0] = {}) {
  const store = new CountingStore(new MemoryStore());
  const invalid: string[] = [];
  const app = makeApp({ master: store, ...options }, async (ctx) => {
    if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.name = 'ada'));
    ctx.body = { data: await ctx.session.get(), isNew: ctx.session.isNew };
  });
  app.on('session:invalid', (event: { reason: string }) => invalid.push(event.reason));
  return { store, invalid, app, server: app.callback() };
}

describe('sid cookie', () => {
  it('defaults: name sid, HttpOnly, SameSite=Lax, Path=/, Max-Age = ttl, signed', async () => {
    const { server } = setup({ ttl: 3_600_000 });
    const before = Date.now();
    const res = await request(server).get('/set');
    const after = Date.now();
    const [sid, sig] = res.headers['set-cookie'] as unknown as string[];
    assert.match(sid!, /^sid=[A-Za-z0-9_-]{43}; path=\/; expires=[^;]+; samesite=lax; httponly$/);
    assert.match(sig!, /^sid\.sig=/);
    expiresAfter(sid!, 3_600_000, before, after);
    assert.doesNotMatch(sid!, /secure/, 'not Secure on plain HTTP');
  });

  it("Secure on HTTPS behind a proxy (app.proxy), maxAge 'session' gives a browser-session cookie", async () => {
    const store = new MemoryStore();
    const app = new Koa({ proxy: true });
    app.keys = ['k'];
    app.use(session({ master: store, cookie: { maxAge: 'session', sameSite: 'strict', domain: 'example.com' } }));
    app.use(async (ctx) => {
      await ctx.session.withLock((s) => void (s.name = 'x'));
      ctx.body = 'ok';
    });
    const res = await request(app.callback()).get('/').set('X-Forwarded-Proto', 'https');
    const sid = (res.headers['set-cookie'] as unknown as string[])[0]!;
    assert.match(sid, /; secure/);
    assert.match(sid, /samesite=strict/);
    assert.match(sid, /domain=example\.com/);
    assert.doesNotMatch(sid, /expires|max-age/i);
  });

  for (const [label, cookie, reason] of [
    ['unsigned', (sid: string) => `sid=${sid}`, 'bad-signature'],
    ['tampered signature', (sid: string) => `sid=${sid}; sid.sig=AAAAAAAAAAAAAAAAAAAAAAAAAAA`, 'bad-signature'],
    ['swapped sid under a valid signature', (_sid: string, sig: string) => `sid=${'B'.repeat(43)}; sid.sig=${sig}`, 'bad-signature'],
  ] as const) {
    it(`an ${label} sid is a fresh session plus session:invalid, never a store lookup`, async () => {
      const { store, invalid, server } = setup();
      const res = await request(server).get('/set');
      const sid = sidOf(res);
      const sig = sidOf(res, 'sid.sig');
      const before = store.calls.get;
      const bad = await request(server).get('/').set('Cookie', cookie(sid, sig));
      assert.equal(bad.status, 200);
      assert.deepEqual(bad.body, { data: {}, isNew: true });
      assert.equal(store.calls.get, before, 'no store lookup with the refused value');
      assert.deepEqual(invalid, [reason]);
    });
  }

  it('malformed ids (odd characters, huge values) never reach a store key', async () => {
    const { store, invalid, server } = setup({ cookie: { signed: false } });
    for (const value of ['../../etc/passwd', 'a b', '%00%0d%0a', 'x'.repeat(3000), '{hash}tag', 'short']) {
      const res = await request(server).get('/').set('Cookie', `sid=${value}`);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.data, {});
    }
    assert.equal(store.calls.get, 0);
    assert.equal(invalid.length, 6);
    assert.ok(invalid.every((r) => r === 'bad-format'));
  });

  it('keys rotate: a sid signed with an older key still works; the next save re-signs it with the newest (a read does not)', async () => {
    const store = new MemoryStore();
    const make = (keys: string[]) => {
      const app = new Koa();
      app.keys = keys;
      app.use(session({ master: store }));
      app.use(async (ctx) => {
        if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.name = String(ctx.query.name ?? 'ada')));
        ctx.body = await ctx.session.get();
      });
      return app.callback();
    };
    const old = await request(make(['old'])).get('/set');
    const res = await request(make(['new', 'old']))
      .get('/')
      .set('Cookie', cookieHeader(old.headers['set-cookie']));
    assert.deepEqual(res.body, { name: 'ada' });
    assert.equal(res.headers['set-cookie'], undefined, 'a read sends no cookie (a re-sign would lose Max-Age)');
    const saved = await request(make(['new', 'old']))
      .get('/set?name=bob')
      .set('Cookie', cookieHeader(old.headers['set-cookie']));
    assert.match(
      String(saved.headers['set-cookie']),
      /sid\.sig=[^;]+; path=\/; expires=/,
      're-signed with the newest key, with its expiry',
    );
    const later = await request(make(['new']))
      .get('/')
      .set('Cookie', cookieHeader(saved.headers['set-cookie']));
    assert.deepEqual(later.body, { name: 'bob' });
  });

  // README "How it works" 3 and SECURITY.md: a persistent cookie's expiry follows the
  // session's, which every save renews (`ttl`). A cookie's lifetime counts from the response
  // that carried it, and the server cannot know which of its Set-Cookies the browser kept, so
  // every save re-sends the cookie, however little its expiry moved: skipping one would let
  // the cookie die before the record.
  for (const [label, options, cookieMs] of [
    ['Max-Age = ttl', { ttl: 3_600_000 }, 3_600_000],
    ['cookie.maxAge below ttl', { ttl: 3_600_000, cookie: { maxAge: 600_000 } }, 600_000],
  ] as const) {
    it(`a persistent sid cookie (${label}) is re-sent by every save with its expiry moved to that save's; a read or an unchanged save sends none`, async () => {
      mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
      try {
        const { server } = countingApp(async (ctx) => {
          if (ctx.path === '/inc') await ctx.session.withLock((s) => void (s.count = (s.count ?? 0) + 1));
          if (ctx.path === '/same') await ctx.session.withLock((s) => void (s.count = s.count ?? 0));
          ctx.body = await ctx.session.get();
        }, options);
        const expiry = (res: { headers: Record<string, unknown> }) => setCookies(res, 'sid').map((c) => c.attributes.get('expires'));
        const first = await request(server).get('/inc');
        const cookie = cookieHeader(first.headers['set-cookie']);
        assert.deepEqual(expiry(first), [new Date(1_000_000 + cookieMs).toUTCString()]);
        mock.timers.tick(1000); // one second of a long lifetime: the smallest move Expires can show
        const read = await request(server).get('/').set('Cookie', cookie);
        assert.equal(read.body.count, 1);
        assert.equal(read.headers['set-cookie'], undefined, 'a read renews nothing (rolling is off): no cookie');
        assert.equal(
          (await request(server).get('/same').set('Cookie', cookie)).headers['set-cookie'],
          undefined,
          'an unchanged scope saves nothing: no cookie',
        );
        const saved = await request(server).get('/inc').set('Cookie', cookie);
        assert.equal(saved.body.count, 2);
        assert.deepEqual(
          expiry(saved),
          [new Date(1_001_000 + cookieMs).toUTCString()],
          'the same sid, re-sent with the expiry the save gave the session',
        );
        assert.equal(cookieHeader(saved.headers['set-cookie']), cookie, 'same sid, same signature');
      } finally {
        mock.timers.reset();
      }
    });
  }

  it('a missing app.keys fails with an error that names the fix', async () => {
    const app = new Koa();
    app.silent = true;
    const errors: Error[] = [];
    app.on('error', (e: Error) => errors.push(e));
    app.use(session());
    app.use((ctx) => void (ctx.body = 'x'));
    const res = await request(app.callback()).get('/');
    assert.equal(res.status, 500);
    assert.match(errors[0]!.message, /app\.keys is not set.*app\.keys = \[/);
  });
});

describe('sid signatures', () => {
  it("are Koa's own (Keygrip) signatures: ctx.cookies.get(name, { signed: true }) accepts them; a Keygrip instance as app.keys works too", async () => {
    const { default: Keygrip } = await import('keygrip');
    for (const keys of [['k1', 'k0'], new Keygrip(['k1', 'k0'])]) {
      const app = new Koa();
      app.keys = keys as string[];
      app.use(session());
      app.use(async (ctx) => {
        if (ctx.path === '/set') await ctx.session.withLock((s) => void (s.name = 'ada'));
        ctx.body = { viaKoa: ctx.cookies.get('sid', { signed: true }) ?? null, data: await ctx.session.get() };
      });
      const server = app.callback();
      const first = await request(server).get('/set');
      const res = await request(server).get('/').set('Cookie', cookieHeader(first.headers['set-cookie']));
      assert.equal(res.body.viaKoa, sidOf(first));
      assert.deepEqual(res.body.data, { name: 'ada' });
    }
  });
});
