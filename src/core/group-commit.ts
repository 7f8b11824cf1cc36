import { performance } from 'node:perf_hooks';
import { ConflictError } from '../errors.js';
import type { VersionedRecord } from '../contracts/store.js';

/** Bounds of group commit (option `groupCommit` of session()); `false` turns it off. */
export interface GroupCommitOptions {
  /** Most scopes whose changes one master write carries. */
  maxScopes: number;
  /** Most ms a batch stays open (counted from its first scope's end); past it the next scope to end writes, or the holder's lock writes it if that scope still runs (a timer: not while that scope blocks the event loop, see docs/group-commit.md). */
  maxMs: number;
}

/**
 * Scopes of one session in one process whose changes ride on one master write
 * (group commit). A scope that ends while another scope of the session waits
 * in this process does not write: it hands the lease over with its encoded
 * record, unsaved, and waits for {@link done}. The next holder starts on that
 * record, and the first write it makes to the key (or the flush when the
 * lease leaves the process) carries every change of the batch: {@link done}
 * then resolves, or rejects with the write's error, for every scope in it.
 */
export class Batch {
  /** Scopes waiting in this batch for the write that carries their changes. */
  size = 0;
  /** When the first scope joined (performance.now()). */
  readonly started = performance.now();
  /**
   * Settles with the write that carries the batch; resolves to `true` when that
   * write removed the record (a later scope moved or ended the session:
   * regenerate, login, destroy, revokeAll, absoluteTtl), so a member must not
   * re-send the old sid's cookie after it.
   */
  readonly done: Promise<boolean>;
  #resolve!: (removed: boolean) => void;
  #reject!: (error: unknown) => void;
  #settled = false;

  constructor() {
    this.done = new Promise<boolean>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.done.catch(() => {}); // a batch nobody joined yet must not be an unhandled rejection
  }

  /** No scope may join any more: the next one to end writes. */
  full(bounds: GroupCommitOptions): boolean {
    return this.size + 1 >= bounds.maxScopes || this.expired(bounds);
  }

  /** Open for longer than `maxMs`: it must not wait for another scope. */
  expired(bounds: GroupCommitOptions): boolean {
    return performance.now() - this.started >= bounds.maxMs;
  }

  /** The write that carries the batch was acknowledged (`error` undefined; `removed`: it deleted the record) or failed. */
  settle(error?: unknown, removed = false): void {
    if (this.#settled) return;
    this.#settled = true;
    if (error === undefined) this.#resolve(removed);
    else this.#reject(error);
  }
}

/**
 * A batch's record handed over with the lease, not in the master yet: the
 * master still holds `version`, and the next write of the key, at `version` + 1,
 * carries the batch (with `ttl`, the last scope's).
 */
export interface PendingRecord {
  readonly value: string;
  readonly version: number;
  readonly until: number;
  readonly batch: Batch;
  readonly ttl: number;
}

/** A record written under the lease, vouched fresh for the next holder until `until` (monotonic clock). */
type WrittenRecord = VersionedRecord & { readonly until: number };

/** The scope of this process waiting for the holder's key (the local queue, seen from group commit). */
export interface Successor {
  /** Hand the lease and `record` to it now (synchronous); `false`: nobody waits, or the handoff bounds refused. */
  handOver(record: PendingRecord): boolean;
}

/** A scope's save of the locked record at its end, as it asks about it (`SessionLock.end`, {@link GroupCommit.end}). */
export interface ScopeEnd {
  /** The encoded record the scope would write, one version on from `version`, for `ttl` ms. */
  readonly value: string;
  readonly version: number;
  readonly ttl: number;
  /** `value` differs from the record the scope stands on. */
  readonly changed: boolean;
  /** The scope's final save, with nothing of the scope after it under the lock (no index upkeep): only it may be handed over. */
  readonly last: boolean;
}

/** How group commit writes a batch's record under the holder's lease (conditional on `version`; refuses once the lease is known lost). */
export type WriteBatch = (value: string, version: number, ttl: number) => Promise<void>;

/**
 * Group commit, as seen by one holder of the lock ({@link SessionLock} makes
 * one per holder): the batch it stands on (handed over with the lease), the
 * timer that writes that batch once it is `maxMs` old, the version shift that
 * write causes, and the one question an ending scope asks ({@link end}).
 * The lock calls {@link carry} around each of its writes and {@link leave}
 * when it is released; nothing else of group commit lives outside this file.
 */
export class GroupCommit {
  /** The record of a batch handed over with the lease, not yet in the master (the next write of the key carries it). */
  #pending: PendingRecord | undefined;
  /**
   * The batch this holder stands on, written under it by {@link #flushLater}
   * (its members must not wait out a long scope): rejects if that write failed.
   */
  #flushed: Promise<void> | undefined;
  #flushState: 'running' | 'written' | 'failed' | undefined;
  /** Armed by {@link #flushLater}; cleared once the batch is written, handed on or released otherwise (a long `maxMs` must not keep it). */
  #flushTimer: NodeJS.Timeout | undefined;
  /** 1 once {@link #flushed} wrote the record the holder stands on: its versions of the key are one behind the master's. */
  #shift = 0;
  /** The lease left the holder: handed on by {@link end}, or released ({@link leave}). */
  #closed = false;
  /** {@link end} handed the lease on with the scope's record: the lock has nothing left to release. */
  #handedOn = false;
  /** The lease goes back with the holder's next write (see {@link leaseGoesWithNextWrite}). */
  #leaseLeaving = false;

  /**
   * @param bounds option `groupCommit` (`false`: off)
   * @param successor this process' queue of the key (`undefined`: handoff off, no batch is ever made)
   * @param writeBatch how to write a batch nobody after this holder carries
   * @param flushEarly whether a batch may be written under a running holder (not with a lease whose lock ends with its first write: PostgresLocker)
   * @param pending the batch handed over with the lease, if any
   */
  constructor(
    private readonly bounds: GroupCommitOptions | false,
    private readonly successor: Successor | undefined,
    private readonly writeBatch: WriteBatch,
    private readonly flushEarly: boolean,
    pending: PendingRecord | undefined,
  ) {
    if (pending !== undefined) {
      this.#pending = pending;
      this.#flushLater();
    }
  }

  /** {@link end} handed the lease on with the scope's record: the lock has nothing left to release. */
  get handedOn(): boolean {
    return this.#handedOn;
  }

  /** A batch is being written under the holder right now: its lease must not go back with the holder's write (that write waits for this one). */
  get flushing(): boolean {
    return this.#flushState === 'running';
  }

  /** The holder's next write returns the lease to the locker (RedisLocker's fast path): no batch may be written under it after that. */
  leaseGoesWithNextWrite(): void {
    this.#leaseLeaving = true;
  }

  /**
   * The one question a scope asks at its end (through `SessionLock.end`): what
   * to do with its save. `'unchanged'`: nothing to write. `'write'`: write it
   * yourself. Or, when `successorWaits` (the save is `last`, a scope of this
   * process waits for the key and the handoff bounds allow), a promise: the
   * lease and the unsaved record went to that scope, a later holder's write
   * carries it, and the promise settles with that write (`true`: it removed
   * the record, see {@link Batch.done}).
   */
  end(save: ScopeEnd, successorWaits: boolean): 'unchanged' | 'write' | Promise<boolean> {
    // Standing on a batch's record not (known to be) in the master, a scope writes even with no change of its own.
    const mustWrite = this.#pending !== undefined || this.#flushState === 'running' || this.#flushState === 'failed';
    if (!save.changed && !mustWrite) return 'unchanged';
    const { bounds, successor } = this;
    if (!bounds || !successor || this.#closed || !successorWaits) return 'write'; // (the common case: nobody waits, no batch made)
    if (this.#flushState === 'running' || this.#flushState === 'failed') return 'write'; // once that flush is known
    const batch = this.#pending?.batch ?? new Batch();
    const record = { value: save.value, version: save.version + this.#shift, until: Infinity, batch, ttl: save.ttl };
    if (batch.full(bounds) || !successor.handOver(record)) return 'write';
    batch.size++;
    this.#pending = undefined;
    clearTimeout(this.#flushTimer);
    this.#closed = true;
    this.#handedOn = true;
    return batch.done;
  }

  /**
   * Make the holder's write of the key (`write`, given the version shift to
   * add): a batch the holder stands on rides on it, acknowledged with it or
   * failing with it (`removes`: the write deletes the record, so the batch's
   * members send no cookie).
   */
  async carry(write: (shift: number) => Promise<void>, removes: boolean): Promise<void> {
    const pending = this.#pending;
    this.#pending = undefined;
    clearTimeout(this.#flushTimer);
    if (this.#flushed !== undefined) await this.#flushed; // (rejects if the batch under this holder could not be written)
    try {
      await write(this.#shift);
    } catch (error) {
      pending?.batch.settle(error);
      throw error;
    }
    pending?.batch.settle(undefined, removes);
  }

  /**
   * The lock is being released with `fresh`, the record the holder vouches
   * (if any). A batch the holder still stands on (it wrote nothing: it threw,
   * or failed before its write) goes on with the lease (`handedOn`), or is
   * written here before the lease leaves the process; `fresh` is then what the
   * next holder may start on.
   */
  async leave<T extends WrittenRecord>(
    fresh: T | undefined,
  ): Promise<{ handedOn: true } | { handedOn: false; fresh: WrittenRecord | undefined }> {
    this.#closed = true;
    clearTimeout(this.#flushTimer);
    let next: WrittenRecord | undefined = fresh;
    if (this.#flushed !== undefined) {
      // A batch written under this holder: the lease goes on only once that write is known; a record the holder vouches is one version on.
      next = await this.#flushed.then(
        () => fresh && { ...fresh, version: fresh.version + this.#shift },
        () => undefined,
      );
    }
    const pending = this.#pending;
    if (pending !== undefined) {
      this.#pending = undefined;
      if (this.bounds && !pending.batch.expired(this.bounds) && this.successor?.handOver(pending)) return { handedOn: true };
      next = await this.#flush(pending);
    }
    return { handedOn: false, fresh: next };
  }

  /**
   * The batch's members wait for the write that carries it; a holder that runs
   * long (a slow call under the lock, a scope that never ends) would keep them
   * waiting all that time. Once the batch is `groupCommit.maxMs` old and still
   * unwritten, write it under the holder: the record written is the one the
   * holder stands on, so its later writes of the key go one version on (its
   * write fails if this one did: it built on changes that were not saved).
   * Not with a lease whose lock ends with its first write (PostgresLocker).
   * A timer: it cannot fire while the holder's function blocks the event loop,
   * so such a holder's batch shares its fate (docs/group-commit.md, "A scope
   * that blocks the event loop"; test/group-commit-cpu-bound.test.ts).
   */
  #flushLater(): void {
    const bounds = this.bounds;
    const pending = this.#pending;
    if (!bounds || !pending || !this.flushEarly) return;
    this.#flushTimer = setTimeout(
      () => {
        if (this.#pending !== pending || this.#closed || this.#leaseLeaving) return; // written, handed on or released meanwhile
        this.#pending = undefined;
        this.#flushState = 'running';
        this.#flushed = this.#flush(pending).then(async (written) => {
          this.#flushState = written ? 'written' : 'failed';
          if (!written)
            throw await pending.batch.done.then(
              () => new ConflictError(),
              (error: unknown) => error,
            ); // the error its members got
          this.#shift = 1;
        });
        this.#flushed.catch(() => {}); // awaited by the holder's next write or release
      },
      Math.max(0, bounds.maxMs - (performance.now() - pending.batch.started)),
    );
    this.#flushTimer.unref();
  }

  /** Write a batch nobody after this holder will carry; settles it. @returns the record written, for the next holder. */
  async #flush(pending: PendingRecord): Promise<WrittenRecord | undefined> {
    try {
      await this.writeBatch(pending.value, pending.version, pending.ttl);
    } catch (error) {
      pending.batch.settle(error);
      return undefined;
    }
    pending.batch.settle();
    return { value: pending.value, version: pending.version + 1, until: performance.now() + pending.ttl };
  }
}
