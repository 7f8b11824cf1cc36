/**
 * The routes every variant serves, identical in path, status and body shape,
 * and the per-process counters the harness reads over IPC.
 *
 * | route        | does                                                        | body            |
 * | ------------ | ----------------------------------------------------------- | --------------- |
 * | `/fresh`     | creates and saves a session `{ count: 1 }`                  | `{"count":1}`   |
 * | `/rmw`       | increments `count` (under the lock, for us)                 | `{"count":n}`   |
 * | `/read`      | reads `count` without changing anything                     | `{"count":n}`   |
 * | `/untouched` | never touches the session                                   | `{"ok":true}`   |
 *
 * Koa variants pass their session middleware and three small functions to
 * {@link koaApp}; the Express peer uses {@link appStats} and {@link countRmw}
 * itself.
 */
import Koa from 'koa';
import type { Middleware, Context } from 'koa';
import type { AppStats } from './types.js';

export const ROUTES = { fresh: '/fresh', rmw: '/rmw', read: '/read', untouched: '/untouched' } as const;

/** This process's counters (one app per process). */
export const appStats: AppStats = { requests: 0, rmwOk: 0, inflight: 0, non2xx: {} };

/** Count a response that was not a 2xx, by status (a 503 or 409 is an error, not throughput). */
export function countStatus(status: number): void {
  if (status >= 200 && status < 300) return;
  const counts = (appStats.non2xx ??= {});
  counts[status] = (counts[status] ?? 0) + 1;
}

/**
 * Count a read-modify-write request as acknowledged: called once its response
 * is committed with a 2xx **after** every save of the session middleware, so
 * `rmwOk − (counter increase)` is exactly the number of lost updates.
 */
export function countRmw(status: number): void {
  if (status >= 200 && status < 300) appStats.rmwOk++;
}

/** How a Koa variant uses its session on the three session routes. */
export interface SessionOps {
  /** Create and save a session `{ count: 1 }`. */
  fresh(ctx: Context): Promise<void> | void;
  /** Increment `count` and return the new value. */
  rmw(ctx: Context): Promise<number> | number;
  /** The current `count` (undefined for an empty session). */
  read(ctx: Context): Promise<number | undefined> | number | undefined;
}

export interface KoaAppOptions {
  /** Signing keys for cookies. */
  keys?: string[];
  /** Session middleware(s), mounted after the counters and before the routes (a function when they need the app). */
  middleware?: Middleware[] | ((app: Koa) => Middleware[]);
  /** `null` for bare Koa (the routes answer without a session). */
  ops: SessionOps | null;
}

/** A Koa app with the counters outermost, then the session middleware, then the routes. */
export function koaApp(options: KoaAppOptions): Koa {
  const app = new Koa();
  app.keys = options.keys ?? ['benchmark key, not a secret'];
  app.silent = true;
  // Outermost: session middlewares commit inside `next()`, so a 2xx seen here is saved.
  app.use(async (ctx, next) => {
    appStats.requests++;
    appStats.inflight++;
    let status: number | undefined;
    try {
      await next();
    } catch (error) {
      // Koa's own error handler answers after us: count the status it will send.
      status = (error as { status?: number }).status ?? 500;
      throw error;
    } finally {
      appStats.inflight--;
      countStatus(status ?? ctx.status);
      if (ctx.url === ROUTES.rmw && status === undefined) countRmw(ctx.status);
    }
  });
  const middleware = typeof options.middleware === 'function' ? options.middleware(app) : (options.middleware ?? []);
  for (const mw of middleware) app.use(mw);
  const ops = options.ops;
  app.use(async (ctx) => {
    switch (ctx.url) {
      case ROUTES.fresh:
        if (ops) await ops.fresh(ctx);
        ctx.body = { count: 1 };
        return;
      case ROUTES.rmw:
        ctx.body = { count: ops ? await ops.rmw(ctx) : 0 };
        return;
      case ROUTES.read:
        ctx.body = { count: ops ? ((await ops.read(ctx)) ?? null) : null };
        return;
      case ROUTES.untouched:
        ctx.body = { ok: true };
        return;
      default:
        ctx.status = 404;
    }
  });
  return app;
}

/** A counter value out of session data of unknown shape. */
export function countOf(data: unknown): number | undefined {
  const value = (data as { count?: unknown } | null | undefined)?.count;
  return typeof value === 'number' ? value : undefined;
}
