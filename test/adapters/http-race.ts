/**
 * The HTTP guarantee every adapted store must keep: N overlapping increments on
 * one session end at exactly N, each response distinct.
 */
import assert from 'node:assert/strict';
import request from 'supertest';
import type { SessionOptions } from '../../src/index.js';
import { cookieHeader, makeApp } from '../helpers/app.js';

declare module '../../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

/** Run N overlapping increments on one session, then check a fresh read sees exactly N. */
export async function incrementRace(options: SessionOptions, n: number): Promise<void> {
  const app = makeApp({ lockTimeout: 120_000, storeTimeout: 30_000, ...options }, async (ctx) => {
    if (ctx.path === '/read') {
      ctx.body = { count: (await ctx.session.get()).count ?? 0 };
      return;
    }
    ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)) };
  });
  const server = app.callback();
  const first = await request(server).get('/');
  assert.equal(first.status, 200);
  const cookie = cookieHeader(first.headers['set-cookie']);
  const rest = await Promise.all(Array.from({ length: n - 1 }, () => request(server).get('/').set('Cookie', cookie)));
  assert.ok(
    rest.every((r) => r.status === 200),
    `all 200, got ${[...new Set(rest.map((r) => r.status))].join(',')}`,
  );
  const counts = [first.body.count, ...rest.map((r) => r.body.count)];
  assert.equal(new Set(counts).size, n, 'each increment saw a distinct count');
  const read = await request(server).get('/read').set('Cookie', cookie);
  assert.equal(read.body.count, n);
}
