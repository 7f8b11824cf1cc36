/**
 * The app every multi-process worker serves (test/helpers/worker-app.ts on Redis,
 * test/helpers/pg-worker-app.ts on PostgreSQL): one counter, `count`, in the
 * session, on its own loopback port, talking to the parent over the IPC channel.
 *
 * Routes:
 * - `GET /incr`: read-modify-write under the lock, yielding once in between.
 * - `GET /incr-slow`: the same, holding the lock 20 ms between the read and the
 *   write (a slow call under the lock: a process with a few of these queued
 *   keeps the lock busy without a pause).
 * - `GET /count`: the unlocked snapshot's count.
 * - `GET /hold`: increment under the lock, tell the parent `{ type: 'holding' }`,
 *   and finish only when the parent sends `{ type: 'finish' }` (the parent may
 *   SIGKILL or SIGSTOP us meanwhile).
 * - `GET /incr-after-barrier`: read-modify-write under the lock that, between
 *   the read and the write, tells the parent `{ type: 'read', count }` and waits
 *   for `{ type: 'write' }`: a barrier the parent releases once every worker has
 *   read, so the race between processes is certain, not left to scheduling.
 *
 * Messages to the parent: `{ type: 'listening', port }`, `{ type: 'holding' }`,
 * `{ type: 'read', count }`. When the parent disconnects, the worker stops
 * serving, runs `shutdown` (close the locker and clients) and exits.
 */
import Koa from 'koa';
import { setImmediate as yieldOnce, setTimeout as sleep } from 'node:timers/promises';
import { session, type SessionOptions } from '../../src/index.js';
import { serveForParent } from './worker-serve.js';

declare module '../../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

export function serveCounter(options: SessionOptions, shutdown: () => Promise<unknown>): void {
  if (!process.send) throw new Error('counter worker: run me with child_process.fork()');
  const send = (message: object): void => void process.send!(message);

  const app = new Koa();
  app.keys = ['multi-process-test-key']; // the same in every worker: any of them verifies the cookie
  app.silent = true;
  app.use(session(options));

  let finishHold: (() => void) | undefined;
  let passBarrier: (() => void) | undefined;
  process.on('message', (message: { type?: string }) => {
    if (message?.type === 'finish') finishHold?.();
    if (message?.type === 'write') passBarrier?.();
  });

  app.use(async (ctx) => {
    if (ctx.path === '/incr') {
      ctx.body = {
        pid: process.pid,
        count: await ctx.session.withLock(async (s) => {
          const read = s.count ?? 0;
          await yieldOnce(); // let other work in this process run between the read and the write
          return (s.count = read + 1);
        }),
      };
    } else if (ctx.path === '/incr-slow') {
      ctx.body = {
        pid: process.pid,
        count: await ctx.session.withLock(async (s) => {
          const read = s.count ?? 0;
          await sleep(20);
          return (s.count = read + 1);
        }),
      };
    } else if (ctx.path === '/incr-after-barrier') {
      ctx.body = {
        pid: process.pid,
        count: await ctx.session.withLock(async (s) => {
          const read = s.count ?? 0;
          const barrier = new Promise<void>((resolve) => (passBarrier = resolve));
          send({ type: 'read', count: read });
          await barrier;
          return (s.count = read + 1);
        }),
      };
    } else if (ctx.path === '/count') {
      ctx.body = { pid: process.pid, count: (await ctx.session.get()).count ?? 0 };
    } else if (ctx.path === '/hold') {
      ctx.body = {
        pid: process.pid,
        count: await ctx.session.withLock(async (s) => {
          s.count = (s.count ?? 0) + 1;
          const finished = new Promise<void>((resolve) => (finishHold = resolve));
          send({ type: 'holding' });
          await finished;
          return s.count;
        }),
      };
    } else {
      ctx.status = 404;
    }
  });

  serveForParent(app, send, shutdown);
}
