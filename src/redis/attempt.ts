/**
 * One acquire attempt of RedisLocker: the acquire script (SET NX PX, with the
 * fast-path read of the record and the waiters-list bookkeeping of
 * scripts.ts) and what its answer means: a lease (with its fenced view of the
 * master on the fast path), or the lock's PTTL and this locker's place in
 * line. Its own file so that locker.ts reads as acquire → wait → attempt →
 * release, the way redlock's `acquire → execute → attempt` does; the loop
 * that calls it (when to try again, how long to sleep) stays in the locker.
 */
import { StoreError } from '../errors.js';
import { errorMessage } from '../util/format.js';
import { FencedStore } from './fenced.js';
import { nextToken } from './identity.js';
import { HeldLease, type LeaseHost } from './lease.js';
import type { FastPath } from './master.js';
import type { ReleaseChannels } from './pubsub.js';
import type { ScriptRunner } from './scripts.js';
import type { KeyState } from './waiters.js';

/** What an attempt needs of its locker. */
export interface AttemptHost {
  /** What each lease needs of the locker (its `leaseMs` is the PX of the SET). */
  readonly lease: LeaseHost;
  readonly scripts: ScriptRunner;
  /** The release notifications (`undefined`: polling, `pubsub: false`). */
  readonly channels: ReleaseChannels | undefined;
  /** The locker's id in the waiters lists. */
  readonly id: string;
  /** How long a waiters list lives after a registration, ms (a script argument). */
  readonly waitingMarkMs: string;
  /** A lease was taken: it counts as held by this process until it ends. */
  held(key: string): void;
}

/** The answer of one attempt: the lease, or how long the lock still lives (`pttl`, ms) and our place in its waiters list. */
export interface AttemptResult {
  readonly lease?: HeldLease;
  readonly pttl: number;
  readonly place?: number | undefined;
}

function text(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return String(value);
}

/**
 * How long one attempt may take, ms: the locker's command timeout; on the
 * fast path the fused acquire-and-read is a store read too, so the store's own
 * timeout and the middleware's `storeTimeout` bound it as well.
 */
export function attemptTimeout(scripts: ScriptRunner, fast: FastPath | undefined, storeTimeoutMs: number | undefined): number {
  return Math.min(scripts.timeoutMs, fast ? fast.timeoutMs : Infinity, fast && storeTimeoutMs !== undefined ? storeTimeoutMs : Infinity);
}

/**
 * Until when (performance.now()) the record read by the acquire surely lives
 * in Redis, from the PTTL the script answered beside it: counted from the send
 * (the countdown ran already when Redis answered), less the clock-drift
 * allowance the lease takes (1% + 2 ms). `undefined` when unknown: no record,
 * no expiry (PTTL -1).
 */
function recordUntil(sentAt: number, pttl: unknown): number | undefined {
  const px = Number(pttl);
  if (!(px > 0)) return undefined;
  return sentAt + px - Math.ceil(px * 0.01) - 2;
}

/** One SET NX attempt (with the fast-path read when possible). */
export async function attemptLock(
  host: AttemptHost,
  state: KeyState,
  fast: FastPath | undefined,
  timeoutMs: number,
): Promise<AttemptResult> {
  const { scripts, channels } = host;
  const token = nextToken();
  const { keys } = state;
  const recordKey = fast?.recordKey(keys.key);
  const scriptKeys = recordKey === undefined ? [keys.lock, keys.waiters, keys.waiting] : [keys.lock, keys.waiters, keys.waiting, recordKey];
  // Register for a wake-up only once subscribed: a wake-up sent to a locker
  // that cannot hear it would be lost for every other waiter too (the run
  // loop retries right after subscribing, and registers then). Without
  // pub/sub, always: the turn waits for the next poll.
  const register = !channels || channels.isSubscribed(keys.channel) ? host.waitingMarkMs : '';
  // Woken by id: take the turn (a failure goes back to the front). Registered before: the turn may be ours too, and a success takes the id off the list.
  const called = state.called ? '1' : '';
  const registered = state.registered ? '1' : '';
  state.called = false;
  const startedAt = performance.now();
  let reply: unknown;
  try {
    scripts.assertReady('lock acquire');
    reply = await scripts.run('acquire', scriptKeys, [token, String(host.lease.leaseMs), register, host.id, called, registered], timeoutMs);
  } catch (error) {
    if (error instanceof StoreError) throw error;
    // The SET may have landed with its reply lost (command timeout, dropped
    // connection): give back whatever this token holds, without waiting (on
    // the same connection, so it runs after the SET if that arrives late).
    void scripts.run('release', [keys.lock, keys.waiters, keys.waiting], [token, scripts.publishCommand, keys.channel]).catch(() => {});
    // Never the lock key in a message: it carries the sid.
    throw new StoreError('redis', `lock acquire (SET NX PX${fast ? ' + GET' : ''}) failed for a lock key: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  const [ok, second, third] = Array.isArray(reply) ? (reply as unknown[]) : [];
  if (Number(ok) !== 1) {
    if (register !== '') state.registered = true;
    return { pttl: Number(second ?? -1), place: third === undefined || third === null ? undefined : Number(third) };
  }
  state.registered = false;
  host.held(keys.key);
  const lease = new HeldLease(host.lease, keys, token, startedAt);
  if (fast && recordKey !== undefined) {
    lease.store = new FencedStore(
      fast.store,
      lease,
      scripts,
      recordKey,
      Math.min(scripts.timeoutMs, fast.timeoutMs),
      text(second),
      recordUntil(startedAt, third),
      fast.replicaWait,
    );
  }
  return { lease, pttl: 0 };
}
