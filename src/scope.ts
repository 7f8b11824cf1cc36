import type { Lease } from './lockers/locker.js';
import type { Replica } from './replica.js';

/**
 * One lock scope of one session handle: the lease, the data read under it and
 * what the scope's end must do. Concurrent or nested scopes of the same handle
 * (one request) join it instead of waiting for the lock they already hold.
 */
export class Scope {
  /** The data callers change; saved when the last participant leaves. */
  data: Record<string, unknown> = {};
  /** The record as read under the lock; `undefined` when the session is new or its record is gone. */
  original: string | undefined;
  /** The version of {@link original} (the master write is conditional on it). */
  version = 0;
  /** The sid whose record was read; `undefined` for a new session (a new sid is generated on save). */
  sid: string | undefined;
  lease: Lease | undefined;
  /** Where the scope reads and writes: the replica, with the master guarded by the lease where the locker can. */
  store: Replica | undefined;
  participants = 1;
  /** Participants that came from `lock()` and have not been disposed yet (innermost last). */
  readonly undisposed: Array<{ readonly checkpoint: string | null | undefined; readonly view: Record<string, unknown> }> = [];
  /** Everyone who took part in the scope, the opener first. */
  readonly members: Array<{ readonly touched?: Set<string> }> = [];
  /** The chain of this scope's saves, and the first error one of them hit (every later save fails with it). */
  saving: Promise<void> = Promise.resolve();
  error: unknown;
  /** The store key the lease locks. */
  lockedKey: string | undefined;
  /** A participant threw with nobody to roll back to: nothing is saved. */
  failed = false;
  /** The last participant left; new scopes wait for {@link closed}. */
  closing = false;
  /** Flags set by regenerate()/touch() inside the scope, applied at its end. */
  regenerate = false;
  touch = false;
  /** Per-session settings stored with the record (login's ttl/remember). */
  meta: { ttl?: number; remember?: false; created?: number } | undefined;
  /** The logged-in user as read under the lock (for the per-user index). */
  user: unknown;
  /** Settles when the scope finished opening (rejects if the lock or the read failed). */
  ready: Promise<void> = Promise.resolve();
  readonly closed: Promise<void>;
  markClosed!: () => void;

  constructor() {
    this.closed = new Promise<void>((resolve) => (this.markClosed = resolve));
  }
}
