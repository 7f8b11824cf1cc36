import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Koa from 'koa';
import Keygrip from 'keygrip';
import request from 'supertest';
import { session } from '../src/index.js';
import { cookieHeader } from './helpers/cookies.js';

declare module '../src/index.js' {
  interface SessionData {
    n?: number;
  }
}

type Transport = 'cookie' | 'header';

function app(keys: unknown, transport: Transport) {
  const a = new Koa();
  a.silent = true;
  if (keys !== undefined) a.keys = keys as string[];
  const errors: Error[] = [];
  a.on('error', (e: Error) => errors.push(e));
  a.use(session(transport === 'header' ? { sid: { header: 'x-session' } } : {}));
  a.use(async (ctx) => {
    if (ctx.path === '/save') await ctx.session.withLock((s) => void (s.n = (s.n ?? 0) + 1));
    ctx.body = { data: await ctx.session.get() };
  });
  return { server: a.callback(), errors };
}

/** The credential the response handed out, as the next request sends it. */
function credential(res: request.Response, transport: Transport): [string, string] {
  if (transport === 'header') return ['x-session', String(res.headers['x-session'])];
  return ['Cookie', cookieHeader(res)];
}

describe('app.keys, checked the same way for the cookie and the header transport', () => {
  for (const transport of ['cookie', 'header'] as const) {
    for (const [label, keys, pattern] of [
      ['unset', undefined, /app\.keys is not set.*app\.keys = \[/],
      ['an empty array', [], /app\.keys is an empty array.*app\.keys = \[/],
      ['an array with an empty key', ['k', ''], /app\.keys\[1\] is not a non-empty string or Buffer.*app\.keys = \[/],
      ['a string', 'secret', /app\.keys is neither an array of secrets nor a Keygrip instance.*app\.keys = \[/],
    ] as const) {
      it(`${transport}: app.keys ${label} → every request fails with a message naming the fix (not only new sessions)`, async () => {
        const { server, errors } = app(keys, transport);
        for (const path of ['/', '/save']) {
          const res = await request(server).get(path);
          assert.equal(res.status, 500);
        }
        assert.equal(errors.length, 2);
        for (const e of errors) assert.match(e.message, pattern);
        if (transport === 'cookie') assert.match(errors[0]!.message, /cookie: \{ signed: false \}/);
      });
    }

    it(`${transport}: a Keygrip instance as app.keys signs and verifies (no 500 on a new session)`, async () => {
      const { server, errors } = app(new Keygrip(['k1', 'k0'], 'sha256'), transport);
      const first = await request(server).get('/save');
      assert.equal(first.status, 200, String(errors[0]?.stack));
      const second = await request(server)
        .get('/save')
        .set(...credential(first, transport));
      assert.equal(second.status, 200);
      assert.deepEqual(second.body.data, { n: 2 });
      // The same sid under a signature from a key the app does not hold is refused.
      const [name, value] = credential(first, transport);
      const forged =
        transport === 'header'
          ? `${value.slice(0, value.lastIndexOf('.'))}.${new Keygrip(['other'], 'sha256').sign('x-session=' + value.slice(0, value.lastIndexOf('.')))}`
          : value.replace(/sid\.sig=[^;]*/, 'sid.sig=' + new Keygrip(['other']).sign('sid=x'));
      const third = await request(server).get('/').set(name, forged);
      assert.deepEqual(third.body.data, {});
    });
  }
});
