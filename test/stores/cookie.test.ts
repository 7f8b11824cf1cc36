import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import Koa from 'koa';
import request from 'supertest';
import { CookieTooLargeError, StoreError } from '../../src/errors.js';
import { MemoryStore, session, type SessionOptions } from '../../src/index.js';
import { seal } from '../../src/cookie/seal.js';
import {
  CookieStore,
  setCookieSize,
  type BoundCookieStore,
  type CookieBindHooks,
  type CookieStoreOptions,
} from '../../src/cookie/store.js';
import { setCookies as parsedSetCookies } from '../helpers/cookies.js';
import { expiresAfter } from '../helpers/cookies.js';

declare module '../../src/index.js' {
  interface SessionData {
    count?: number;
    blob?: string;
  }
}

const KEY = 'cookie-store-test-key-0123456789abcdef';
const OLD_KEY = 'cookie-store-old-key-0123456789abcdef';
const T0 = Date.UTC(2030, 0, 1);
const newSid = () => randomBytes(32).toString('base64url');

type Res = { headers: Record<string, unknown> };

/** All Set-Cookie lines of a response for cookie `name`. */
function setCookies(res: Res, name = 'session'): string[] {
  return parsedSetCookies(res, name).map((c) => c.line);
}

/** The one `name=value` pair a response set for `name` (asserts there is exactly one). */
function cookieOf(res: Res, name = 'session'): string {
  const cookies = parsedSetCookies(res, name);
  assert.equal(cookies.length, 1, `expected one Set-Cookie for ${name}, got ${JSON.stringify(cookies.map((c) => c.line))}`);
  return `${cookies[0]!.name}=${cookies[0]!.value}`;
}

/** A clock tests move by hand. */
function clock(start = T0) {
  const c = { t: start, now: () => c.t };
  return c;
}

/**
 * A tiny Koa app that binds `store` to each request and runs `handler` with the
 * bound store: the CookieStore seen exactly as the middleware sees it, through a
 * real Koa context and real Set-Cookie headers.
 */
function unitApp(
  store: CookieStore,
  handler: (bound: BoundCookieStore, ctx: Koa.Context) => Promise<unknown>,
  hooks: Partial<CookieBindHooks> = {},
) {
  const app = new Koa();
  app.keys = ['koa-app-key-the-store-must-not-use'];
  app.silent = true;
  const reasons: string[] = [];
  app.use(async (ctx) => {
    const bound = store.bindRequest(ctx, { onInvalid: (reason) => reasons.push(reason), ...hooks });
    const out = await handler(bound, ctx);
    ctx.body = out === undefined ? { ok: true } : out;
  });
  return { server: app.callback(), reasons, app };
}

function store(options: Partial<CookieStoreOptions> = {}): CookieStore {
  return new CookieStore({ keys: [KEY], ...options });
}

describe('CookieStore: round trip through a real Set-Cookie header', () => {
  it('set seals the record; the next request reads it back under the same sid', async () => {
    const sid = newSid();
    const s = store();
    const { server, reasons } = unitApp(s, async (bound, ctx) => {
      if (ctx.path === '/set') return void (await bound.set(sid, '{"count":1}', 60_000));
      return { sid: bound.sid ?? null, value: (await bound.get(sid)) ?? null, other: (await bound.get(newSid())) ?? null };
    });
    const first = await request(server).get('/set');
    const cookie = cookieOf(first);
    assert.match(cookie, /^session=v1\.e\.[A-Za-z0-9_-]{4}\./);
    assert.ok(!cookie.includes('count'), 'encrypted: the data is not visible');

    const second = await request(server).get('/get').set('Cookie', cookie);
    assert.deepEqual(second.body, { sid, value: '{"count":1}', other: null });
    assert.deepEqual(reasons, []);
    assert.deepEqual(setCookies(second), [], 'reading sets no cookie');
  });

  it('no cookie: sid undefined, get undefined, onInvalid not called, no Set-Cookie', async () => {
    const { server, reasons } = unitApp(store(), async (bound) => ({ sid: bound.sid ?? null, value: (await bound.get(newSid())) ?? null }));
    const res = await request(server).get('/');
    assert.deepEqual(res.body, { sid: null, value: null });
    assert.deepEqual(reasons, []);
    assert.equal(res.headers['set-cookie'], undefined);
  });

  it('writes the documented cookie attributes, with no Koa .sig cookie even when app.keys is set', async () => {
    const { server } = unitApp(store(), async (bound) => bound.set(newSid(), 'v', 3_600_000));
    const before = Date.now();
    const res = await request(server).get('/');
    const after = Date.now();
    const [line] = setCookies(res);
    assert.match(line!, /; path=\/;/);
    assert.match(line!, /; expires=/);
    assert.match(line!, /; samesite=lax/);
    assert.match(line!, /; httponly/);
    assert.doesNotMatch(line!, /; secure/, 'plain HTTP request: not Secure by default');
    assert.equal(setCookies(res, 'session.sig').length, 0);
    expiresAfter(line!, 3_600_000, before, after); // Max-Age follows the ttl
  });

  it('Secure by default when the request is secure (behind a proxy with app.proxy)', async () => {
    const { server, app } = unitApp(store(), async (bound) => bound.set(newSid(), 'v', 60_000));
    app.proxy = true;
    const res = await request(server).get('/').set('X-Forwarded-Proto', 'https');
    assert.match(setCookies(res)[0]!, /; secure/);
  });

  it('honours cookie options: name, domain, path, sameSite, secure, partitioned, httpOnly', async () => {
    const s = store({
      cookie: {
        name: 'app.state',
        domain: 'example.com',
        path: '/app',
        sameSite: 'none',
        secure: true,
        partitioned: true,
        httpOnly: false,
      },
    });
    const { server, app } = unitApp(s, async (bound) => bound.set(newSid(), 'v', 60_000));
    app.proxy = true;
    const res = await request(server).get('/').set('X-Forwarded-Proto', 'https');
    const [line] = setCookies(res, 'app.state');
    assert.match(line!, /; path=\/app; .*domain=example\.com; samesite=none; secure; partitioned$/);
    assert.doesNotMatch(line!, /httponly/);
  });

  it('`secure: true` on a plain-HTTP request fails the save with a StoreError that says why', async () => {
    const { server, app } = unitApp(store({ cookie: { secure: true } }), async (bound) => bound.set(newSid(), 'v', 60_000));
    let error: unknown;
    app.on('error', (e) => (error = e));
    const res = await request(server).get('/');
    assert.equal(res.status, 500);
    assert.ok(error instanceof StoreError && /secure cookie over unencrypted/i.test(error.message), String(error));
  });

  it('the bound store reads the cookie lazily and reports an invalid one once', async () => {
    let calls = 0;
    const { server, reasons } = unitApp(store(), async (bound, ctx) => {
      if (ctx.path === '/unused') return { ok: true };
      calls++;
      return { a: bound.sid ?? null, b: bound.sid ?? null, c: (await bound.get(newSid())) ?? null };
    });
    await request(server).get('/unused').set('Cookie', 'session=garbage');
    assert.deepEqual(reasons, [], 'a request that never uses the store never opens the cookie');
    const res = await request(server).get('/used').set('Cookie', 'session=garbage');
    assert.deepEqual(res.body, { a: null, b: null, c: null });
    assert.deepEqual(reasons, ['malformed']);
    assert.equal(calls, 1);
  });

  it('the previous cookie key still opens after rotation; new seals use the first key; a dropped key is "unknown-key"', async () => {
    const sid = newSid();
    const oldStore = new CookieStore({ keys: [OLD_KEY] });
    const rotated = new CookieStore({ keys: [KEY, OLD_KEY] });
    const newOnly = new CookieStore({ keys: [KEY] });
    const writeOld = unitApp(oldStore, async (bound) => bound.set(sid, 'old', 60_000));
    const oldCookie = cookieOf(await request(writeOld.server).get('/'));

    const rot = unitApp(rotated, async (bound, ctx) => {
      const value = await bound.get(sid);
      if (ctx.path === '/resave') await bound.set(sid, `${value}+new`, 60_000);
      return { value: value ?? null };
    });
    assert.deepEqual((await request(rot.server).get('/').set('Cookie', oldCookie)).body, { value: 'old' });
    const resaved = await request(rot.server).get('/resave').set('Cookie', oldCookie);
    const newCookie = cookieOf(resaved);

    const only = unitApp(newOnly, async (bound) => ({ value: (await bound.get(sid)) ?? null, sid: bound.sid ?? null }));
    assert.deepEqual((await request(only.server).get('/').set('Cookie', newCookie)).body, { value: 'old+new', sid });
    assert.deepEqual((await request(only.server).get('/').set('Cookie', oldCookie)).body, { value: null, sid: null });
    assert.deepEqual(only.reasons, ['unknown-key']);
  });
});

describe('CookieStore: bad cookies are a fresh session plus onInvalid, never an exception', () => {
  const sid = newSid();
  const c = clock();
  const s = store({ now: c.now });
  const writer = unitApp(s, async (bound) => bound.set(sid, '{"user":"alice"}', 60_000));
  const reader = () => unitApp(s, async (bound) => ({ sid: bound.sid ?? null, value: (await bound.get(sid)) ?? null }));

  async function refused(cookie: string, reason: string) {
    const r = reader();
    const res = await request(r.server).get('/').set('Cookie', cookie);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { sid: null, value: null }, cookie.slice(0, 60));
    assert.deepEqual(r.reasons, [reason], cookie.slice(0, 60));
  }

  it('tampered (a changed character in the ciphertext or tag), truncated and garbage cookies', async () => {
    const good = cookieOf(await request(writer.server).get('/'));
    const value = good.slice('session='.length);
    const parts = value.split('.');
    const flip = (i: number) => {
      const p = [...parts];
      const b = Buffer.from(p[i]!, 'base64url');
      b[0] = b[0]! ^ 1;
      p[i] = b.toString('base64url');
      return `session=${p.join('.')}`;
    };
    await refused(flip(3), 'tampered');
    await refused(flip(4), 'tampered');
    await refused(flip(5), 'tampered');
    await refused(`session=${value.slice(0, -3)}`, 'malformed');
    await refused(`session=${value.slice(0, 40)}`, 'malformed');
    await refused('session=%7B%22user%22%3A%22admin%22%7D', 'malformed');
    await refused('session=v2.e.AAAA.AAAA.AAAA.AAAA', 'version');
    await refused(`session=${'A'.repeat(9000)}`, 'malformed');
  });

  it('a cookie sealed by somebody else\'s key (re-keyed server, attacker) is "unknown-key"', async () => {
    const other = unitApp(new CookieStore({ keys: [randomBytes(32)] }), async (bound) => bound.set(sid, '{"user":"admin"}', 60_000));
    await refused(cookieOf(await request(other.server).get('/')), 'unknown-key');
  });

  it('a signed-only cookie given to an encrypting store is refused ("mode")', async () => {
    const signedOnly = unitApp(store({ encrypt: false, now: c.now }), async (bound) => bound.set(sid, 'x', 60_000));
    await refused(cookieOf(await request(signedOnly.server).get('/')), 'mode');
  });

  it('a value sealed for another cookie name is refused, even with the same keys', async () => {
    const other = unitApp(store({ cookie: { name: 'auth' }, now: c.now }), async (bound) => bound.set(sid, 'x', 60_000));
    const authCookie = cookieOf(await request(other.server).get('/'), 'auth');
    await refused(authCookie.replace(/^auth=/, 'session='), 'tampered');
  });

  it('an authentic seal whose payload is not a CookieStore record, or whose id is not a sid, is "bad-format"', async () => {
    await refused(`session=${seal('just text', [KEY], { purpose: 'session', ttlMs: 60_000, now: T0 })}`, 'bad-format');
    await refused(`session=${seal(`{"id":"short","n":1}\n{}`, [KEY], { purpose: 'session', ttlMs: 60_000, now: T0 })}`, 'bad-format');
    await refused(`session=${seal(`{"id":"${'x'.repeat(43)}","n":1}\n{}`, [KEY], { purpose: 'session', now: T0 })}`, 'bad-format'); // no expiry
  });

  it('a stale cookie is "expired" once the sealed expiry passes (injected clock, no sleeping)', async () => {
    c.t = T0;
    const cookie = cookieOf(await request(writer.server).get('/'));
    c.t = T0 + 59_999;
    const r = reader();
    assert.deepEqual((await request(r.server).get('/').set('Cookie', cookie)).body, { sid, value: '{"user":"alice"}' });
    c.t = T0 + 60_000;
    await refused(cookie, 'expired');
    c.t = T0;
  });
});

describe('CookieStore: size limit', () => {
  it('a save whose Set-Cookie would pass 4096 bytes fails with CookieTooLargeError and sends no Set-Cookie', async () => {
    const sid = newSid();
    const s = store();
    let error: unknown;
    const { server, app } = unitApp(s, async (bound, ctx) => {
      if (ctx.path === '/small') return void (await bound.set(sid, 'small', 60_000));
      await bound.set(sid, 'x'.repeat(4000), 60_000);
    });
    app.on('error', (e) => (error = e));
    const small = cookieOf(await request(server).get('/small'));
    const res = await request(server).get('/big').set('Cookie', small);
    assert.equal(res.status, 500);
    assert.ok(error instanceof CookieTooLargeError, String(error));
    assert.ok((error as CookieTooLargeError).size > 4096);
    assert.equal(res.headers['set-cookie'], undefined, 'nothing partial is sent; the old cookie stays');
  });

  it('the limit is counted on the whole header (conservatively) and the largest accepted cookie is ≤ maxBytes', async () => {
    const s = store();
    let largest = 0;
    const { server } = unitApp(s, async (bound, ctx) => {
      try {
        await bound.set(newSid(), 'x'.repeat(Number(ctx.query.n)), 60_000);
      } catch (e) {
        if (!(e instanceof CookieTooLargeError)) throw e;
        return { tooLarge: true };
      }
      return { tooLarge: false };
    });
    // Binary search the largest record that fits.
    let lo = 0;
    let hi = 4096;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      const res = await request(server).get(`/?n=${mid}`);
      if (res.body.tooLarge) hi = mid - 1;
      else {
        lo = mid;
        largest = Buffer.byteLength(setCookies(res)[0]!);
      }
    }
    assert.ok(lo > 2500 && lo < 3100, `about 3/4 of 4096 bytes of record fit after AES-GCM + base64url, got ${lo}`);
    assert.ok(largest <= 4096, `actual Set-Cookie ${largest} bytes`);
    assert.ok(
      setCookieSize(s.cookie, 'x') >= Buffer.byteLength('session=x; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; samesite=lax; httponly'),
    );
  });

  it('maxBytes lowers the limit', async () => {
    const { server } = unitApp(store({ maxBytes: 600 }), async (bound) => {
      await assert.rejects(bound.set(newSid(), 'x'.repeat(500), 60_000), CookieTooLargeError);
    });
    assert.equal((await request(server).get('/')).status, 200);
  });
});

describe('CookieStore: destroy, regenerate order, touch, cookie kind', () => {
  it('regenerate order: set(new) then destroy(old) keeps the new cookie', async () => {
    const oldSid = newSid();
    const nextSid = newSid();
    const s = store();
    const { server } = unitApp(s, async (bound, ctx) => {
      if (ctx.path === '/login') {
        await bound.set(oldSid, 'anon', 60_000);
        return;
      }
      if (ctx.path === '/regenerate') {
        const value = await bound.get(bound.sid!);
        await bound.set(nextSid, value!, 60_000);
        await bound.destroy(oldSid);
        return;
      }
      return { sid: bound.sid ?? null, value: (await bound.get(bound.sid ?? '')) ?? null };
    });
    const first = cookieOf(await request(server).get('/login'));
    const regen = await request(server).get('/regenerate').set('Cookie', first);
    const second = cookieOf(regen); // exactly one Set-Cookie: the clear did not follow the new cookie
    assert.notEqual(second, 'session=');
    assert.deepEqual((await request(server).get('/').set('Cookie', second)).body, { sid: nextSid, value: 'anon' });
  });

  it("destroy of the cookie's own sid clears the cookie; destroy of another sid sends nothing", async () => {
    const sid = newSid();
    const s = store({ recentWrites: false });
    const { server } = unitApp(s, async (bound, ctx) => {
      if (ctx.path === '/set') return void (await bound.set(sid, 'v', 60_000));
      if (ctx.path === '/other') return void (await bound.destroy(newSid()));
      await bound.destroy(sid);
    });
    const cookie = cookieOf(await request(server).get('/set'));
    const other = await request(server).get('/other').set('Cookie', cookie);
    assert.equal(other.headers['set-cookie'], undefined);
    const cleared = await request(server).get('/destroy').set('Cookie', cookie);
    const [line] = setCookies(cleared);
    assert.match(line!, /^session=; path=\/; expires=Thu, 01 Jan 1970 00:00:00 GMT/);
  });

  it('set then destroy of the same sid in one request leaves only the clearing header', async () => {
    const sid = newSid();
    const { server } = unitApp(store(), async (bound) => {
      await bound.set(sid, 'v', 60_000);
      await bound.destroy(sid);
      return { after: (await bound.get(sid)) ?? null };
    });
    const res = await request(server).get('/');
    assert.deepEqual(res.body, { after: null });
    assert.equal(cookieOf(res), 'session=');
  });

  it("a later get in the same request sees the request's own write (a second scope reads fresh)", async () => {
    const sid = newSid();
    const { server } = unitApp(store(), async (bound) => {
      await bound.set(sid, '1', 60_000);
      await bound.set(sid, '2', 60_000);
      return { value: await bound.get(sid) };
    });
    const res = await request(server).get('/');
    assert.deepEqual(res.body, { value: '2' });
    assert.equal(setCookies(res).length, 1, 'overwrite: one Set-Cookie per response');
  });

  it('touch re-seals with a new expiry; it never recreates an absent session', async () => {
    const sid = newSid();
    const c = clock();
    const s = store({ now: c.now });
    const { server } = unitApp(s, async (bound, ctx) => {
      if (ctx.path === '/set') return void (await bound.set(sid, 'v', 10_000));
      if (ctx.path === '/touch') return void (await bound.touch(sid, 10_000));
      if (ctx.path === '/touch-absent') return void (await bound.touch(newSid(), 10_000));
      return { value: (await bound.get(sid)) ?? null };
    });
    const first = cookieOf(await request(server).get('/set'));
    c.t = T0 + 9_000;
    const touched = cookieOf(await request(server).get('/touch').set('Cookie', first));
    c.t = T0 + 15_000; // past the first seal's expiry, within the touched one
    assert.deepEqual((await request(server).get('/').set('Cookie', touched)).body, { value: 'v' });
    assert.deepEqual((await request(server).get('/').set('Cookie', first)).body, { value: null });
    const absent = await request(server).get('/touch-absent');
    assert.equal(absent.headers['set-cookie'], undefined);
  });

  it('browser-session cookies: no expires; the kind survives later saves and touch; hooks.maxAge "session" is the default for new sessions', async () => {
    const sid = newSid();
    const s = store();
    const { server } = unitApp(s, async (bound, ctx) => {
      if (ctx.path === '/login-forget-me') return void (await bound.set(sid, 'a', 60_000, { sessionCookie: true }));
      if (ctx.path === '/save') return void (await bound.set(sid, 'b', 60_000));
      if (ctx.path === '/touch') return void (await bound.touch(sid, 60_000));
      if (ctx.path === '/remember') return void (await bound.set(sid, 'c', 60_000, { sessionCookie: false }));
    });
    const login = await request(server).get('/login-forget-me');
    assert.doesNotMatch(setCookies(login)[0]!, /expires=/);
    const save = await request(server).get('/save').set('Cookie', cookieOf(login));
    assert.doesNotMatch(setCookies(save)[0]!, /expires=/, 'a later save keeps the browser-session kind');
    const touch = await request(server).get('/touch').set('Cookie', cookieOf(save));
    assert.doesNotMatch(setCookies(touch)[0]!, /expires=/);
    const remember = await request(server).get('/remember').set('Cookie', cookieOf(touch));
    assert.match(setCookies(remember)[0]!, /expires=/);

    const byDefault = unitApp(s, async (bound) => bound.set(newSid(), 'x', 60_000), { maxAge: 'session' });
    assert.doesNotMatch(setCookies(await request(byDefault.server).get('/'))[0]!, /expires=/);
    const capped = unitApp(s, async (bound) => bound.set(newSid(), 'x', 3_600_000), { maxAge: 60_000 });
    const before = Date.now();
    const cappedRes = await request(capped.server).get('/');
    expiresAfter(setCookies(cappedRes)[0]!, 60_000, before, Date.now()); // a numeric maxAge caps the cookie lifetime
  });

  it('keys are bare sids: the cookie and `sid` carry the key given to set, a prefixed key is not a sid', async () => {
    const sid = newSid();
    const { server } = unitApp(store(), async (bound, ctx) => {
      if (ctx.path === '/set') return void (await bound.set(sid, 'v', 60_000));
      return { sid: bound.sid ?? null, value: (await bound.get(sid)) ?? null, prefixed: (await bound.get(`cart:${sid}`)) ?? null };
    });
    const cookie = cookieOf(await request(server).get('/set'));
    assert.deepEqual((await request(server).get('/').set('Cookie', cookie)).body, { sid, value: 'v', prefixed: null });
  });

  it('refuses to seal a key that is not a sid (a caller bug, not client input)', async () => {
    const { server } = unitApp(store(), async (bound) => {
      await assert.rejects(bound.set('bad key!', 'v', 60_000), StoreError);
      await assert.rejects(bound.set(newSid(), 'v', 0), StoreError);
    });
    assert.equal((await request(server).get('/')).status, 200);
  });
});

describe('CookieStore: signed-only mode (encrypt: false)', () => {
  it('the client can read the data but not change it', async () => {
    const sid = newSid();
    const s = store({ encrypt: false });
    const { server, reasons } = unitApp(s, async (bound, ctx) => {
      if (ctx.path === '/set') return void (await bound.set(sid, '{"role":"user"}', 60_000));
      return { value: (await bound.get(sid)) ?? null };
    });
    const cookie = cookieOf(await request(server).get('/set'));
    const parts = cookie.slice('session='.length).split('.');
    assert.equal(parts[1], 's');
    const readable = Buffer.from(parts[3]!, 'base64url').toString('utf8');
    assert.match(readable, /\{"role":"user"\}$/, 'visible to anyone holding the cookie');
    assert.ok(readable.includes(sid));

    parts[3] = Buffer.from(readable.replace('"user"', '"admin"')).toString('base64url');
    const res = await request(server)
      .get('/')
      .set('Cookie', `session=${parts.join('.')}`);
    assert.deepEqual(res.body, { value: null });
    assert.deepEqual(reasons, ['tampered']);
  });
});

describe('CookieStore: in-process recent writes (overlapping requests of one session)', () => {
  function app(options: Partial<CookieStoreOptions> = {}) {
    const sid = newSid();
    const s = store(options);
    const { server } = unitApp(s, async (bound, ctx) => {
      const key = bound.sid ?? sid;
      const before = await bound.get(key);
      if (ctx.path === '/inc') await bound.set(key, String(Number(before ?? 0) + 1), 60_000);
      if (ctx.path === '/destroy') await bound.destroy(key);
      return { before: before ?? null };
    });
    return { server, sid };
  }

  it('a request bringing an older cookie of the session reads the latest write and gets the latest cookie back', async () => {
    const { server } = app();
    const c0 = cookieOf(await request(server).get('/inc')); // value 1
    const c1 = cookieOf(await request(server).get('/inc').set('Cookie', c0)); // value 2
    const stale = await request(server).get('/read').set('Cookie', c0);
    assert.deepEqual(stale.body, { before: '2' });
    assert.equal(cookieOf(stale), c1, 'catch-up: the response re-sends the newest cookie');
    const current = await request(server).get('/read').set('Cookie', c1);
    assert.equal(current.headers['set-cookie'], undefined, 'a current cookie is not re-sent');
  });

  it('a destroyed session stays dead for requests still carrying its cookie, whose cookie is cleared', async () => {
    const { server } = app();
    const c0 = cookieOf(await request(server).get('/inc'));
    await request(server).get('/destroy').set('Cookie', c0);
    const late = await request(server).get('/read').set('Cookie', c0);
    assert.deepEqual(late.body, { before: null });
    assert.equal(cookieOf(late), 'session=');
  });

  it('recentWrites: false is fully stateless: an older cookie reads its own (older) data', async () => {
    const { server } = app({ recentWrites: false });
    const c0 = cookieOf(await request(server).get('/inc'));
    await request(server).get('/inc').set('Cookie', c0);
    const stale = await request(server).get('/read').set('Cookie', c0);
    assert.deepEqual(stale.body, { before: '1' });
    assert.equal(stale.headers['set-cookie'], undefined);
  });

  it('the window is bounded in time and in size', async () => {
    const c = clock();
    const timed = app({ recentWrites: { windowMs: 1000 }, now: c.now });
    const c0 = cookieOf(await request(timed.server).get('/inc'));
    await request(timed.server).get('/inc').set('Cookie', c0);
    c.t += 1001;
    assert.deepEqual((await request(timed.server).get('/read').set('Cookie', c0)).body, { before: '1' });

    const sized = app({ recentWrites: { max: 1 } });
    const a0 = cookieOf(await request(sized.server).get('/inc'));
    await request(sized.server).get('/inc').set('Cookie', a0); // a → 2 (remembered)
    await request(sized.server).get('/inc'); // another session evicts it
    assert.deepEqual((await request(sized.server).get('/read').set('Cookie', a0)).body, { before: '1' });
  });

  it("only a request that holds the session's cookie sees its recent writes", async () => {
    const sid = newSid();
    const s = store();
    const { server } = unitApp(s, async (bound, ctx) => {
      if (ctx.path === '/set') return void (await bound.set(sid, 'secret', 60_000));
      return { value: (await bound.get(sid)) ?? null };
    });
    await request(server).get('/set');
    assert.deepEqual((await request(server).get('/')).body, { value: null }, 'knowing a sid is not enough: the cookie is the proof');
  });
});

describe('CookieStore: construction and misuse', () => {
  it('rejects missing or wrong-size keys with a message naming the fix', () => {
    for (const keys of [[], ['short'], [randomBytes(16)], ['x'.repeat(31)]]) {
      assert.throws(() => new CookieStore({ keys }), /openssl rand -base64 32/);
    }
    // @ts-expect-error JS callers
    assert.throws(() => new CookieStore(), /keys/);
    // @ts-expect-error JS callers
    assert.throws(() => new CookieStore({}), /CookieStore keys/);
  });

  it('validates the other options, naming the option', () => {
    assert.throws(() => store({ maxBytes: 10 }), /maxBytes/);
    assert.throws(() => store({ cookie: { name: 'bad name' } }), /cookie\.name/);
    assert.throws(() => store({ cookie: { sameSite: 'none', secure: false } }), /cookie\.secure/);
    assert.throws(() => store({ cookie: { partitioned: true, secure: false } }), /cookie\.secure/);
    assert.throws(() => store({ recentWrites: { max: 0 } }), /recentWrites\.max/);
    // @ts-expect-error JS callers
    assert.throws(() => store({ encrypt: 'yes' }), /encrypt/);
    assert.equal(store().cookie.name, 'session');
    assert.equal(store().encrypt, true);
    assert.equal(store().maxBytes, 4096);
  });

  it('refuses unknown options, naming the option and the fix (like session() and every other store)', () => {
    const js = (options: Record<string, unknown>): Partial<CookieStoreOptions> => options as Partial<CookieStoreOptions>;
    const refused = (options: Record<string, unknown>, message: RegExp): void =>
      assert.throws(
        () => store(js(options)),
        (e: unknown) => e instanceof TypeError && message.test(e.message),
      );
    refused(
      { maxbytes: 1000 },
      /Unknown CookieStore option `maxbytes`\. Known options: keys, encrypt, cookie, maxBytes, recentWrites, revocations, now$/,
    );
    // What a port from koa-session / cookie-session brings along.
    refused({ key: 'koa.sess' }, /Unknown CookieStore option `key`.*`cookie\.name`/);
    refused({ secret: 'x'.repeat(32) }, /Unknown CookieStore option `secret`.*`keys`/);
    refused({ maxAge: 86_400_000 }, /Unknown CookieStore option `maxAge`.*`session\(\{ ttl \}\)`/);
    refused({ signed: false }, /Unknown CookieStore option `signed`.*`encrypt: false`/);
    refused({ sameSite: 'strict' }, /Unknown CookieStore option `sameSite`.*cookie: \{ sameSite \}/);
    // Sub-options, with their path.
    refused({ cookie: { maxAge: 1000 } }, /Unknown CookieStore option `cookie\.maxAge`.*`session\(\{ ttl \}\)`/);
    refused(
      { cookie: { nmae: 'x' } },
      /Unknown CookieStore option `cookie\.nmae`\. Known options: name, domain, path, httpOnly, sameSite, secure, partitioned$/,
    );
    refused({ recentWrites: { maxAge: 1000 } }, /Unknown CookieStore option `recentWrites\.maxAge`\. Known options: max, windowMs$/);
    refused({ revocations: { max: 10 } }, /Unknown CookieStore option `revocations\.max`\. Known options: maxBytes$/);
    // Every documented option (and sub-option) is accepted.
    const all = store({
      encrypt: false,
      maxBytes: 2048,
      now: Date.now,
      cookie: { name: 'c', domain: 'example.com', path: '/', httpOnly: true, sameSite: 'none', secure: true, partitioned: true },
      recentWrites: { max: 10, windowMs: 1000 },
      revocations: { maxBytes: 4096 },
    });
    assert.equal(all.maxBytes, 2048);
    assert.equal(store({ recentWrites: false, revocations: false }).encrypt, true);
  });

  it('is a request store, not a Store: no unbound get/set/destroy, and as a mirror it fails fast naming the fix', () => {
    const s = store() as unknown as Record<string, unknown>;
    for (const method of ['get', 'set', 'destroy', 'touch']) assert.equal(s[method], undefined, `CookieStore has no unbound ${method}()`);
    assert.throws(
      () => session({ mirrors: [store() as never] }),
      (e: unknown) => e instanceof TypeError && /mirrors\[0\]/.test(e.message) && /CookieStore can only be the master/.test(e.message),
    );
  });

  it('binding one store twice in one request (two session() sharing it) is a clear error', async () => {
    const s = store();
    const app = new Koa();
    app.silent = true;
    let error: unknown;
    app.on('error', (e) => (error = e));
    app.use(async (ctx) => {
      s.bindRequest(ctx, { onInvalid() {} });
      s.bindRequest(ctx, { onInvalid() {} });
    });
    assert.equal((await request(app.callback()).get('/')).status, 500);
    assert.ok(error instanceof StoreError && /own CookieStore/.test(error.message));
  });
});

// ---- through session(): CookieStore as the master of the real middleware ----------------------

/** An app with `session({ master: cookieStore, ...options })` and a counter route; no app.keys needed. */
function sessionApp(master: CookieStore, options: Omit<SessionOptions, 'master'> = {}) {
  const app = new Koa();
  app.silent = true;
  const invalid: string[] = [];
  const errors: unknown[] = [];
  app.on('session:invalid', (e: { reason: string }) => invalid.push(e.reason));
  app.on('error', (e) => errors.push(e));
  let inside = 0;
  const stats = { maxInside: 0 };
  app.use(session({ master, ...options }));
  app.use(async (ctx) => {
    if (ctx.path === '/inc') {
      const count = await ctx.session.withLock(async (s) => {
        inside++;
        stats.maxInside = Math.max(stats.maxInside, inside);
        await new Promise((resolve) => setImmediate(resolve)); // give overlapping requests every chance to interleave
        s.count = (s.count ?? 0) + 1;
        inside--;
        return s.count;
      });
      ctx.body = { count, id: ctx.session.id };
    } else if (ctx.path === '/big') {
      await ctx.session.withLock((s) => void (s.blob = randomBytes(3000).toString('hex')));
    } else if (ctx.path === '/regenerate') {
      await ctx.session.regenerate();
      ctx.body = { id: ctx.session.id };
    } else if (ctx.path === '/destroy') {
      await ctx.session.destroy();
      ctx.body = { id: ctx.session.id ?? null };
    } else if (ctx.path === '/read') {
      const data = await ctx.session.get();
      ctx.body = { count: data.count ?? null, id: ctx.session.id ?? null, isNew: ctx.session.isNew };
    } else {
      ctx.body = 'no session used';
    }
  });
  return { server: app.callback(), invalid, errors, stats };
}

describe('CookieStore as the master of session()', () => {
  it('counter round trip: the whole session travels in one sealed cookie (no sid cookie, no app.keys)', async () => {
    const { server, invalid } = sessionApp(store());
    const agent = request.agent(server);
    const r1 = await agent.get('/inc');
    assert.equal(r1.body.count, 1);
    assert.match(cookieOf(r1), /^session=v1\.e\./);
    assert.equal(setCookies(r1, 'sid').length, 0);
    assert.equal((await agent.get('/inc')).body.count, 2);
    const r3 = await agent.get('/read');
    assert.deepEqual(r3.body, { count: 2, id: r1.body.id, isNew: false });
    assert.equal((await agent.get('/nothing')).headers['set-cookie'], undefined, 'a route that never uses the session sets no cookie');
    assert.deepEqual(invalid, []);
  });

  it('50 sequential increments through one client end at 50, under one stable id', async () => {
    const { server } = sessionApp(store({ recentWrites: false }));
    const agent = request.agent(server);
    let last: { count: number; id: string } | undefined;
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) {
      last = (await agent.get('/inc')).body;
      ids.add(last!.id);
    }
    assert.equal(last!.count, 50);
    assert.equal(ids.size, 1);
  });

  it('50 overlapping increments on one cookie session in one process: serialized by the lock, each sees a distinct value, none lost', async () => {
    const { server, stats } = sessionApp(store());
    const first = await request(server).get('/inc');
    const cookie = cookieOf(first);
    // Every request carries the same (count 1) cookie, as parallel fetches from one page do.
    const responses = await Promise.all(Array.from({ length: 50 }, () => request(server).get('/inc').set('Cookie', cookie)));
    const seen = responses.map((r) => r.body.count as number).sort((a, b) => a - b);
    assert.deepEqual(
      seen,
      Array.from({ length: 50 }, (_, i) => i + 2),
      'the in-process recent writes let each scope read the previous one',
    );
    assert.equal(stats.maxInside, 1, 'scope bodies never overlapped');
    // The browser keeps whichever Set-Cookie arrived last, which need not be the newest. Within
    // the recent-writes window any of them reads the newest state, and the response catches the cookie up.
    const withOriginal = await request(server).get('/read').set('Cookie', cookie);
    assert.equal(withOriginal.body.count, 51);
    const caughtUp = cookieOf(withOriginal);
    const later = await request(server).get('/read').set('Cookie', caughtUp);
    assert.equal(later.body.count, 51);
    assert.equal(later.headers['set-cookie'], undefined);
  });

  it('what the lock cannot do: with recentWrites off, overlapping requests each start from the cookie they carried (last response wins)', async () => {
    const { server, stats } = sessionApp(store({ recentWrites: false }));
    const cookie = cookieOf(await request(server).get('/inc'));
    const responses = await Promise.all(Array.from({ length: 10 }, () => request(server).get('/inc').set('Cookie', cookie)));
    assert.equal(stats.maxInside, 1, 'still serialized by the lock…');
    assert.deepEqual(
      responses.map((r) => r.body.count),
      Array(10).fill(2),
      '…but every request read count 1 from its own cookie',
    );
  });

  it('what the lock cannot do: two processes (two tabs routed to different servers) each hold their own cookie', async () => {
    const p1 = sessionApp(store());
    const p2 = sessionApp(store()); // same keys, another process: its own locker and recent writes
    const cookie = cookieOf(await request(p1.server).get('/inc'));
    const [tabA, tabB] = await Promise.all([
      request(p1.server).get('/inc').set('Cookie', cookie),
      request(p2.server).get('/inc').set('Cookie', cookie),
    ]);
    assert.equal(tabA.body.count, 2);
    assert.equal(tabB.body.count, 2, 'one increment is lost: the browser keeps whichever response came last');
  });

  it('mirrors get every write under the stable id inside the cookie; regenerate and destroy reach them too', async () => {
    const mirror = new MemoryStore();
    const { server } = sessionApp(store(), { mirrors: [mirror] });
    const agent = request.agent(server);
    await agent.get('/inc');
    const { id, count } = (await agent.get('/inc')).body as { id: string; count: number };
    assert.equal(count, 2);
    assert.deepEqual(JSON.parse((await mirror.get(id))!), { count: 2 });

    const regen = await agent.get('/regenerate');
    const newId = regen.body.id as string;
    assert.notEqual(newId, id);
    assert.equal(await mirror.get(id), undefined, 'the old id is gone from the mirror');
    assert.deepEqual(JSON.parse((await mirror.get(newId))!), { count: 2 });
    assert.deepEqual((await agent.get('/read')).body, { count: 2, id: newId, isNew: false }, 'the client now holds the new id');

    const destroyed = await agent.get('/destroy');
    assert.equal(cookieOf(destroyed), 'session=');
    assert.equal(await mirror.get(newId), undefined);
    assert.equal((await agent.get('/read')).body.isNew, true);
    await mirror.close();
  });

  it('a tampered, foreign or garbage cookie is a fresh session plus session:invalid, never an error', async () => {
    const { server, invalid, errors } = sessionApp(store());
    const parts = cookieOf(await request(server).get('/inc'))
      .slice('session='.length)
      .split('.');
    const ciphertext = Buffer.from(parts[4]!, 'base64url');
    ciphertext[0] = ciphertext[0]! ^ 0x80;
    parts[4] = ciphertext.toString('base64url');
    for (const value of [parts.join('.'), 'garbage', seal('x', [randomBytes(32)], { purpose: 'session' })]) {
      const res = await request(server).get('/inc').set('Cookie', `session=${value}`);
      assert.equal(res.status, 200);
      assert.equal(res.body.count, 1, 'fresh session');
      assert.match(cookieOf(res), /^session=v1\.e\./, 'and a new cookie for it');
    }
    assert.deepEqual(invalid, ['tampered', 'malformed', 'unknown-key']);
    assert.deepEqual(errors, []);
  });

  it('an expired cookie (injected clock) is a fresh session plus session:invalid "expired"', async () => {
    const c = clock(Date.now());
    const { server, invalid } = sessionApp(store({ now: c.now }), { ttl: 60_000 });
    const cookie = cookieOf(await request(server).get('/inc'));
    c.t += 60_001;
    const res = await request(server).get('/inc').set('Cookie', cookie);
    assert.equal(res.body.count, 1);
    assert.deepEqual(invalid, ['expired']);
  });

  it('a save over 4096 bytes fails with CookieTooLargeError (500) and sends no cookie; the session is unchanged', async () => {
    const { server, errors } = sessionApp(store());
    const cookie = cookieOf(await request(server).get('/inc'));
    const res = await request(server).get('/big').set('Cookie', cookie);
    assert.equal(res.status, 500);
    assert.equal(res.headers['set-cookie'], undefined);
    assert.ok(errors[0] instanceof CookieTooLargeError);
    assert.equal((await request(server).get('/read').set('Cookie', cookie)).body.count, 1);
  });

  it('a route that never touches the session does not even open the cookie', async () => {
    const { server, invalid } = sessionApp(store());
    const res = await request(server).get('/nothing').set('Cookie', 'session=garbage');
    assert.equal(res.headers['set-cookie'], undefined);
    assert.deepEqual(invalid, []);
  });

  it('session({ prefix }) with a CookieStore master: the cookie keeps the bare sid, mirrors get prefix + sid', async () => {
    const mirror = new MemoryStore();
    const { server } = sessionApp(store(), { prefix: 'app:', mirrors: [mirror] });
    const agent = request.agent(server);
    assert.equal((await agent.get('/inc')).status, 200);
    const second = await agent.get('/inc');
    assert.equal(second.body.count, 2);
    const sid = second.body.id as string;
    assert.ok(!sid.startsWith('app:'), 'the id the app sees is the bare sid');
    assert.equal(JSON.parse((await mirror.get(`app:${sid}`))!).count, 2, 'the mirror is keyed prefix + sid');
  });

  it("session({ cookie: { maxAge: 'session' } }) makes browser-session cookies (needs the middleware to pass `maxAge`)", async () => {
    const { server } = sessionApp(store(), { cookie: { maxAge: 'session' } });
    const res = await request(server).get('/inc');
    assert.doesNotMatch(setCookies(res)[0]!, /expires=/);
  });
});
