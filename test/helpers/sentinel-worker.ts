/**
 * One worker of the Sentinel failover test (forked with `--import tsx` and an
 * IPC channel): the counter app of test/helpers/counter-worker.ts, sessions in
 * RedisStore + RedisLocker on one client that finds the primary through the
 * Sentinels.
 *
 * Environment:
 * - `SENTINEL_PORTS` (required): the Sentinels' loopback ports, comma-separated.
 * - `CLIENT`: `node-redis` (`createSentinel`, the default) or `ioredis` (`new Redis({ sentinels })`).
 * - `WAIT_REPLICAS`: RedisStore `waitForReplicas` (default 0: no wait).
 */
import { Redis } from 'ioredis';
import { createSentinel } from 'redis';
import { RedisLocker, RedisStore, type RedisStoreOptions } from '../../src/index.js';
import { serveCounter } from './counter-worker.js';
import { MASTER_NAME } from './redis-sentinel.js';

const ports = (process.env.SENTINEL_PORTS ?? '').split(',').filter(Boolean).map(Number);
if (ports.length === 0) throw new Error('sentinel-worker: run me with child_process.fork() and SENTINEL_PORTS');
const waitForReplicas = Number(process.env.WAIT_REPLICAS ?? 0);

let client: RedisStoreOptions['client'];
let close: () => Promise<unknown>;
if (process.env.CLIENT === 'ioredis') {
  const io = new Redis({
    sentinels: ports.map((port) => ({ host: '127.0.0.1', port })),
    name: MASTER_NAME,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  io.on('error', () => {}); // reconnects by itself (to the new primary after a failover); requests report failures
  await new Promise<void>((resolve, reject) => {
    io.once('ready', resolve);
    io.once('error', reject);
  });
  client = io;
  close = async () => io.disconnect();
} else {
  const sentinel = createSentinel({ name: MASTER_NAME, sentinelRootNodes: ports.map((port) => ({ host: '127.0.0.1', port })) });
  sentinel.on('error', () => {}); // rediscovers the primary by itself; requests report failures
  await sentinel.connect();
  client = sentinel;
  close = () => sentinel.close();
}

const locker = new RedisLocker({ client, leaseMs: 2000 });
serveCounter({ master: new RedisStore({ client, waitForReplicas, waitForReplicasTimeoutMs: 500 }), locker, lockTimeout: 5000 }, () =>
  locker.close().finally(close),
);
