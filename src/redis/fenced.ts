/**
 * The master `RedisStore` seen through a RedisLocker lease (the fast path).
 */
import { LockLostError, StoreError } from '../errors.js';
import { errorMessage } from '../util/format.js';
import { unwrap } from '../contracts/envelope.js';
import { withKnownExpiry } from '../contracts/record-expiry.js';
import { ttlToMs, versionedWriteArgs } from './versioned-write.js';
import { unconfirmedError, type ReplicaWait } from './replicas.js';
import type { VersionedRecord, VersionedStore, WriteCondition } from '../contracts/store.js';
import type { HeldLease } from './lease.js';
import type { ScriptRunner } from './scripts.js';

/** How long a write's receipt lives when its command has no time bound (ms). */
const UNBOUNDED_RECEIPT_MS = 60_000;

/**
 * A RedisStore seen through a lease: the first `get`/`read` of the lease's key
 * returns the record read by the acquire script; `write`/`set`/`destroy`/`touch`
 * of that key run only while the lock still holds the lease's token, in one
 * script that also checks the version condition of `write` (so a write is
 * refused both after the lease was lost and when the record moved on), else
 * reject with `LockLostError`. Other keys pass through to the store. Each
 * write leaves a receipt, so a client that sends the script twice (a retry
 * after a lost reply) gets the first run's outcome, not a refusal of it.
 */
export class FencedStore implements VersionedStore {
  readonly name: string;
  readonly #store: VersionedStore;
  readonly #lease: HeldLease;
  readonly #scripts: ScriptRunner;
  readonly #recordKey: string;
  /** Bound on each fenced script (ms): the smaller of the locker's and the store's command timeouts. */
  readonly #timeoutMs: number;
  /** The master's `waitForReplicas` (`undefined`: no WAIT after a fenced write). */
  readonly #wait: ReplicaWait | undefined;
  /** How long a fenced write's receipt lives in Redis (ms, as the script's argument). */
  readonly #receiptMs: string;
  /** Fenced writes made so far: with the token, each write's id (its receipt, see scripts.ts). */
  #writes = 0;
  #prefetched = true;
  /** The stored string read by the acquire script (`undefined`: no key). */
  #stored: string | undefined;
  /** Until when (performance.now()) that record surely lives in Redis, from the PTTL read with it (`undefined`: unknown). */
  readonly #storedUntil: number | undefined;

  constructor(
    store: VersionedStore,
    lease: HeldLease,
    scripts: ScriptRunner,
    recordKey: string,
    timeoutMs: number,
    stored: string | undefined,
    storedUntil: number | undefined,
    wait?: ReplicaWait,
  ) {
    this.name = store.name;
    this.#store = store;
    this.#lease = lease;
    this.#scripts = scripts;
    this.#recordKey = recordKey;
    this.#timeoutMs = timeoutMs;
    this.#stored = stored;
    this.#storedUntil = storedUntil;
    this.#wait = wait;
    // A replay comes while the first send is still awaited: the receipt must outlive that bound.
    this.#receiptMs = String(Number.isFinite(timeoutMs) ? Math.max(1000, 2 * Math.ceil(timeoutMs)) : UNBOUNDED_RECEIPT_MS);
  }

  async get(key: string): Promise<string | undefined> {
    if (key === this.#lease.key && this.#prefetched) return this.#takePrefetched()?.value;
    return this.#store.get(key);
  }

  async read(key: string): Promise<VersionedRecord | undefined> {
    if (key === this.#lease.key && this.#prefetched) return this.#takePrefetched();
    return this.#store.read(key);
  }

  async write(key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition): Promise<boolean> {
    if (key !== this.#lease.key) return this.#store.write(key, value, version, ttlMs, condition);
    this.#prefetched = false;
    const outcome = await this.#fenced('conditional write', ['write', ...versionedWriteArgs(value, version, ttlMs, condition)]);
    return outcome === 1;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    if (key !== this.#lease.key) return this.#store.set(key, value, ttlMs);
    this.#prefetched = false;
    await this.#fenced('SET', ['set', value, String(ttlToMs(ttlMs))]);
  }

  async destroy(key: string): Promise<void> {
    if (key !== this.#lease.key) return this.#store.destroy(key);
    this.#prefetched = false;
    await this.#fenced('DEL', ['del']);
  }

  async touch(key: string, ttlMs: number): Promise<void> {
    if (key !== this.#lease.key) return this.#store.touch?.(key, ttlMs);
    await this.#fenced('PEXPIRE', ['pexpire', String(ttlToMs(ttlMs))]);
  }

  #takePrefetched(): VersionedRecord | undefined {
    this.#prefetched = false;
    const stored = this.#stored;
    this.#stored = undefined;
    if (stored === undefined) return undefined;
    const record = unwrap(stored);
    return this.#storedUntil === undefined ? record : withKnownExpiry(record, this.#storedUntil);
  }

  /** Run the fenced script; resolves 1 (written) or 2 (the version condition refused it), rejects with LockLostError when the token is gone. */
  async #fenced(op: string, args: string[]): Promise<1 | 2> {
    const lease = this.#lease;
    const scripts = this.#scripts;
    const releasing = lease.takeReleaseOnWrite();
    const { lock, waiters, waiting, channel, receipt } = lease.keys;
    let outcome: unknown;
    let confirmed = Infinity;
    try {
      scripts.assertReady(`fenced ${op}`);
      const [command, ...operands] = args;
      const keys = [lock, this.#recordKey, waiters, waiting, receipt];
      const id = `${lease.token}#${++this.#writes}`;
      const argv = [lease.token, command!, releasing ? '1' : '0', scripts.publishCommand, channel, id, this.#receiptMs, ...operands];
      if (this.#wait) ({ reply: outcome, confirmed } = await scripts.runThenWait('fenced', keys, argv, this.#wait, this.#timeoutMs));
      else outcome = await scripts.run('fenced', keys, argv, this.#timeoutMs);
    } catch (error) {
      if (error instanceof StoreError) throw error;
      throw new StoreError(this.name, `fenced ${op} failed: ${errorMessage(error)}`, { cause: error });
    }
    const code = Number(outcome);
    if (code === 0) {
      lease.markLost(`fenced ${op} found the token gone`);
      throw new LockLostError();
    }
    if (code === 2) return 2; // refused by the version: the lock is still ours, release() gives it back
    if (releasing) lease.releasedByWrite();
    // Written on the primary, but not on enough replicas: a failover may lose it.
    if (this.#wait && !(confirmed >= this.#wait.replicas)) throw unconfirmedError(`fenced ${op}`, this.#wait, confirmed, this.name);
    return 1;
  }
}
