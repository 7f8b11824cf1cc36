/**
 * RedisLocker's options: the client type it accepts, the options with their
 * defaults, and their validation (a `TypeError` naming the option and the fix).
 */
import { fromIoredis, isIoredis, type IoredisLike } from './ioredis.js';
import { Validator } from '../util/validate.js';
import type { AcquireOptions } from '../contracts/locker.js';

import type { RedisLockerClient } from './clients.js';
export type { RedisLockerClient } from './clients.js';

/** Options of {@link RedisLocker}. */
export interface RedisLockerOptions {
  /**
   * A **connected** node-redis client (`createClient`) or cluster client
   * (`createCluster`), or the `client` of a `RedisStore.connect()` store. The
   * locker never closes it; when it closes, the locker closes the connection
   * it opened itself (pub/sub).
   * Pass the same client to `RedisStore` to get the fast path (lock + read and
   * write + release in one script each, the write also checked against this
   * lease's token).
   */
  client: RedisLockerClient | IoredisLike;
  /**
   * Prefix of the lock keys: the lock of session `sid` is `<prefix>{sid}`. The
   * `{sid}` hash tag puts it in the same Redis Cluster slot as RedisStore's
   * `sess:{sid}`, so one script can touch both.
   * @default 'lock:'
   */
  prefix?: string;
  /**
   * How long a lock stays valid without renewal, in ms (`SET … PX leaseMs`). A
   * holder that dies (crash, SIGKILL, lost network) blocks its session for at
   * most this long. While a scope runs the lease is renewed every
   * {@link renewEveryMs}.
   * @default 10_000
   */
  leaseMs?: number;
  /**
   * Renew the lease once it has been held this long since its last renewal, in
   * ms; `0` disables renewal (the lease then simply expires after `leaseMs`).
   * Must be below `leaseMs`. One timer per locker drives every lease's renewal,
   * so a renewal may come up to half the margin (`leaseMs - renewEveryMs`, or
   * `renewEveryMs` if smaller) later than this.
   * @default leaseMs / 3
   */
  renewEveryMs?: number;
  /**
   * The longest a lease lives, in ms, however often it is renewed: past it
   * renewal stops, the lease is reported lost (its save is refused with
   * `LockLostError`) and the lock expires in Redis, so a scope that is never
   * ended (a `lock()` without `await using`) cannot lock its session for good.
   * Must exceed `leaseMs`; pick it above your longest scope.
   * @default 60_000 (or 2 × leaseMs when that is longer)
   */
  maxLeaseMs?: number;
  /**
   * How waiters learn that a lock was released: `'sharded'` (`SPUBLISH`/`SSUBSCRIBE`,
   * Redis 7+, the message stays on the shard that owns the key), `'plain'`
   * (`PUBLISH`/`SUBSCRIBE`, any Redis; broadcast to every node of a cluster), or
   * `false` (no notifications: waiters only poll). A release publishes only
   * when a waiter of another process registered (an uncontended release sends
   * no message). Either way the processes take turns, first come first: a
   * waiting process waits for at most about `handoff.maxMs` (session()'s
   * option) per process ahead of it in line. With `false` a waiter
   * finds its turn at its next poll (the next in line polls every
   * {@link pollMinMs}, the one behind it every 2 × `pollMinMs`, …, at most
   * {@link pollMaxMs}; a turn waits 2 × `pollMaxMs` for it): each handoff
   * between processes adds up to about `pollMinMs` of idle lock. The locker opens one extra subscriber connection
   * (`client.duplicate()`, never keeping the process alive) on the first
   * contended acquire and closes it in {@link RedisLocker.close} or when
   * `client` closes.
   * @default 'sharded' for a cluster client, 'plain' for a single-node client
   */
  pubsub?: 'sharded' | 'plain' | false;
  /**
   * Fallback poll while waiting, in ms: the first retry after `pollMinMs`, then
   * doubling up to `pollMaxMs` (never later than the moment the current lock
   * expires, or the turn it holds for another process). With pub/sub it only
   * matters when a release notification is lost (subscriber reconnecting), a
   * holder died, or a process died while the lock waited for it in its turn;
   * with `pubsub: false` it is how a waiter finds its turn (the next in line
   * polls every `pollMinMs`, the one behind it every 2 × `pollMinMs`, …).
   * @default 50
   */
  pollMinMs?: number;
  /** @see pollMinMs @default 1000 */
  pollMaxMs?: number;
  /**
   * Longest wait for one of the locker's Redis commands, in ms: a black-holed
   * server fails the acquire or the save with a `StoreError` (503) instead of
   * hanging the request. The locker bounds its commands itself (one shared
   * sweeper) and sends them without node-redis's own per-command timeout
   * (an `AbortSignal.timeout` per command, a measurable CPU cost). `0`: no bound.
   * @default 2000
   */
  commandTimeoutMs?: number;
  /**
   * Longest wait for `close()`'s graceful close of the subscriber connection,
   * in ms; past it (or at once if that connection never connected) it is
   * destroyed, so `close()` always settles.
   * @default 1000
   */
  closeTimeoutMs?: number;
}

/** The defaults of {@link RedisLockerOptions}. */
export const REDIS_LOCKER_DEFAULTS = Object.freeze({
  prefix: 'lock:',
  leaseMs: 10_000,
  pollMinMs: 50,
  pollMaxMs: 1000,
  commandTimeoutMs: 2000,
  maxLeaseMs: 60_000,
  closeTimeoutMs: 1000,
});

/** {@link RedisLockerOptions} validated, with every default filled in. */
export interface ResolvedRedisLockerOptions {
  readonly client: RedisLockerClient;
  readonly cluster: boolean;
  readonly prefix: string;
  readonly leaseMs: number;
  readonly renewEveryMs: number;
  readonly maxLeaseMs: number;
  readonly pubsub: 'sharded' | 'plain' | false;
  readonly pollMinMs: number;
  readonly pollMaxMs: number;
  readonly commandTimeoutMs: number;
  readonly closeTimeoutMs: number;
}

const check: Validator = new Validator('RedisLocker');

/** A whole number of ms: a positive one, or with `allowZero` a non-negative one (0 turns something off). */
function ms(option: string, value: unknown, fallback: number, allowZero = false): number {
  return Math.ceil(allowZero ? check.nonNegativeMs(option, value, fallback) : check.positiveMs(option, value, fallback));
}

/** A cluster client (`createCluster()`): it routes by slot. */
function isCluster(client: unknown): boolean {
  return typeof (client as { getSlotRandomNode?: unknown }).getSlotRandomNode === 'function';
}

/** Validate `options` (a JavaScript caller may pass anything) and fill in the defaults. */
export function resolveRedisLockerOptions(options: RedisLockerOptions): ResolvedRedisLockerOptions {
  if (!options || typeof options !== 'object' || !options.client) {
    check.fail(
      'client',
      'a connected node-redis client or cluster client',
      options?.client,
      'E.g. `new RedisLocker({ client: await createClient().connect() })`',
    );
  }
  check.known(
    options,
    ['client', 'prefix', 'leaseMs', 'renewEveryMs', 'maxLeaseMs', 'pubsub', 'pollMinMs', 'pollMaxMs', 'commandTimeoutMs', 'closeTimeoutMs'],
    {
      lockTimeout: 'The lock wait is an option of session(): `session({ lockTimeout })`',
      ttl: 'Use `leaseMs` for the lock lease; the session TTL is `session({ ttl })`',
    },
  );
  // An ioredis client gets the node-redis shaped adapter (the same one RedisStore makes of it).
  const client: RedisLockerClient = isIoredis(options.client) ? fromIoredis(options.client) : options.client;
  if (typeof client.evalSha !== 'function' || typeof client.eval !== 'function') {
    throw new TypeError(
      'koa-locked-session: Expected RedisLocker `client` to be a node-redis (v5+) client from createClient() or createCluster() (it has no `evalSha`/`eval`)',
    );
  }
  const cluster = isCluster(client);
  const commandTimeoutMs = ms('commandTimeoutMs', options.commandTimeoutMs, REDIS_LOCKER_DEFAULTS.commandTimeoutMs, true);
  const prefix = check.string('prefix', options.prefix, REDIS_LOCKER_DEFAULTS.prefix);
  const leaseMs = ms('leaseMs', options.leaseMs, REDIS_LOCKER_DEFAULTS.leaseMs);
  const renewEveryMs = ms('renewEveryMs', options.renewEveryMs, Math.max(1, Math.floor(leaseMs / 3)), true);
  if (renewEveryMs >= leaseMs) {
    check.fail('renewEveryMs', `below \`leaseMs\` (${leaseMs})`, renewEveryMs, 'Use e.g. leaseMs / 3, or 0 to disable renewal');
  }
  const maxLeaseMs = ms('maxLeaseMs', options.maxLeaseMs, Math.max(REDIS_LOCKER_DEFAULTS.maxLeaseMs, 2 * leaseMs));
  if (maxLeaseMs <= leaseMs) {
    check.fail(
      'maxLeaseMs',
      `above \`leaseMs\` (${leaseMs})`,
      maxLeaseMs,
      'Use e.g. 60_000: a lease lives at most maxLeaseMs, however often it is renewed',
    );
  }
  const closeTimeoutMs = ms('closeTimeoutMs', options.closeTimeoutMs, REDIS_LOCKER_DEFAULTS.closeTimeoutMs);
  const pollMinMs = ms('pollMinMs', options.pollMinMs, REDIS_LOCKER_DEFAULTS.pollMinMs);
  const pollMaxMs = ms('pollMaxMs', options.pollMaxMs, Math.max(REDIS_LOCKER_DEFAULTS.pollMaxMs, pollMinMs));
  if (pollMaxMs < pollMinMs) check.fail('pollMaxMs', `at least \`pollMinMs\` (${pollMinMs})`, pollMaxMs);
  const pubsub = check.oneOf('pubsub', options.pubsub, ['sharded', 'plain', false] as const, cluster ? 'sharded' : 'plain');
  return { client, cluster, prefix, leaseMs, renewEveryMs, maxLeaseMs, pubsub, pollMinMs, pollMaxMs, commandTimeoutMs, closeTimeoutMs };
}

const acquire: Validator = new Validator('RedisLocker.acquire()');

/**
 * The per-call arguments of `RedisLocker.acquire`: a non-negative lock timeout
 * (`Infinity`: wait for ever) and, when given, a positive store timeout.
 */
export function checkAcquireOptions(options: AcquireOptions): void {
  const { timeoutMs, storeTimeoutMs } = options;
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0))
    acquire.fail('timeoutMs', 'a non-negative number of ms (Infinity: wait for ever)', timeoutMs);
  if (storeTimeoutMs !== undefined && !(typeof storeTimeoutMs === 'number' && storeTimeoutMs > 0))
    acquire.fail('storeTimeoutMs', 'a positive number of ms', storeTimeoutMs);
}
