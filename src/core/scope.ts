import { performance } from 'node:perf_hooks';
import { ConflictError, SessionMovedError } from '../errors.js';
import { indexAdd, indexRemove, planIndex, type IndexPlan } from '../auth/index-upkeep.js';
import type { FreshRecord } from './local-queue.js';
import type { SessionMeta } from './record.js';
import { Undisposed } from './scope-disposal.js';
import { Members, type Participant as Member } from './scope-members.js';
import type { ScopePort } from './scope-port.js';
import type { Replica } from './replica.js';
import { SessionLock } from './session-lock.js';
import { Latch } from '../util/latch.js';
import { overVersion, writeIfVersion } from './write.js';
import type { RequestWriteOptions } from '../contracts/store.js';

/** The request's session as a scope sees it (implemented by `RequestSession`): see scope-port.ts. */
export type ScopeHost = ScopePort<Scope>;

/** One caller inside a scope (see scope-members.ts). */
export type Participant = Member<Scope>;

/**
 * One lock scope of one request's session: the lock, the data read fresh under
 * it, the callers taking part, and the saves. `withLock` and `lock()` both
 * {@link Scope.enter} and {@link Scope.leave}; concurrent or nested scopes of
 * the same request join the open scope instead of waiting for the lock they
 * already hold.
 */
export class Scope {
  /** The data callers change; saved when each participant leaves. */
  data: Record<string, unknown> = {};
  /** The record as read under the lock (or last written); `undefined` when the session is new or its record is gone. */
  #original: string | undefined;
  /** The version of {@link #original} (the next master write is conditional on it). */
  #version = 0;
  /** The sid whose record the scope stands on; `undefined` for a new session (a new sid is generated on save). */
  #sid: string | undefined;
  #lock: SessionLock | undefined;
  /** The locked record as this scope last wrote (or touched) it, handed to the next scope of this process with the lease. */
  #fresh: FreshRecord | undefined;
  #participants = 1;
  /** The `lock()` participants not disposed yet (scope-disposal.ts); made by the first `lock()`. */
  #undisposed: Undisposed<Participant> | undefined;
  /** Everyone who took part in the scope, and how one of them is rolled back alone. */
  readonly #members: Members<Scope>;
  /** The chain of this scope's saves, and the first error one of them hit (every later save fails with it). */
  #saving: Promise<void> = settled;
  #error: unknown;
  /** A participant threw with nobody to roll back to: nothing is saved. */
  #failed = false;
  /** The last participant left; new scopes wait for {@link #closed}. */
  #closing = false;
  /** Flags set by regenerate()/touch()/login() inside the scope, applied at its end. */
  regenerate = false;
  touch = false;
  /** Per-session settings stored with the record (login's ttl/remember, the absolute clock). */
  meta: SessionMeta | undefined;
  /** The logged-in user as read under the lock (for the per-user index). */
  #user: unknown;
  /** Settles when the scope finished opening (rejects if the lock or the read failed). */
  #ready: Promise<void> = settled;
  /** Opens when the scope has ended (a new scope of the request waits for it while this one closes). */
  readonly #closed = new Latch();

  private constructor(private readonly host: ScopeHost) {
    this.#members = new Members(host.format);
  }

  /**
   * Join the open scope of the request (a nested or parallel scope of the same
   * request: it holds the lock already), or open a new one (lock, fresh read)
   * once any closing scope has finished.
   */
  static async enter(host: ScopeHost): Promise<Participant> {
    for (;;) {
      const active = host.active;
      if (!active) break;
      if (!active.#closing) return active.#join();
      await active.#closed.wait();
    }
    host.lifecycle.enter();
    const scope = new Scope(host);
    host.active = scope;
    scope.#ready = scope.#open();
    try {
      await scope.#ready;
    } catch (error) {
      if (host.active === scope) host.active = undefined;
      scope.#closed.open();
      host.lifecycle.leave();
      throw error;
    }
    return scope.#members.open(scope, scope.#original, scope.data);
  }

  async #join(): Promise<Participant> {
    this.#participants++;
    try {
      await this.#ready;
    } catch (error) {
      this.#participants--;
      throw error;
    }
    return this.#members.join(this, this.data);
  }

  /** A `lock()` participant: it leaves when the returned data is disposed, or with its request (scope-disposal.ts). */
  disposable(me: Participant): Record<string, unknown> & AsyncDisposable {
    return (this.#undisposed ??= new Undisposed()).disposable(me, this.data, (p) => this.leave(p, false));
  }

  /** At the end of the request: end the `lock()` participants never disposed, if they are all that is left (scope-disposal.ts). */
  static endWithRequest(host: ScopeHost, failed: boolean): Promise<void> | undefined {
    const scope = host.active;
    if (!scope || scope.#closing || !scope.#undisposed) return undefined; // the common case: no promise
    return scope.#undisposed.endWithRequest(scope.#participants, (p) => scope.leave(p, failed));
  }

  /** Take the lock and read the record under it. */
  async #open(): Promise<void> {
    const host = this.host;
    const sid = host.sid;
    if (sid === undefined) return; // a new session: nobody else can know its id yet
    const lock = await SessionLock.acquire(host.options, host.replica, host.key(sid));
    this.#lock = lock;
    try {
      const record = await lock.read();
      // A tombstone: a concurrent request of this browser moved the session (login, regenerate) a moment ago.
      if (record !== undefined && record.value === undefined) throw new SessionMovedError();
      const raw = record?.value;
      const decoded = raw === undefined ? undefined : host.format.decode(raw);
      if (decoded === undefined || host.format.pastAbsolute(decoded.meta)) {
        // No resurrection: the record is gone (destroyed, expired): work on a fresh session with a new sid.
        if (decoded !== undefined) await lock.write(overVersion(lock.key, undefined, record!.version, host.options.ttl)); // past its absolute timeout
        host.forgotten(raw === undefined ? 'gone' : decoded === undefined ? 'bad-record' : 'absolute-ttl');
        return;
      }
      this.#sid = sid;
      this.#version = record!.version;
      this.#original = raw;
      this.data = decoded.data;
      this.meta = decoded.meta;
      this.#user = decoded.data[host.options.userKey];
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  /**
   * A participant leaves (`threw`: its function threw). Alone, a throw discards
   * the scope (nothing is saved). With others in the scope, a throw restores
   * only the top-level keys this participant changed (not the ones another
   * participant saved since it joined), and a success is saved at once, under
   * the lock still held, so that every promise resolves only after the save
   * that holds its change. The last one out saves and releases the lock.
   */
  async leave(me: Participant, threw: boolean): Promise<void> {
    if (threw) {
      if (this.#members.alone)
        this.#failed = true; // alone all along: nothing is saved
      else {
        const error = this.#members.rollback(me, this.data);
        if (error) this.#error ??= error;
      }
    }
    if (--this.#participants > 0) {
      if (!threw) {
        this.#members.handIn(me, this.data);
        await this.#save(false);
      }
      return;
    }
    this.#closing = true;
    try {
      if (!this.#failed) await this.#save(true);
    } finally {
      if (this.#lock) await this.#lock.release(this.#fresh);
      if (this.host.active === this) this.host.active = undefined;
      this.#closed.open();
      this.host.lifecycle.leave();
    }
  }

  /** Saves of one scope run one after the other (each is conditional on the version the previous one wrote). */
  #save(final: boolean): Promise<void> {
    // The first save of a scope (the common case) skips the chain's extra turn.
    const run =
      this.#error === undefined && this.#saving === settled
        ? this.#commit(final)
        : this.#saving.then(() => {
            if (this.#error !== undefined) throw this.#error;
            return this.#commit(final);
          });
    // The final save has no successor to chain (the scope is closing: nobody can join it).
    if (!final) {
      this.#saving = run.then(undefined, (error: unknown) => {
        this.#error ??= error;
      });
    }
    return run;
  }

  /**
   * Save what the scope changed: master first, then mirrors; the cookie last.
   * Not `final`: the scope goes on under the lock after this save (a
   * participant left while others remain), so the scope now stands on the
   * record just written.
   */
  async #commit(final: boolean): Promise<void> {
    this.#lock?.checkHeld();
    const host = this.host;
    const oldSid = this.#sid;
    this.meta = host.format.forSave(this.meta, oldSid === undefined);
    const kind = host.saving(this.meta);
    const value = host.format.encode(this.data, this.meta);
    const ttl = host.format.ttl(this.meta);

    if (value === undefined) {
      if (oldSid === undefined) {
        host.destroyed();
        return;
      }
      const plan = this.#indexPlan(oldSid, undefined);
      if (final) this.#lastWrite(plan);
      this.#fresh = undefined;
      await this.#writeOld(oldSid, undefined, ttl);
      host.forgotten();
      host.destroyed();
      if (plan) await indexRemove(host, plan); // (no plan, the common case: no promise)
      this.#stand(undefined, undefined, 0);
      return;
    }
    if (oldSid === undefined || this.regenerate) {
      const sid = host.newSid();
      const plan = this.#indexPlan(oldSid, sid);
      // A fresh id: no lock needed, nobody else knows it; the insert refuses to overwrite anything.
      if (!(await host.replica.put({ key: host.key(sid), value, version: 1, ttlMs: ttl, condition: null, cookie: kind })))
        throw new ConflictError();
      if (plan) await indexAdd(host, plan, sid, oldSid); // listed before the old sid dies: see revokeAll
      if (oldSid !== undefined) {
        if (final) this.#lastWrite(plan);
        this.#fresh = undefined;
        // The old sid keeps a short tombstone, so that requests of this browser still waiting
        // on it get a retryable 409 instead of writing into a fresh anonymous session.
        await this.#writeOld(oldSid, undefined, ttl, this.#movedMs());
      }
      host.adopted(sid, value);
      if (plan) await indexRemove(host, plan);
      this.#stand(sid, value, 1);
      return;
    }
    const changed = value !== this.#original;
    const plan = changed ? this.#indexPlan(oldSid, oldSid) : undefined;
    const lock = this.#lockOf(oldSid);
    // The one question at the scope's end (docs/group-commit.md): nothing to write, write it, or handed over unsaved.
    const end =
      lock?.end({ value, version: this.#version, ttl, changed, last: final && plan === undefined }) ?? (changed ? 'write' : 'unchanged');
    if (end === 'write') {
      if (plan) await indexAdd(host, plan, undefined, oldSid); // the record exists: listed before it changes hands
      if (final && !lock) this.#lastWrite(plan); // (the locked record's last save asked its lock already)
      this.#fresh = undefined; // a failed write may or may not have landed
      await this.#writeOld(oldSid, value, ttl, 0, kind);
      this.#wrote(oldSid, value, this.#version + 1, ttl);
      host.adopted(oldSid, value);
      if (plan) await indexRemove(host, plan);
      this.#stand(oldSid, value, this.#version + 1);
    } else if (end !== 'unchanged') {
      // Answered only once the write that carries this change is acknowledged. When that write removed the
      // record (a later scope of the batch moved or ended the session), this response goes out after the move:
      // re-sending the old sid's cookie would undo the new one (or the cleared one) in the browser.
      const removed = await end;
      host.adopted(oldSid, value, !removed);
      this.#stand(oldSid, value, this.#version + 1);
    } else if (this.touch) {
      const key = host.key(oldSid);
      const store = this.#storeFor(oldSid);
      if (final) this.#lastWrite(undefined);
      this.#fresh = undefined;
      if ((this.#lock?.store ?? host.replica).master.touch) {
        await store.touch(key, ttl, kind);
        this.#wrote(oldSid, value, this.#version, ttl);
      } else {
        await this.#writeOld(oldSid, value, ttl, 0, kind);
        this.#version++;
        this.#wrote(oldSid, value, this.#version, ttl);
      }
      host.cookieRefreshed(oldSid);
      this.touch = false;
    }
  }

  /** The locked record now holds `value` at `version` for `ttl` ms: the next holder of the lease may start on it without a read. */
  #wrote(sid: string, value: string, version: number, ttl: number): void {
    const lock = this.#lock;
    if (lock !== undefined && this.host.key(sid) === lock.key) this.#fresh = { value, version, until: performance.now() + ttl };
  }

  /** After a save the scope stands on the record it wrote (it may go on: see #commit). */
  #stand(sid: string | undefined, value: string | undefined, version: number): void {
    this.#sid = sid;
    this.#original = value;
    this.#version = version;
    this.regenerate = false;
    this.touch = false;
    this.#user = sid === undefined ? undefined : this.data[this.host.options.userKey];
  }

  /** The lease-guarded store for the locked sid; the plain replica for any other (a sid this scope just created). */
  #storeFor(sid: string): Replica {
    return this.#lockOf(sid)?.store ?? this.host.replica;
  }

  /** The lock, if it is the lock on `sid` (not on a sid this scope just created). */
  #lockOf(sid: string): SessionLock | undefined {
    const lock = this.#lock;
    return lock !== undefined && this.host.key(sid) === lock.key ? lock : undefined;
  }

  /** Write the record of `sid` the scope stands on, conditional on the version it read: through the lock when it is the locked sid (a batch rides on it). */
  #writeOld(sid: string, value: string | undefined, ttl: number, tombstoneMs = 0, kind?: RequestWriteOptions): Promise<void> {
    const write = overVersion(this.host.key(sid), value, this.#version, ttl, { tombstoneMs, cookie: kind });
    const lock = this.#lockOf(sid);
    return lock !== undefined ? lock.write(write) : writeIfVersion(this.host.replica, write);
  }

  /** How the per-user index must change when the session moves from `oldSid` to `newSid` (client-side sessions: no index). */
  #indexPlan(oldSid: string | undefined, newSid: string | undefined): IndexPlan | undefined {
    if (this.host.clientSide) return undefined;
    return planIndex(this.host.options, this.#user, this.data, oldSid, newSid);
  }

  /** How long the old sid of a regenerated session answers 409 (retry with the new cookie): past any waiter's lockTimeout. */
  #movedMs(): number {
    return Math.max(1000, 2 * this.host.options.lockTimeout);
  }

  /** The master write about to happen is the scope's last store operation under the lock when the user index has nothing to do (see SessionLock.releaseWithNextWrite). */
  #lastWrite(plan: IndexPlan | undefined): void {
    if (plan === undefined) this.#lock?.releaseWithNextWrite();
  }
}

/** The initial, settled save chain (identity marks "no save ran yet"). */
const settled: Promise<void> = Promise.resolve();
