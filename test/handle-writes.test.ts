/**
 * No silent footguns (issue 14, item 1): the koa-session habits
 * `ctx.session.views = 1` and `ctx.session = null` throw a TypeError naming the
 * fix, in sloppy code too (where a frozen object or a getter without setter
 * would ignore the write), and nothing is saved by them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { MemoryStore } from '../src/index.js';
import { cookieHeader, makeApp } from './helpers/app.js';

declare module '../src/index.js' {
  interface SessionData {
    views?: number;
  }
}

/** Runs `body` with `ctx` in sloppy mode (a Function body is sloppy unless it says otherwise), or in strict mode. */
const sloppy = (body: string) => new Function('ctx', body) as (ctx: unknown) => void;
const strict = (body: string) => new Function('ctx', `'use strict'; ${body}`) as (ctx: unknown) => void;

const WRITES: Array<[string, RegExp]> = [
  ['ctx.session.views = 1', /ctx\.session\.views = … does nothing.*withLock\(\(s\) => \{ s\.views = … \}\)/],
  ['ctx.session.id = "x"', /ctx\.session\.id = … does nothing.*withLock/],
  ['ctx.session.withLock = () => 1', /ctx\.session\.withLock = … does nothing/],
  ['ctx.session[Symbol("k")] = 1', /withLock/],
  ['ctx.session = null', /ctx\.session cannot be assigned.*destroy\(\)/],
  ['ctx.session = { views: 1 }', /ctx\.session cannot be assigned.*destroy\(\)/],
];

describe('writes to the session handle', () => {
  for (const [mode, compile] of [
    ['sloppy', sloppy],
    ['strict', strict],
  ] as const) {
    it(`throw a TypeError naming the fix in ${mode} code, save nothing, and leave the handle working`, async () => {
      const store = new MemoryStore();
      const app = makeApp({ master: store }, async (ctx) => {
        if (ctx.path === '/inc') {
          ctx.body = { views: await ctx.session.withLock((s) => (s.views = (s.views ?? 0) + 1)) };
          return;
        }
        const errors: string[] = [];
        for (const [code] of WRITES) {
          try {
            compile(code)(ctx);
            errors.push(`no error: ${code}`);
          } catch (error) {
            errors.push(error instanceof TypeError ? error.message : `not a TypeError: ${String(error)}`);
          }
        }
        ctx.body = { errors, views: (await ctx.session.get()).views ?? null, isNew: ctx.session.isNew };
      });
      const server = app.callback();
      const first = await request(server).get('/inc');
      assert.deepEqual(first.body, { views: 1 });
      const cookie = cookieHeader(first.headers['set-cookie']);

      const res = await request(server).get('/write').set('Cookie', cookie);
      assert.equal(res.status, 200);
      const errors = res.body.errors as string[];
      assert.equal(errors.length, WRITES.length);
      WRITES.forEach(([code, message], i) => assert.match(errors[i]!, message, code));
      assert.equal(res.body.views, 1, 'the handle still reads the session');
      assert.equal(res.body.isNew, false);
      assert.equal(res.headers['set-cookie'], undefined, 'nothing was saved');

      const after = await request(server).get('/inc').set('Cookie', cookie);
      assert.deepEqual(after.body, { views: 2 }, 'the refused writes changed nothing');
    });
  }
});
