import { debuglog } from 'node:util';
import type { Context } from 'koa';
import { SessionError, SessionMovedError } from '../errors.js';
import type { InvalidReason } from '../events.js';
import type { Lifecycle } from './lifecycle.js';
import { expireOldCookies, migrateOnFirstUse } from '../migrate/hook.js';
import type { MoveResult } from '../migrate/move.js';
import type { ResolvedOptions } from '../options.js';
import { readonly } from './readonly.js';
import type { RecordFormat, SessionMeta } from './record.js';
import type { Replica } from './replica.js';
import { Scope, type Participant } from './scope.js';
import { generateSid, isValidSid } from '../sid/sid.js';
import type { SidTransport } from '../sid/transport.js';
import type { ScopePort } from './scope-port.js';
import { RequestCookie } from './request-cookie.js';
import { isRequestStore, type BoundRequestStore, type RequestWriteOptions } from '../contracts/store.js';
import type { UserIndex } from '../auth/user-index.js';

// NODE_DEBUG=koa-locked-session: why a client's session was reset (never the sid or any data).
const debug = debuglog('koa-locked-session');
const RESET_REASONS: Readonly<Record<string, string>> = {
  'bad-signature':
    'the sid cookie is unsigned or its signature does not match app.keys (tampered, or signed with a key no longer in app.keys)',
  'bad-format': 'the sid cookie is not a sid this library issued (wrong length or characters)',
  'bad-record': 'the stored record could not be decoded (written by hand or by another library, or the serializer refused it)',
};

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  (typeof value === 'object' || typeof value === 'function') &&
  value !== null &&
  typeof (value as PromiseLike<unknown>).then === 'function';

/** What a handle needs from its `session()` call and app, shared by all its requests. */
export interface SessionRuntime {
  readonly options: ResolvedOptions;
  readonly transport: SidTransport;
  readonly index: UserIndex;
  readonly lifecycle: Lifecycle;
  /** The record format (encoding, expiry policy) of this session(). */
  readonly format: RecordFormat;
  /** Master + mirrors for this app; `undefined` when the master is a request store (one replica per request). */
  readonly replica: Replica | undefined;
  /** Build the replica for a request-bound master (CookieStore). */
  bindReplica(master: BoundRequestStore): Replica;
}

/**
 * The state of one request's session behind `ctx.session`: the sid the
 * request brought and the one it lives under now, the open scope and the
 * snapshot. The handle (session.ts) is its public face; scopes (scope.ts) see
 * it only through its {@link ScopePort} (scope-port.ts); when its sid cookie
 * goes out is decided by its {@link RequestCookie} (request-cookie.ts).
 */
export class RequestSession implements ScopePort<Scope> {
  readonly options: ResolvedOptions;
  readonly index: UserIndex;
  readonly format: RecordFormat;
  readonly lifecycle: Lifecycle;
  active: Scope | undefined;
  readonly #ctx: Context;
  readonly #rt: SessionRuntime;
  #bound: BoundRequestStore | undefined;
  /** Master + mirrors: the app's, or (request store) this request's, made on first use. */
  #replica: Replica | undefined;
  #resolved = false;
  #sid: string | undefined;
  #isNew = true;
  /** When the sid cookie is sent, re-sent or cleared (request-cookie.ts). */
  readonly #cookie: RequestCookie;
  #snapshot: Promise<Readonly<Record<string, unknown>>> | undefined;
  /** The last record this request saved (`null`: the session was destroyed); feeds get() after a scope. */
  #latest: string | null | undefined;
  #used = false;
  /** Per-session settings of the last record read or written. */
  #meta: SessionMeta | undefined;
  /** `migrateFrom`: unasked (`undefined`), nothing to do (`null`), or the move in flight/done. */
  #migration: Promise<void> | null | undefined;

  constructor(ctx: Context, runtime: SessionRuntime) {
    this.#ctx = ctx;
    this.#rt = runtime;
    this.options = runtime.options;
    this.index = runtime.index;
    this.format = runtime.format;
    this.lifecycle = runtime.lifecycle;
    this.#replica = runtime.replica;
    this.#cookie = new RequestCookie(ctx, runtime.transport, runtime.options, runtime.format);
  }

  get replica(): Replica {
    if (this.#replica === undefined) this.resolve();
    // Still none: binding the request store threw (that error was already thrown to the caller).
    if (this.#replica === undefined)
      throw new SessionError(
        'koa-locked-session: the session store could not be bound to this request; see the first error of this request',
        { status: 500 },
      );
    return this.#replica;
  }

  get sid(): string | undefined {
    this.resolve();
    return this.#sid;
  }

  get isNew(): boolean {
    this.resolve();
    return this.#isNew;
  }

  get clientSide(): boolean {
    this.resolve();
    return this.#bound !== undefined;
  }

  /** Open or join the request's scope. */
  enter(): Promise<Participant> {
    this.#used = true;
    const migration = this.#migrated();
    return migration ? migration.then(() => Scope.enter(this)) : Scope.enter(this);
  }

  /**
   * `migrateFrom`, on the first async use: a request without a valid sid of
   * ours that carries an old library's cookie has its old session moved
   * (migrate/hook.ts) before anything reads ours. Otherwise `undefined`: no promise.
   */
  #migrated(): Promise<void> | undefined {
    if (this.#migration === undefined) {
      this.resolve();
      const moving =
        this.#sid === undefined && !this.#bound ? migrateOnFirstUse(this.#ctx, this.options, (data) => this.#createFrom(data)) : undefined;
      // Our session wins over an old cookie the request also carries: expire it (another user's, left behind).
      if (this.#sid !== undefined && !this.#bound && this.options.migrateFrom.length > 0) expireOldCookies(this.#ctx, this.options);
      this.#migration = moving ? moving.then((result) => this.#arrived(result)) : null;
    }
    return this.#migration ?? undefined;
  }

  /** A new session holding `data`, saved the way every new session is (new sid, insert-only write, user index, cookie). */
  async #createFrom(data: Record<string, unknown>): Promise<string> {
    const me = await Scope.enter(this);
    let threw = true;
    try {
      for (const [key, value] of Object.entries(data)) if (key !== '__proto__') me.view[key] = value;
      threw = false;
    } finally {
      await me.scope.leave(me, threw);
    }
    if (this.#sid === undefined) throw new SessionError('koa-locked-session: migrateFrom: the old session could not be saved as ours');
    return this.#sid;
  }

  /** The move is done: an overlapping request created the session, so this one takes its sid (and cookie). */
  #arrived(result: MoveResult | undefined): void {
    if (!result || result.created) return; // created here: the save already adopted the sid and set the cookie
    this.#sid = result.sid;
    this.#cookie.write(result.sid, this.#meta);
  }

  /**
   * `withLock`: enter, run `fn` on the data, leave — the path `lock()` takes,
   * with the one difference JavaScript forces: here the throw is seen, so a
   * throwing `fn` saves nothing (a joined caller rolls back only its keys).
   */
  async run<R>(fn: (data: Record<string, unknown>, scope: Scope) => R | Promise<R>): Promise<R> {
    const me = await this.enter();
    let threw = true;
    try {
      const returned = fn(me.view, me.scope);
      // A synchronous fn (the common case) costs no extra promise turn.
      const result = isThenable(returned) ? await returned : returned;
      threw = false;
      return result;
    } finally {
      await me.scope.leave(me, threw);
    }
  }

  /** `lock()`: enter, and leave when the returned data is disposed (or when the request ends). */
  async lock(): Promise<Record<string, unknown> & AsyncDisposable> {
    const me = await this.enter();
    return me.scope.disposable(me);
  }

  /** Read the session reference the request brought, once. */
  resolve(): void {
    if (this.#resolved) return;
    this.#resolved = true;
    const { master } = this.options;
    if (isRequestStore(master)) {
      this.#bound = master.bindRequest(this.#ctx, {
        onInvalid: (reason) => this.#emit('session:invalid', reason as InvalidReason),
        maxAge: this.options.cookie.maxAge,
      });
      this.#cookie.requestStore = true;
      this.#replica = this.#rt.bindReplica(this.#bound);
      this.#sid = this.#bound.sid;
    } else {
      const read = this.#rt.transport.read(this.#ctx);
      if (read.invalid) this.#emit('session:invalid', read.invalid);
      this.#sid = read.sid;
      this.#cookie.stale = read.stale === true;
    }
    this.#isNew = this.#sid === undefined;
  }

  key(sid: string): string {
    return this.options.prefix + sid;
  }

  newSid(): string {
    this.#cookie.checkWritable();
    const { genid } = this.options;
    if (!genid) return generateSid();
    const sid = genid();
    if (!isValidSid(sid)) {
      throw new SessionError(
        'koa-locked-session: `genid` returned an id that is not 16–128 chars of [A-Za-z0-9_-]; return e.g. crypto.randomBytes(32).toString("base64url")',
      );
    }
    return sid;
  }

  // ---- the unlocked snapshot ------------------------------------------------

  /** A read-only snapshot without the lock: at most one master read per request (or the record this request saved). */
  get(): Promise<Readonly<Record<string, unknown>>> {
    this.#used = true;
    if (this.#snapshot === undefined && this.#latest === undefined && this.lifecycle.closed) {
      try {
        this.lifecycle.check(); // the same 503 a scope gets, from its one home
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (this.#latest !== undefined) {
      const raw = this.#latest;
      this.#latest = undefined;
      this.#snapshot = Promise.resolve(readonly(raw === null ? {} : (this.format.decode(raw)?.data ?? {})));
    }
    return (this.#snapshot ??= this.#read());
  }

  async #read(): Promise<Readonly<Record<string, unknown>>> {
    this.resolve();
    const migration = this.#migrated();
    if (migration) await migration;
    if (this.#latest !== undefined) return this.get(); // saved meanwhile (the migration, or a parallel scope): answer from that record
    const sid = this.#sid;
    if (sid === undefined) return readonly({});
    const record = await this.replica.read(this.key(sid));
    if (record !== undefined && record.value === undefined) throw new SessionMovedError();
    const raw = record?.value;
    const decoded = raw === undefined ? undefined : this.format.decode(raw);
    if (raw !== undefined && decoded === undefined) this.#emit('session:invalid', 'bad-record');
    if (raw === undefined || this.format.pastAbsolute(decoded?.meta)) {
      // Gone (destroyed, expired): the request is anonymous from now on, and a rolling cookie is not re-sent.
      this.#forget();
      this.#expired(raw === undefined ? 'gone' : 'absolute-ttl');
      return readonly({});
    }
    if (decoded) this.#meta = decoded.meta;
    return readonly(decoded?.data ?? {});
  }

  // ---- what scopes tell the request (ScopePort) -----------------------------

  saving(meta: SessionMeta | undefined): RequestWriteOptions | undefined {
    this.#meta = meta;
    return this.#cookie.kind(meta);
  }

  adopted(sid: string, value: string, resend = true): void {
    const moved = sid !== this.#sid;
    this.#sid = sid;
    this.#latest = value;
    this.#cookie.saved(sid, moved, this.#meta, resend);
  }

  destroyed(): void {
    this.#latest = null;
  }

  forgotten(why?: 'gone' | 'absolute-ttl' | 'bad-record'): void {
    if (why === 'bad-record') this.#emit('session:invalid', 'bad-record');
    else if (why !== undefined) this.#expired(why);
    this.#forget();
  }

  #forget(): void {
    const had = this.#sid !== undefined;
    this.#sid = undefined;
    this.#isNew = true;
    this.#cookie.cleared(had);
  }

  cookieRefreshed(sid: string): void {
    this.#cookie.write(sid, this.#meta);
  }

  /** The sid's record is gone (`'gone'`) or past its `absoluteTtl` (`'absolute-ttl'`): the request gets a fresh session. */
  #expired(why: 'gone' | 'absolute-ttl'): void {
    debug(
      'session %s reset: %s',
      this.options.name,
      why === 'gone'
        ? 'its record is gone from the master (expired, evicted by the store, or destroyed by another request)'
        : 'past its absoluteTtl',
    );
    this.#emit('session:expired');
  }

  // ---- the end of the request ----------------------------------------------

  /** The downstream middleware settled: end forgotten `lock()` scopes, then the response headers and rolling expiry. */
  end(failed: boolean): Promise<void> | undefined {
    const ending = Scope.endWithRequest(this, failed);
    if (ending) return ending.then(() => (failed ? undefined : this.#finish()));
    return failed ? undefined : this.#finish();
  }

  /** Response headers for a response that used the session; the rolling renewal. Returns a promise only when it has to wait. */
  #finish(): Promise<void> | undefined {
    if (!this.#used) return undefined;
    const ctx = this.#ctx;
    // A response that depends on the session must never be served to another user from a shared cache.
    // Straight to node's headers when none is set yet (Koa's vary() and get()/set() parse and re-check them).
    const { res } = ctx;
    if (!res.headersSent) {
      if (res.getHeader('Vary') === undefined) res.setHeader('Vary', this.#rt.transport.vary);
      else ctx.vary(this.#rt.transport.vary);
      if (!res.getHeader('Cache-Control')) res.setHeader('Cache-Control', 'private');
    }
    if (!this.options.rolling || this.#cookie.written || this.#sid === undefined) return undefined;
    return this.#roll(this.#sid);
  }

  async #roll(sid: string): Promise<void> {
    await this.replica.touch(this.key(sid), this.format.ttl(this.#meta));
    this.#cookie.write(sid, this.#meta);
  }

  #emit(event: 'session:invalid' | 'session:expired', reason?: InvalidReason): void {
    if (reason !== undefined) debug('session %s reset: %s', this.options.name, RESET_REASONS[reason] ?? reason);
    this.#ctx.app.emit(event, { ctx: this.#ctx, name: this.options.name, ...(reason === undefined ? {} : { reason }) });
  }
}
