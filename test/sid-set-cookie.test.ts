/**
 * The sid cookie's Set-Cookie headers are serialized by SetCookieWriter (a
 * per-attributes cache) instead of `ctx.cookies.set`: the bytes must stay the
 * ones `ctx.cookies.set` writes for every attribute combination (browsers,
 * koa-session during a migration and Koa's `ctx.cookies.get` read them), an
 * earlier Set-Cookie of the same name must be replaced, others kept, and a
 * Secure cookie on plain HTTP must fail as `ctx.cookies.set` fails.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Koa from 'koa';
import request from 'supertest';
import { cookieSetAttributes, type CookieAttributes } from '../src/sid/cookie-attributes.js';
import { SetCookieWriter } from '../src/sid/set-cookie.js';

const base: CookieAttributes = {
  name: 'sid',
  domain: undefined,
  path: '/',
  httpOnly: true,
  sameSite: 'lax',
  secure: 'auto',
  partitioned: false,
};

const cases: [string, Partial<CookieAttributes>, number | 'session', boolean][] = [
  ['defaults', {}, 3_600_000, false],
  ['defaults over HTTPS (auto → Secure)', {}, 3_600_000, true],
  ['browser-session cookie', {}, 'session', false],
  ['domain, path, strict', { domain: '.example.com', path: '/app', sameSite: 'strict' }, 60_000, false],
  ['no SameSite, not HttpOnly', { sameSite: false, httpOnly: false }, 60_000, false],
  ['none + secure + partitioned', { sameSite: 'none', secure: true, partitioned: true }, 1_000, true],
  ['secure: false over HTTPS', { secure: false }, 1_000, true],
];

/** Expires is per second: compare it apart (the two writes may straddle a second). */
const split = (header: string) => {
  const expires = /; expires=([^;]+)/.exec(header)?.[1];
  return { rest: header.replace(/; expires=[^;]+/, ''), expires: expires === undefined ? undefined : Date.parse(expires) };
};

function app(handler: (ctx: Koa.Context) => void): Koa {
  const koa = new Koa();
  koa.proxy = true; // X-Forwarded-Proto: https makes ctx.secure true
  koa.silent = true;
  koa.use((ctx) => {
    handler(ctx);
    ctx.body = 'ok';
  });
  return koa;
}

describe('sid Set-Cookie serialization', () => {
  for (const [title, attrs, maxAge, https] of cases) {
    it(`writes the bytes ctx.cookies.set writes: ${title}`, async () => {
      const attributes = { ...base, ...attrs };
      const writer = new SetCookieWriter(attributes);
      const koa = app((ctx) => {
        ctx.cookies.set('x', 'v1.-_', cookieSetAttributes({ ...attributes, name: 'x' }, ctx, maxAge));
        writer.write(ctx, [['y', 'v1.-_']], maxAge);
      });
      const req = request(koa.callback()).get('/');
      const res = await (https ? req.set('X-Forwarded-Proto', 'https') : req);
      assert.equal(res.status, 200);
      const [theirs, ours] = res.headers['set-cookie'] as unknown as string[];
      const a = split(theirs!.replace(/^x=/, ''));
      const b = split(ours!.replace(/^y=/, ''));
      assert.equal(b.rest, a.rest);
      if (a.expires === undefined) assert.equal(b.expires, undefined);
      else assert.ok(Math.abs(b.expires! - a.expires) <= 1000, `${ours} vs ${theirs}`);
    });
  }

  it('replaces an earlier Set-Cookie of the same names and keeps the others', async () => {
    const writer = new SetCookieWriter(base);
    const koa = app((ctx) => {
      ctx.cookies.set('other', '1');
      ctx.cookies.set('sid', 'old', { signed: false });
      ctx.cookies.set('sid.sig', 'oldsig', { signed: false });
      writer.write(
        ctx,
        [
          ['sid', 'new'],
          ['sid.sig', 'newsig'],
        ],
        60_000,
      );
      writer.write(
        ctx,
        [
          ['sid', 'newer'],
          ['sid.sig', 'newersig'],
        ],
        60_000,
      );
    });
    const res = await request(koa.callback()).get('/');
    const names = (res.headers['set-cookie'] as unknown as string[]).map((h) => h.split(';')[0]);
    assert.deepEqual(names, ['other=1', 'sid=newer', 'sid.sig=newersig']);
  });

  it('refuses a Secure cookie on plain HTTP, as ctx.cookies.set does', async () => {
    const writer = new SetCookieWriter({ ...base, secure: true });
    let error: unknown;
    const koa = app((ctx) => {
      try {
        writer.write(ctx, [['sid', 'v']], 60_000);
      } catch (e) {
        error = e;
      }
    });
    await request(koa.callback()).get('/');
    assert.match(String(error), /Cannot send secure cookie over unencrypted connection/);
  });
});
