import { performance } from 'node:perf_hooks';
import { mirrorErrorChannel, storeChannel, type StoreMessage } from '../diagnostics.js';
import { withDeadline } from '../util/deadline.js';
import { StoreError } from '../errors.js';
import type { WriteDescriptor } from '../contracts/write.js';
import {
  isVersioned,
  type BoundRequestStore,
  type RequestWriteOptions,
  type Store,
  type VersionedRecord,
  type VersionedStore,
  type WriteCondition,
} from '../contracts/store.js';

/** What a failed mirror write reports (turned into `session:mirror-error` by the middleware). */
export interface MirrorError {
  /** Name of the mirror that failed (its `Store.name`). */
  store: string;
  /** Key of the session the write was for: the session `prefix` followed by the sid. */
  sid: string;
  /** The store call that failed or was dropped. */
  op: 'set' | 'destroy' | 'touch';
  /** What the mirror threw (a `StoreError` for a timeout or a dropped write). */
  error: unknown;
}

/** How mirror writes relate to the request: awaited before the scope ends, or left to finish in the background. */
export type MirrorWrites = 'await' | 'background';

/** Settings of a {@link Replica}. */
export interface ReplicaOptions {
  /** Called with every failed or dropped mirror write (the middleware emits it as `session:mirror-error`); it should not throw. */
  onMirrorError: (report: MirrorError) => void;
  /** Whether writes wait for the mirrors (`'await'`) or leave them in the background. @default 'await' */
  mode?: MirrorWrites;
  /** Bound on every store call in ms; past it the call fails with a StoreError. */
  storeTimeout?: number;
  /** Most background mirror writes in flight; past it new ones are dropped (and reported). */
  maxPendingMirrorWrites?: number;
  /** Session name for diagnostics. */
  session?: string;
}

type Op = StoreMessage['op'];

/**
 * Master + mirrors as one Store (a `VersionedStore` when the master is one;
 * the store conformance suite runs on it): reads from the master only; writes
 * go to the master first (its failure fails the call and no mirror is
 * written), then to every mirror in parallel. A mirror failure is reported,
 * never thrown. Every call is bounded by `storeTimeout` and published on the
 * diagnostics channel.
 *
 * One deadline per call: a store that bounds its own calls
 * ({@link Store.timeoutMs}, every built-in store) at or under `storeTimeout`
 * is called directly; any other store (a custom one, or a built-in one whose
 * own bound is longer than `storeTimeout`) is bounded here.
 */
export class Replica implements VersionedStore {
  readonly name: string;
  readonly #options: Required<ReplicaOptions>;
  readonly #pending: Set<Promise<void>>;
  /** The master when it is a request-bound store (CookieStore): the one master that takes {@link RequestWriteOptions}. */
  #bound: BoundRequestStore | undefined;
  /** Length of the session prefix of keys (`prefix + sid`), which a request-bound master does not take. */
  #prefixLength = 0;

  constructor(
    /** The store reads come from and writes go to first; its failure fails the call. */
    readonly master: Store,
    /** Stores written after the master, in parallel; their failures are reported, never thrown. */
    readonly mirrors: readonly Store[],
    options: ReplicaOptions,
    pending = new Set<Promise<void>>(),
  ) {
    this.name = master.name;
    this.#options = { mode: 'await', storeTimeout: 2000, maxPendingMirrorWrites: 1000, session: 'session', ...options };
    this.#pending = pending;
  }

  /**
   * One request's replica whose master is bound to that request (a
   * `RequestStore`'s `bindRequest`), in front of the app's mirrors; `pending`
   * is the app's background mirror queue, shared by all its requests. Keys
   * are `prefix + sid` as everywhere (mirrors and locks need the prefix); the
   * bound master is called with the bare sid, the id its request carries.
   */
  static forRequest(
    master: BoundRequestStore,
    prefix: string,
    mirrors: readonly Store[],
    options: ReplicaOptions,
    pending: Set<Promise<void>>,
  ): Replica {
    const replica = new Replica(master, mirrors, options, pending);
    replica.#bound = master;
    replica.#prefixLength = prefix.length;
    return replica;
  }

  /** The master's key for `key`: the bare sid for a request-bound master, else `key` itself. */
  #masterKey(key: string): string {
    return this.#prefixLength === 0 ? key : key.slice(this.#prefixLength);
  }

  /** The same mirrors (and background queue) in front of another view of the master (e.g. a lease-guarded one). */
  withMaster(master: Store): Replica {
    // A request-bound master lives in this request only: no locker has a guarded view of it.
    if (master === this.master || this.#bound !== undefined) return this;
    return new Replica(master, this.mirrors, this.#options, this.#pending);
  }

  get(key: string): Promise<string | undefined> {
    return this.#call(this.master, 'master', 'get', () => this.master.get(this.#masterKey(key)));
  }

  /** The master's record with its version (a store without versions reports version 0 and no tombstones). */
  read(key: string): Promise<VersionedRecord | undefined> {
    const { master } = this;
    // Not async: a versioned master (every read-only request) costs one promise, #call's, not two.
    if (isVersioned(master)) return this.#call(master, 'master', 'get', () => master.read(key));
    return this.get(key).then((value) => (value === undefined ? undefined : { value, version: 0 }));
  }

  /**
   * A versioned write ({@link VersionedStore.write}): the master write,
   * conditional on `condition` (a scope's save: the version it read, or `null`
   * for a new sid); `false` when the master refused it (nothing was written
   * anywhere). Then every mirror gets the same version, applied only over
   * older data (a delete leaves a tombstone there for `ttlMs`), so late or
   * reordered mirror writes never win. `value` undefined deletes; the master
   * keeps a tombstone for `ttlMs` here, as the contract says; see `put`
   * for the session's own writes.
   */
  write(key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition): Promise<boolean> {
    return this.put({ key, value, version, ttlMs, condition });
  }

  /**
   * @internal The session's own writes (src/core/write.ts), not part of the Store contract.
   * {@link write}, as the session's own writes describe it: a delete's master
   * keeps its tombstone for `tombstoneMs` (default `ttlMs`; the session passes
   * 0 where a tombstone on the master would wrongly read as "moved by
   * regenerate()"), and `cookie` reaches a request-bound master only (the
   * cookie kind of a CookieStore).
   */
  async put(write: WriteDescriptor): Promise<boolean> {
    const { key, value, version, ttlMs, condition, tombstoneMs: masterTombstoneMs = ttlMs, cookie: options } = write;
    const { master } = this;
    const op: Op = value === undefined ? 'destroy' : 'set';
    if (isVersioned(master)) {
      const applied = await this.#call(master, 'master', op, () =>
        master.write(key, value, version, value === undefined ? masterTombstoneMs : ttlMs, condition),
      );
      if (!applied) return false;
      await this.#fanOut(key, op, (mirror) => mirrorWrite(mirror, key, value, version, ttlMs));
      return true;
    }
    // A master without versions (CookieStore, a custom store) cannot refuse a late write and
    // gives mirrors no version to order by: plain set/destroy everywhere.
    const bound = this.#bound;
    const own = this.#masterKey(key);
    await this.#call(master, 'master', op, () =>
      value === undefined ? master.destroy(own) : bound ? bound.set(own, value, ttlMs, options) : master.set(own, value, ttlMs),
    );
    await this.#fanOut(key, op, (mirror) => (value === undefined ? mirror.destroy(key) : mirror.set(key, value, ttlMs)));
    return true;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.#call(this.master, 'master', 'set', () => this.master.set(this.#masterKey(key), value, ttlMs));
    await this.#fanOut(key, 'set', (m) => m.set(key, value, ttlMs));
  }

  async destroy(key: string): Promise<void> {
    await this.#call(this.master, 'master', 'destroy', () => this.master.destroy(this.#masterKey(key)));
    await this.#fanOut(key, 'destroy', (m) => m.destroy(key));
  }

  /** `options` reach a request-bound master only (the cookie kind of a CookieStore); other stores take none. */
  async touch(key: string, ttlMs: number, options?: RequestWriteOptions): Promise<void> {
    const { master } = this;
    const bound = this.#bound;
    if (bound) await this.#call(master, 'master', 'touch', () => bound.touch(this.#masterKey(key), ttlMs, options));
    else if (master.touch) await this.#call(master, 'master', 'touch', () => master.touch!(key, ttlMs));
    await this.#fanOut(key, 'touch', (m) => m.touch?.(key, ttlMs));
  }

  /** Wait until every background mirror write has settled. */
  flush(): Promise<void> {
    return flushPending(this.#pending);
  }

  /** Wait for background mirror writes, then close the master and every mirror (each closes only what it created). */
  async close(): Promise<void> {
    await this.flush();
    await Promise.all([this.master, ...this.mirrors].map((s) => s.close?.()));
  }

  #fanOut(key: string, op: MirrorError['op'], call: (mirror: Store) => Promise<unknown> | undefined): Promise<void> | void {
    if (this.mirrors.length === 0) return;
    const { mode, maxPendingMirrorWrites } = this.#options;
    if (mode === 'background' && this.#pending.size >= maxPendingMirrorWrites) {
      // A slow or dead mirror must not grow memory without bound: drop and report.
      for (const mirror of this.mirrors) {
        this.#report({
          store: mirror.name,
          sid: key,
          op,
          error: new StoreError(mirror.name, `mirror queue full (${maxPendingMirrorWrites} writes pending): ${op} dropped`),
        });
      }
      return;
    }
    const all = Promise.all(
      this.mirrors.map(async (mirror) => {
        try {
          await this.#call(mirror, 'mirror', op, () => call(mirror) ?? Promise.resolve());
        } catch (error) {
          this.#report({ store: mirror.name, sid: key, op, error });
          if (op !== 'touch' && isVersioned(mirror)) this.#retry(mirror, key, op, call);
        }
      }),
    ).then(() => undefined);
    if (mode === 'await') return all;
    this.#pending.add(all);
    void all.finally(() => this.#pending.delete(all));
  }

  /**
   * One more try of a failed versioned mirror write, in the background after
   * {@link MIRROR_RETRY_MS}: versioned writes are idempotent and ordered, so
   * a retry can never apply over newer data. This bounds how long a mirror
   * stays stale after a passing fault; a mirror down for longer is reported
   * (`session:mirror-error`) and its copy expires with its TTL.
   */
  #retry(mirror: Store, key: string, op: MirrorError['op'], call: (mirror: Store) => Promise<unknown> | undefined): void {
    const retry = new Promise<void>((resolve) => setTimeout(resolve, Math.min(MIRROR_RETRY_MS, this.#options.storeTimeout)).unref())
      .then(() => this.#call(mirror, 'mirror', op, () => call(mirror) ?? Promise.resolve()))
      .then(
        () => undefined,
        (error: unknown) => this.#report({ store: mirror.name, sid: key, op, error }),
      );
    this.#pending.add(retry);
    void retry.finally(() => this.#pending.delete(retry));
  }

  #report(report: MirrorError): void {
    if (mirrorErrorChannel.hasSubscribers) {
      mirrorErrorChannel.publish({ session: this.#options.session, store: report.store, op: report.op, error: report.error });
    }
    this.#options.onMirrorError(report);
  }

  /**
   * One store call: bounded by storeTimeout (here, unless the store bounds
   * itself as tightly), failures as StoreError naming the store, timed for
   * diagnostics.
   */
  async #call<T>(store: Store, role: 'master' | 'mirror', op: Op, call: () => Promise<T>): Promise<T> {
    const observed = storeChannel.hasSubscribers;
    const start = observed ? performance.now() : 0;
    let error: unknown;
    try {
      const { storeTimeout } = this.#options;
      const own = store.timeoutMs;
      return await (typeof own === 'number' && own <= storeTimeout ? call() : bounded(store, op, call, storeTimeout));
    } catch (cause) {
      error = cause;
      if (cause instanceof StoreError) {
        // A failed write may still land (timed out, connection lost mid-write) unless the store knows it never left.
        cause.outcome ??= op === 'get' ? 'none' : 'unknown';
        throw cause;
      }
      if ((cause as { status?: unknown })?.status !== undefined) throw cause;
      throw new StoreError(store.name, `${op.toUpperCase()} failed: ${(cause as Error)?.message ?? String(cause)}`, {
        cause,
        outcome: op === 'get' ? 'none' : 'unknown',
      });
    } finally {
      if (observed) {
        const message: StoreMessage = {
          session: this.#options.session,
          store: store.name,
          role,
          op,
          durationMs: performance.now() - start,
        };
        if (error !== undefined) message.error = error;
        storeChannel.publish(message);
      }
    }
  }
}

/** Wait until every background mirror write in `pending` (one app's queue) has settled. */
export async function flushPending(pending: Set<Promise<void>>): Promise<void> {
  while (pending.size > 0) await Promise.allSettled([...pending]);
}

/** Delay before the one retry of a failed mirror write (capped at `storeTimeout`). */
const MIRROR_RETRY_MS = 1000;

/** A mirror write of `version`: versioned stores apply it only over older data; others get plain set/destroy. */
function mirrorWrite(mirror: Store, key: string, value: string | undefined, version: number, ttlMs: number): Promise<unknown> {
  if (isVersioned(mirror)) return (mirror as VersionedStore).write(key, value, version, ttlMs, 'newer');
  return value === undefined ? mirror.destroy(key) : mirror.set(key, value, ttlMs);
}

/** `call()`, or a StoreError once `ms` have passed without an answer (a write's outcome is then unknown). */
function bounded<T>(store: Store, op: Op, call: () => Promise<T>, ms: number): Promise<T> {
  const outcome = op === 'get' ? 'none' : 'unknown';
  return withDeadline(
    call,
    ms,
    () => new StoreError(store.name, `${op.toUpperCase()} timed out after ${ms} ms (storeTimeout)`, { outcome }),
  );
}
