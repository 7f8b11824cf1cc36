import { performance } from 'node:perf_hooks';

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
