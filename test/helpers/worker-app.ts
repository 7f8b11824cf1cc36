/**
 * One worker of the multi-process tests (forked with `--import tsx` and an IPC
 * channel): the counter app of test/helpers/counter-worker.ts (routes and
 * messages are described there), sessions in Redis.
 *
 * Environment:
 * - `REDIS_URL` (required): the Redis every worker shares.
 * - `LOCKER`: `redis` (RedisLocker, the default) or `memory` (MemoryLocker: one
 *   lock per process, the case that loses updates across processes).
 * - `LEASE_MS`: RedisLocker lease (default 10 000).
 * - `PUBSUB`: `false` for a RedisLocker without release notifications (waiters poll).
 * - `LOCK_TIMEOUT`: session() `lockTimeout` (default 60 000).
 */
import { createClient } from 'redis';
import { MemoryLocker, RedisLocker, RedisStore } from '../../src/index.js';
import { serveCounter } from './counter-worker.js';

const url = process.env.REDIS_URL;
if (!url) throw new Error('worker-app: run me with child_process.fork() and REDIS_URL');

const client = createClient({ url });
client.on('error', () => {}); // reconnects by itself; requests report failures
await client.connect();

const locker =
  process.env.LOCKER === 'memory'
    ? new MemoryLocker()
    : new RedisLocker({
        client,
        leaseMs: Number(process.env.LEASE_MS ?? 10_000),
        ...(process.env.PUBSUB === 'false' ? { pubsub: false } : {}),
      });

serveCounter({ master: new RedisStore({ client }), locker, lockTimeout: Number(process.env.LOCK_TIMEOUT ?? 60_000) }, () =>
  Promise.resolve((locker as { close?: () => Promise<void> }).close?.()).finally(() => client.close()),
);
