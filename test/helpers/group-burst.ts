/**
 * Deterministic bursts on one session for group-commit tests: request 0 takes
 * the lock and holds it (its handler calls `hold()` inside its scope) until
 * requests 1..n-1 have all entered this process' queue of the session, in the
 * order sent; then it goes on, and each ending scope finds the next one
 * waiting (so it hands its change over instead of writing it).
 *
 * A handler must enter its scope (`withLock`, `lock()`) in its synchronous
 * part, before any `await`: the queue is entered synchronously, and the
 * request counts as queued as soon as the handler returned its promise.
 */
import assert from 'node:assert/strict';
import type Koa from 'koa';
import request from 'supertest';
import { MemoryStore, type SessionOptions, type WriteCondition } from '../../src/index.js';
import { cookieHeader, deferred, makeApp, sidOf } from './app.js';

declare module '../../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

/** One request's part: `i` its place in the burst; `hold()` (request 0 only) keeps the lock until everyone queued. */
export type BurstHandler = (ctx: Koa.Context, i: number, hold: () => Promise<void>) => Promise<unknown>;

interface Round {
  readonly hold: () => Promise<void>;
  readonly arrivals: Array<{ promise: Promise<void>; resolve(): void }>;
}

const noHold = (): Promise<void> => Promise.resolve();

/** The same session count at `/count` (null: no session), the burst's requests at `/?i=`. */
export function burstApp(
  options: SessionOptions,
  handler: BurstHandler,
  setup: (ctx: Koa.Context) => Promise<unknown> = (ctx) => ctx.session.withLock((s) => (s.count = 0)),
) {
  let round: Round | undefined;
  const app = makeApp(options, async (ctx) => {
    if (ctx.path === '/setup') {
      ctx.body = { result: (await setup(ctx)) ?? null };
      return;
    }
    if (ctx.path === '/count') {
      ctx.body = { count: (await ctx.session.get()).count ?? null };
      return;
    }
    const current = round!;
    const i = Number(ctx.query.i);
    const result = handler(ctx, i, i === 0 ? current.hold : noHold);
    current.arrivals[i]?.resolve();
    ctx.body = { result: (await result) ?? null };
  });
  const http = app.callback();
  return {
    app,
    http,
    /** A new session (the setup handler ran in it): its Cookie header and sid. */
    async setup(): Promise<{ cookie: string; sid: string }> {
      const res = await request(http).get('/setup');
      assert.equal(res.status, 200, `setup answered ${res.status}: ${res.text}`);
      return { cookie: cookieHeader(res.headers['set-cookie']), sid: sidOf(res) };
    },
    /** The count the session of `cookie` holds now (read without the lock). */
    async count(cookie: string): Promise<number | null> {
      const res = await request(http).get('/count').set('Cookie', cookie);
      assert.equal(res.status, 200);
      return res.body.count as number | null;
    },
    /**
     * `n` requests of `cookie`'s session queued behind request 0 in the order
     * sent. `queued(i)` runs (and is awaited) once request `i` holds the lock (0)
     * or is queued, before the next one is sent: to queue someone else there
     * (another app on the same stores, an internal lock), or to change the
     * world before request 0 goes on (`i === n - 1`). Resolves to the responses by index.
     */
    async burst(cookie: string, n: number, queued?: (i: number) => unknown): Promise<request.Response[]> {
      const holder = deferred();
      const gate = deferred();
      const current: Round = {
        hold: async () => {
          holder.resolve();
          await gate.promise;
        },
        arrivals: Array.from({ length: n }, () => deferred()),
      };
      round = current;
      const send = (i: number) =>
        request(http)
          .get(`/?i=${i}`)
          .set('Cookie', cookie)
          .then((r) => r);
      const responses: Array<Promise<request.Response>> = [send(0)];
      await holder.promise;
      await queued?.(0);
      for (let i = 1; i < n; i++) {
        responses.push(send(i));
        await current.arrivals[i]!.promise;
        await queued?.(i);
      }
      gate.resolve();
      return Promise.all(responses);
    },
  };
}

/** What each response answered: its `result` for a 200, else its status. */
export const results = (rs: readonly request.Response[]): unknown[] => rs.map((r) => (r.status === 200 ? r.body.result : r.status));

/** A MemoryStore that counts master writes and can be told to fail them (a store that refuses a batch's write). */
export class WriteCountingStore extends MemoryStore {
  writes = 0;
  failWrites = false;
  override async write(
    key: string,
    value: string | undefined,
    version: number,
    ttlMs: number,
    condition: WriteCondition,
  ): Promise<boolean> {
    this.writes++;
    if (this.failWrites) throw new Error('the store refused the write');
    return super.write(key, value, version, ttlMs, condition);
  }
}
