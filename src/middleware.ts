import type Koa from 'koa';
import type { Middleware } from 'koa';
import type { SessionData } from './session-data.js';
import { resolveOptions, type SessionOptions } from './options.js';
import { flushPending, Replica } from './core/replica.js';
import { SessionHandle, type SessionRuntime } from './session.js';
import { SessionError } from './errors.js';
import { appKeys, cookieTransport, headerTransport, KEYS_FIX } from './sid/transport.js';
import { isRequestStore, type BoundRequestStore } from './contracts/store.js';
import { UserIndex } from './auth/user-index.js';
import { Lifecycle } from './core/lifecycle.js';
import { RecordFormat } from './core/record.js';
import { scrubError } from './util/format.js';

/** The middleware returned by {@link session}, with a way to shut the session layer down. */
export interface SessionMiddleware extends Middleware {
  /**
   * Graceful shutdown: refuse new scopes (503), wait for the scopes in flight, flush
   * background mirror writes, then close the locker and the stores (a store never
   * closes a client it was given). Call it after `server.close()` stopped new connections.
   */
  close(): Promise<void>;
}

/** Names already installed on an app's context, so two session() calls cannot silently share one. */
const INSTALLED = Symbol('koa-locked-session:installed');
/** Cookie names used by the session() middlewares of an app (cookie name → session name). */
const COOKIES = Symbol('koa-locked-session:cookies');

type AppWithRegistry = Koa & { context: Koa['context'] & { [INSTALLED]?: Map<string, symbol>; [COOKIES]?: Map<string, string> } };

/** The cookies a session() reads and writes: its sid cookie (and signature), or its CookieStore's cookie; none for a header. */
function cookiesOf(resolved: ReturnType<typeof resolveOptions>): string[] {
  if (isRequestStore(resolved.master)) {
    const { cookie } = resolved.master as { cookie?: { name?: unknown } };
    return typeof cookie?.name === 'string' ? [cookie.name] : [];
  }
  if (resolved.header !== undefined) return [];
  return resolved.cookie.signed ? [resolved.cookie.name, `${resolved.cookie.name}.sig`] : [resolved.cookie.name];
}

/**
 * koa-session's `ctx.sessionOptions` (its per-request options object, e.g.
 * `ctx.sessionOptions.maxAge = …`) has no counterpart here: reading or assigning it
 * throws naming the fix instead of reading `undefined` (or, in sloppy code, a write
 * that vanishes). Installed once per app, only when nobody else (koa-session itself,
 * during a migration) defined it, and configurable so a later koa-session can.
 * Non-enumerable, and `'sessionOptions' in ctx` is a plain `true` (no read).
 */
function noSessionOptions(app: Koa): void {
  if ('sessionOptions' in app.context) return;
  const refuse = (): never => {
    throw new TypeError(
      "koa-locked-session: ctx.sessionOptions (koa-session's per-request options) does not exist: options are fixed per `session({ ... })` " +
        "(the cookie's under `cookie: { maxAge, sameSite, … }`, the expiry under `ttl`); one session's expiry is set at login, " +
        '`await ctx.session.login(user, { ttl, remember })`',
    );
  };
  Object.defineProperty(app.context, 'sessionOptions', { configurable: true, enumerable: false, get: refuse, set: refuse });
}

/**
 * The session middleware: installs a lazy, lockable handle on `ctx[name]`
 * (`ctx.session` by default). Nothing touches a store or sets a cookie until the
 * handle is used.
 *
 * @example
 * app.keys = ['a long random secret'];
 * app.use(session());
 * app.use(async (ctx) => {
 *   ctx.body = await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1));
 * });
 */
export function session<T extends object = SessionData>(options: SessionOptions = {}): SessionMiddleware {
  const resolved = resolveOptions(options);
  const { name } = resolved;
  const handleKey = Symbol(`koa-locked-session:${name}`);
  // A CookieStore master takes its cookie name from this session (named sessions get separate cookies).
  const { master } = resolved;
  const claim = (master as { claim?: (session: string, cookie: string | undefined) => void }).claim;
  if (isRequestStore(master) && typeof claim === 'function') claim.call(master, name, options.cookie?.name);
  const needsKeys = (resolved.cookie.signed || resolved.header !== undefined) && !isRequestStore(master);
  const transport = resolved.header === undefined ? cookieTransport(resolved.cookie) : headerTransport(resolved.header);
  const index = new UserIndex(resolved.locker, resolved.lockTimeout, resolved.prefix, resolved.maxSessionsPerUser, resolved.storeTimeout);
  const format = new RecordFormat(resolved);
  const runtimes = new WeakMap<Koa, SessionRuntime>();
  /** Each app's background mirror queue (flushed by close()). */
  const pendings = new Set<Set<Promise<void>>>();
  const lifecycle = new Lifecycle();

  const runtimeFor = (app: Koa): SessionRuntime => {
    const known = runtimes.get(app);
    if (known) return known;
    const onMirrorError = (report: { store: string; sid: string; op: 'set' | 'destroy' | 'touch'; error: unknown }) =>
      app.emit('session:mirror-error', report);
    const replicaOptions = {
      onMirrorError,
      mode: resolved.mirrorWrites,
      storeTimeout: resolved.storeTimeout,
      maxPendingMirrorWrites: resolved.maxPendingMirrorWrites,
      session: name,
    };
    const pending = new Set<Promise<void>>();
    pendings.add(pending);
    const runtime: SessionRuntime = {
      options: resolved,
      transport,
      index,
      lifecycle,
      format,
      // A request store (CookieStore) has no app-wide master: each request binds its own.
      replica: isRequestStore(master) ? undefined : new Replica(master, resolved.mirrors, replicaOptions, pending),
      bindReplica: (bound: BoundRequestStore) => Replica.forRequest(bound, resolved.prefix, resolved.mirrors, replicaOptions, pending),
    };
    install(app as AppWithRegistry, runtime); // throws on every request while the app is misconfigured
    runtimes.set(app, runtime);
    return runtime;
  };

  const install = (app: AppWithRegistry, runtime: SessionRuntime) => {
    const registry = (app.context[INSTALLED] ??= new Map());
    const existing = registry.get(name);
    if (existing !== undefined && existing !== handleKey) {
      throw new SessionError(
        `koa-locked-session: two session() middlewares use the name "${name}" on one app; give each its own \`name\` option (it becomes ctx[name])`,
      );
    }
    registry.set(name, handleKey);
    // Two sessions in one cookie would read each other's data and overwrite each other's cookie.
    const cookies = (app.context[COOKIES] ??= new Map());
    for (const cookie of cookiesOf(resolved)) {
      const owner = cookies.get(cookie);
      if (owner !== undefined && owner !== name) {
        throw new SessionError(
          `koa-locked-session: sessions "${owner}" and "${name}" both use the cookie "${cookie}" on one app; give each its own cookie name (\`session({ cookie: { name } })\`, or \`new CookieStore({ cookie: { name } })\`)`,
        );
      }
      cookies.set(cookie, name);
    }
    noSessionOptions(app);
    // Koa's own pattern (ctx.cookies): a getter on the context prototype that builds the handle on first access.
    Object.defineProperty(app.context, name, {
      configurable: true,
      enumerable: false,
      get(this: Koa.Context & Record<symbol, SessionHandle<T> | undefined>) {
        return (this[handleKey] ??= new SessionHandle<T>(this, runtime));
      },
      // No silent footgun (koa-session's `ctx.session = null`): without a setter, sloppy code would ignore it.
      set() {
        throw new TypeError(
          `koa-locked-session: ctx.${name} cannot be assigned; to end the session call \`await ctx.${name}.destroy()\` (or logout()), to change its data use \`await ctx.${name}.withLock((s) => { … })\``,
        );
      },
    });
  };

  const middleware = async function lockedSession(ctx: Koa.Context, next: Koa.Next) {
    runtimeFor(ctx.app);
    // Every request, not only those that create a session: a missing, empty or malformed
    // app.keys fails at once with the fix, never later as a 500 from inside the signer.
    if (needsKeys) appKeys(ctx, resolved.header === undefined ? KEYS_FIX.cookie : KEYS_FIX.header);
    const handleOf = () => (ctx as unknown as Record<symbol, SessionHandle<T> | undefined>)[handleKey];
    let failed = true;
    try {
      try {
        await next();
        failed = false;
      } finally {
        const ending = handleOf()?.end(failed);
        if (ending) await ending; // most requests have nothing left to wait for
      }
    } catch (error) {
      // Last line of SECURITY.md's "no sid in error messages": whatever escapes (ours, a
      // driver's, the app's), its message, stack and causes lose this request's sid.
      let id: string | undefined;
      try {
        id = handleOf()?.id;
      } catch {
        id = undefined; // the handle could not even read the request (e.g. bad app.keys): no sid to scrub
      }
      scrubError(error, id === undefined ? [] : [id]);
      throw error;
    }
  } as SessionMiddleware;

  // One shutdown, however many callers (a process often wires both SIGTERM and SIGINT to it):
  // every call gets the same promise, so each settles, and the locker and stores close once.
  let closing: Promise<void> | undefined;
  middleware.close = () =>
    (closing ??= (async () => {
      await lifecycle.close();
      await Promise.all([...pendings].map(flushPending));
      await resolved.locker.close?.();
      await Promise.all([resolved.master, ...resolved.mirrors].map((s) => s.close?.()));
    })());
  return middleware;
}
