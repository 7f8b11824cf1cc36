/**
 * Type-level checks for RedisLocker's `client`, compiled by `tsc --noEmit`
 * (never run): every client a user can have is accepted without a cast.
 */
import { createClient, createCluster } from 'redis';
import { RedisLocker, RedisStore, type RedisLease } from '../../src/index.js';

export async function clientsRedisLockerAccepts(): Promise<void> {
  // The client of RedisStore.connect(): store and locker on one connection (the fast path).
  const store = await RedisStore.connect({ url: 'redis://127.0.0.1:6379' });
  const locker = new RedisLocker({ client: store.client });

  // A createClient() client, with modules/RESP3 or not, and a cluster client.
  new RedisLocker({ client: await createClient({ url: 'redis://127.0.0.1:6379' }).connect() });
  new RedisLocker({ client: createClient({ RESP: 3 }) });
  new RedisLocker({ client: createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:7000' }] }) });

  // acquire() gives the RedisLease view: token and signal, no internals.
  const lease: RedisLease = await locker.acquire('sid', { timeoutMs: 1000, store });
  const token: string = lease.token;
  const signal: AbortSignal = lease.signal;
  // @ts-expect-error: the lease's internals are not part of its type
  lease.markLost('x');
  // @ts-expect-error: nor are the locker's
  void locker.runScript;
  void token;
  void signal;
  await lease.release();

  // @ts-expect-error: not a Redis client
  new RedisLocker({ client: {} });
}
