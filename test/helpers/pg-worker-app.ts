/**
 * One worker of the PostgreSQL multi-process tests (forked with `--import tsx`
 * and an IPC channel): its own Koa app on its own loopback port, sessions in
 * PostgreSQL with PostgresLocker (the lock is the session's row).
 *
 * Environment: `PG_URL` (required), `PG_TABLE` (required), `LOCK_TIMEOUT`
 * (default 60 000), `LEASE_MS` (PostgresLocker leaseMs, default 60 000).
 *
 * Routes, as test/helpers/worker-app.ts: `GET /incr` (read-modify-write under
 * the lock, yielding once in between), `GET /count`, `GET /hold` (increment
 * under the lock, tell the parent `{ type: 'holding' }`, finish when it sends
 * `{ type: 'finish' }`). Tells the parent `{ type: 'listening', port }`.
 */
import Koa from 'koa';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setImmediate as yieldOnce } from 'node:timers/promises';
import pg from 'pg';
import { PostgresLocker, PostgresStore, session } from '../../src/index.js';

declare module '../../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const { PG_URL: url, PG_TABLE: table } = process.env;
if (!url || !table || !process.send) throw new Error('pg-worker-app: run me with child_process.fork(), PG_URL and PG_TABLE');
const send = (message: object): void => void process.send!(message);

const pool = new pg.Pool({ connectionString: url, max: 10 });
pool.on('error', () => {}); // connections closed by the server (a restart): replaced on the next checkout
const store = new PostgresStore({ pool, table });
await store.ensureTable(); // every worker at once: the creation must be safe
const locker = new PostgresLocker({ store, leaseMs: Number(process.env.LEASE_MS ?? 60_000) });

const app = new Koa();
app.keys = ['multi-process-test-key'];
app.silent = true;
app.use(session({ master: store, locker, lockTimeout: Number(process.env.LOCK_TIMEOUT ?? 60_000) }));

let finishHold: (() => void) | undefined;
process.on('message', (message: { type?: string }) => {
  if (message?.type === 'finish') finishHold?.();
});

app.use(async (ctx) => {
  if (ctx.path === '/incr') {
    ctx.body = {
      pid: process.pid,
      count: await ctx.session.withLock(async (s) => {
        const read = s.count ?? 0;
        await yieldOnce();
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

const server = http.createServer(app.callback());
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => send({ type: 'listening', port: (server.address() as AddressInfo).port }));

process.on('disconnect', () => {
  server.close();
  server.closeAllConnections();
  void pool.end().finally(() => process.exit(0));
});
