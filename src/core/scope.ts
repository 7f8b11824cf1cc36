import { debuglog } from 'node:util';
import { performance } from 'node:perf_hooks';
import { ConflictError, SerializationError, SessionMovedError } from '../errors.js';
import { indexAdd, indexRemove, planIndex, type IndexHost, type IndexPlan } from '../auth/index-upkeep.js';
import type { Lifecycle } from './lifecycle.js';
import type { FreshRecord } from './local-queue.js';
import type { SessionMeta } from './record.js';
import type { Replica } from './replica.js';
import { SessionLock } from './session-lock.js';
import { writeIfVersion } from './write.js';
import type { RequestWriteOptions } from '../contracts/store.js';

const debug = debuglog('koa-locked-session');

let warnedUndisposed = false;
/** Loud, once per process: a `lock()` left open is a bug in the app that would otherwise block the session. */
function warnUndisposed(): void {
  debug('a lock() scope was still open when its request ended');
  if (warnedUndisposed) return;
  warnedUndisposed = true;
  process.emitWarning(
    'koa-locked-session: a ctx.session.lock() scope was still open when its request ended; it was ended for you (saved after a response, discarded after an error). Use `await using s = await ctx.session.lock()` or withLock() so the scope ends with its block',
    { code: 'KOA_LOCKED_SESSION_UNDISPOSED_LOCK' },
  );
}

/** What a scope needs from the request's session (implemented by `RequestSession`). */
export interface ScopeHost extends IndexHost {
  readonly lifecycle: Lifecycle;
  /** The open scope of this request, if any (nested and parallel scopes join it). */
  active: Scope | undefined;
  /** The sid the request's session lives under now (`undefined`: new or gone). */
  readonly sid: string | undefined;
  /** The request's records live in the client (CookieStore): no server-side user index, the store writes its own cookie. */
  readonly clientSide: boolean;
  /** Read the session reference the request brought (once). */
  resolve(): void;
  /**
   * The settings of the record about to be saved (they decide the cookie's expiry);
   * returns what the save tells a request-bound master (the cookie kind), if any.
   */
  saving(meta: SessionMeta | undefined): RequestWriteOptions | undefined;
  /**
   * The session now lives under `sid` with record `value` (cookie sent).
   * `resend` false: the record was saved but is gone already (group commit: a
   * later scope of the batch moved or ended the session in the same write), so
   * no cookie of `sid` is sent, nor renewed at the end of the request.
   */
  adopt(sid: string, value: string, resend?: boolean): void;
  /** This request destroyed its session (`null`: get() now answers `{}`). */
  destroyed(): void;
  /** The client's sid is dead: later scopes start a new session and the stale cookie is cleared. */
  forget(): void;
  /** Re-send the cookie of `sid` (its expiry moved). */
  refreshCookie(sid: string): void;
  /** Throw before anything is written when a save needing a new cookie comes after the response headers. */
  cookieWritable(): void;
  newSid(): string;
  expired(why?: 'gone' | 'absolute-ttl'): void;
  invalidRecord(): void;
}

/**
 * One caller inside a scope: the data as it was when it joined (null: empty;
 * undefined: not serializable), and, for a caller that joined an open scope,
 * the top-level keys it set, deleted or reached into (recorded by its view).
 * The opener works on the data itself (no view on the hot path): its keys are
 * what changed since it opened, less those a joined caller touched.
 */
export interface Participant {
  readonly scope: Scope;
  readonly checkpoint: string | null | undefined;
  /** How many mid-scope saves had been handed in when it joined (see `Scope.#handedIn`). */
  readonly joinedAt: number;
  readonly touched?: Set<string>;
  /** What the caller's function gets: a recording view for a joined caller, the data itself for the opener. */
  readonly view: Record<string, unknown>;
}

/**
 * The data as a joined caller sees it: the same object (its changes are the
 * scope's), recording the top-level keys it sets, deletes or reaches into (an
 * object value read may be changed in place), so a throw can undo just those.
 */
function recordingView(data: Record<string, unknown>, touched: Set<string>): Record<string, unknown> {
  return new Proxy(data, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof key === 'string' && typeof value === 'object' && value !== null) touched.add(key);
      return value;
    },
    set(target, key, value) {
      if (typeof key === 'string') touched.add(key);
      return Reflect.set(target, key, value);
    },
    deleteProperty(target, key) {
      if (typeof key === 'string') touched.add(key);
      return Reflect.deleteProperty(target, key);
    },
    defineProperty(target, key, descriptor) {
      if (typeof key === 'string') touched.add(key);
      return Reflect.defineProperty(target, key, descriptor);
    },
  });
}

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
  /** Participants that came from `lock()` and have not been disposed yet (innermost last). */
  readonly #undisposed: Participant[] = [];
  /** Everyone who took part in the scope, the opener first. */
  readonly #members: Participant[] = [];
  /**
   * Participants that left with success while others remained (their change is
   * saved at once, and their caller told so): the keys each changed and the data
   * as it left. A later rollback puts such a key back to that value, not to what
   * it was before (an acknowledged change is never undone).
   */
  readonly #handedIn: Array<{
    readonly by: Participant;
    readonly keys: ReadonlySet<string>;
    readonly checkpoint: string | null | undefined;
  }> = [];
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
  /** Settles when the scope has ended; made only when a new scope of the request must wait for it (rare). */
  #closed: { promise: Promise<void>; resolve: () => void } | undefined;
  #ended = false;

  private constructor(private readonly host: ScopeHost) {}

  /** Wait until this (closing) scope has ended. */
  #whenClosed(): Promise<void> {
    if (this.#ended) return settled;
    if (!this.#closed) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#closed = { promise, resolve };
    }
    return this.#closed.promise;
  }

  #markClosed(): void {
    this.#ended = true;
    this.#closed?.resolve();
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
      await active.#whenClosed();
    }
    host.lifecycle.enter();
    const scope = new Scope(host);
    host.active = scope;
    scope.#ready = scope.#open();
    try {
      await scope.#ready;
    } catch (error) {
      if (host.active === scope) host.active = undefined;
      scope.#markClosed();
      host.lifecycle.leave();
      throw error;
    }
    const opener: Participant = { scope, checkpoint: scope.#original ?? null, joinedAt: 0, view: scope.data };
    scope.#members.push(opener);
    return opener;
  }

  async #join(): Promise<Participant> {
    this.#participants++;
    try {
      await this.#ready;
    } catch (error) {
      this.#participants--;
      throw error;
    }
    // Its way back if it throws: the data as it stood when it joined, and what it touches from now on.
    const touched = new Set<string>();
    const joined: Participant = {
      scope: this,
      checkpoint: this.host.format.checkpoint(this.data),
      joinedAt: this.#handedIn.length,
      touched,
      view: recordingView(this.data, touched),
    };
    this.#members.push(joined);
    return joined;
  }

  /**
   * A `lock()` participant: ended by the disposer on the data (`await using`
   * blocks end innermost first), or by {@link endWithRequest}. JavaScript does
   * not tell a disposer that its block threw, so its changes are saved: the
   * one difference from `withLock`, which sees the throw.
   */
  disposable(me: Participant): Record<string, unknown> & AsyncDisposable {
    this.#undisposed.push(me);
    const data = this.data; // the disposer lives on the data; a joined caller's view passes it through
    if (!Object.hasOwn(data, Symbol.asyncDispose)) {
      const dispose = async (): Promise<void> => {
        const participant = this.#undisposed.pop();
        if (participant) await this.leave(participant, false); // none left: ended with its request
      };
      Object.defineProperty(data, Symbol.asyncDispose, { value: dispose, enumerable: false, configurable: true });
    }
    return me.view as Record<string, unknown> & AsyncDisposable;
  }

  /**
   * At the end of the request: a `lock()` never disposed (no `await using`)
   * would hold the session's lock for good. It is ended here, saved when the
   * request succeeded and discarded when it failed, and reported once per process.
   */
  static endWithRequest(host: ScopeHost, failed: boolean): Promise<void> | undefined {
    const scope = host.active;
    if (!scope || scope.#closing || scope.#undisposed.length === 0 || scope.#participants !== scope.#undisposed.length) return undefined; // the common case: no promise
    warnUndisposed();
    return scope.#endUndisposed(failed);
  }

  async #endUndisposed(failed: boolean): Promise<void> {
    for (let p = this.#undisposed.pop(); p; p = this.#undisposed.pop()) await this.leave(p, failed);
  }

  /** Take the lock and read the record under it. */
  async #open(): Promise<void> {
    const host = this.host;
    host.resolve();
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
      if (raw !== undefined && decoded === undefined) host.invalidRecord();
      if (decoded === undefined || host.format.pastAbsolute(decoded.meta)) {
        // No resurrection: the record is gone (destroyed, expired): work on a fresh session with a new sid.
        if (decoded !== undefined) await lock.write(undefined, record!.version, host.options.ttl); // past its absolute timeout
        if (raw === undefined || decoded !== undefined) host.expired(raw === undefined ? 'gone' : 'absolute-ttl');
        host.forget();
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
      if (this.#members.length === 1)
        this.#failed = true; // alone all along: nothing is saved
      else this.#rollback(me);
    }
    if (--this.#participants > 0) {
      if (!threw) {
        this.#handIn(me);
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
      this.#markClosed();
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
   * The top-level keys `me` changed: what its view recorded (a joined caller),
   * or for the opener what differs from the record it opened on, less the keys
   * a joined caller touched. A key two callers of one request touched at once
   * counts as the joined caller's.
   */
  #keysOf(me: Participant, before: Record<string, unknown>): string[] {
    if (me.touched) return [...me.touched];
    const others = new Set(this.#members.flatMap((p) => (p === me || !p.touched ? [] : [...p.touched])));
    const keys = new Set([...Object.keys(before), ...Object.keys(this.data)]);
    return [...keys].filter((key) => !others.has(key) && !this.host.format.sameValue(before[key], this.data[key]));
  }

  /** `me` leaves with success while others remain: note what it changed, as it left (see {@link #handedIn}). */
  #handIn(me: Participant): void {
    const before = this.host.format.restore(me.checkpoint);
    if (before)
      this.#handedIn.push({ by: me, keys: new Set(this.#keysOf(me, before)), checkpoint: this.host.format.checkpoint(this.data) });
  }

  /**
   * Undo the top-level keys `me` changed; what the other callers of the request
   * changed stays. A key another caller changed and handed in since `me` joined
   * goes back to the value it was saved with, not further.
   */
  #rollback(me: Participant): void {
    const before = this.host.format.restore(me.checkpoint);
    if (!before) {
      this.#error ??= new SerializationError(
        'koa-locked-session: a scope threw and its changes could not be rolled back (its data could not be serialized when it joined); nothing more is saved',
      );
      return;
    }
    const handedIn = this.#handedIn.slice(me.joinedAt).filter((h) => h.by !== me);
    for (const key of this.#keysOf(me, before)) {
      const last = [...handedIn].reverse().find((h) => h.keys.has(key));
      const source = (last && this.host.format.restore(last.checkpoint)) ?? before;
      if (Object.hasOwn(source, key)) this.data[key] = source[key];
      else delete this.data[key];
    }
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
      host.forget();
      host.destroyed();
      if (plan) await indexRemove(host, plan); // (no plan, the common case: no promise)
      this.#stand(undefined, undefined, 0);
      return;
    }
    if (oldSid === undefined || this.regenerate) {
      host.cookieWritable();
      const sid = host.newSid();
      const plan = this.#indexPlan(oldSid, sid);
      // A fresh id: no lock needed, nobody else knows it; the insert refuses to overwrite anything.
      if (!(await host.replica.write(host.key(sid), value, 1, ttl, null, ttl, kind))) throw new ConflictError();
      if (plan) await indexAdd(host, plan, sid, oldSid); // listed before the old sid dies: see revokeAll
      if (oldSid !== undefined) {
        if (final) this.#lastWrite(plan);
        this.#fresh = undefined;
        // The old sid keeps a short tombstone, so that requests of this browser still waiting
        // on it get a retryable 409 instead of writing into a fresh anonymous session.
        await this.#writeOld(oldSid, undefined, ttl, this.#movedMs());
      }
      host.adopt(sid, value);
      if (plan) await indexRemove(host, plan);
      this.#stand(sid, value, 1);
    } else if (value !== this.#original || this.#lockOf(oldSid)?.groupCommit.mustWrite) {
      // (Standing on a batch's unsaved record, a scope writes even with no change of its own.)
      const plan = this.#indexPlan(oldSid, oldSid);
      if (plan) await indexAdd(host, plan, undefined, oldSid); // the record exists: listed before it changes hands
      // Group commit: a scope of this process waits for the session; it takes the record over, unsaved.
      const batch = final && plan === undefined ? this.#lockOf(oldSid)?.groupCommit.end(value, this.#version, ttl) : undefined;
      if (batch !== undefined) {
        // Answered only once the write that carries this change is acknowledged. When that write removed the
        // record (a later scope of the batch moved or ended the session), this response goes out after the move:
        // re-sending the old sid's cookie would undo the new one (or the cleared one) in the browser.
        const removed = await batch;
        host.adopt(oldSid, value, !removed);
        this.#stand(oldSid, value, this.#version + 1);
        return;
      }
      if (final) this.#lastWrite(plan);
      this.#fresh = undefined; // a failed write may or may not have landed
      await this.#writeOld(oldSid, value, ttl, 0, kind);
      this.#wrote(oldSid, value, this.#version + 1, ttl);
      host.adopt(oldSid, value);
      if (plan) await indexRemove(host, plan);
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
      host.refreshCookie(oldSid);
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
    const lock = this.#lockOf(sid);
    if (lock !== undefined) return lock.write(value, this.#version, ttl, tombstoneMs, kind);
    return writeIfVersion(this.host.replica, this.host.key(sid), value, this.#version, ttl, tombstoneMs, kind);
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

  /**
   * The master write about to happen is the scope's last store operation under
   * the lock when no mirror write must follow it in order and the user index has
   * nothing to do: let the locker release in the same round trip (RedisLocker).
   */
  #lastWrite(plan: IndexPlan | undefined): void {
    const { mirrors, mirrorWrites } = this.host.options;
    if (plan === undefined && (mirrors.length === 0 || mirrorWrites === 'background')) this.#lock?.releaseWithNextWrite();
  }
}

/** The initial, settled save chain (identity marks "no save ran yet"). */
const settled: Promise<void> = Promise.resolve();
