import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Koa from 'koa';
import request from 'supertest';
import { session } from '../src/index.js';
import { cookieHeader, setCookieLines } from './helpers/cookies.js';

declare module '../src/index.js' {
  interface SessionData {
    n?: number;
  }
}

const DAY = 86_400_000;

function setup(rolling = false) {
  const app = new Koa();
  app.keys = ['old-key'];
  app.use(session({ ttl: 30 * DAY, rolling }));
  app.use(async (ctx) => {
    if (ctx.path === '/save') await ctx.session.withLock((s) => void (s.n = (s.n ?? 0) + 1));
    ctx.body = { data: await ctx.session.get() };
  });
  return { app, server: app.callback() };
}

const setCookies = (res: request.Response): string[] => setCookieLines(res);
const jar = (cookies: string[]) => cookieHeader(cookies);

/** Every Set-Cookie of the sid or its signature keeps an expiry (none turns into a browser-session cookie). */
function assertPersistent(cookies: string[]) {
  for (const c of cookies.filter((c) => /^sid(\.sig)?=/.test(c))) assert.match(c, /; expires=/, `lost its expiry: ${c}`);
}

describe('app.keys rotation keeps the session cookie persistent ("remember me" survives)', () => {
  for (const rolling of [false, true]) {
    it(`rolling: ${rolling}: requests after the rotation never re-send sid or sid.sig without an expiry`, async () => {
      const { app, server } = setup(rolling);
      const first = await request(server).get('/save');
      assertPersistent(setCookies(first));
      let cookie = jar(setCookies(first));

      app.keys = ['new-key', 'old-key'];
      const read = await request(server).get('/').set('Cookie', cookie);
      assert.deepEqual(read.body.data, { n: 1 }, 'a sid signed with the older key is accepted');
      assertPersistent(setCookies(read));

      // The next save re-signs both cookies with the newest key, with the session's expiry.
      const save = await request(server).get('/save').set('Cookie', cookie);
      assertPersistent(setCookies(save));
      assert.ok(
        setCookies(save).some((c) => c.startsWith('sid.sig=')),
        'the save re-signed the sid',
      );
      cookie = jar(setCookies(save));

      // Once every cookie signed with the old key has been re-signed, the old key can go.
      app.keys = ['new-key'];
      const after = await request(server).get('/').set('Cookie', cookie);
      assert.deepEqual(after.body.data, { n: 2 });
    });
  }
});
