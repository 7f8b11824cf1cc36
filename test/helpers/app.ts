import Koa from 'koa';
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import { session, type SessionOptions } from '../../src/index.js';
import { setCookies } from './cookies.js';
import { isVersioned, type Store, type VersionedRecord, type WriteCondition } from '../../src/contracts/store.js';

/**
 * Counts calls per operation on a store (a spy around a real store, not a mock).
 * Versioned like the store it wraps: `read` counts as a get, `write` as a set or destroy.
 */
export class CountingStore implements Store {
  readonly calls = { get: 0, set: 0, destroy: 0, touch: 0 };
  readonly keys: string[] = [];
  read?: (key: string) => Promise<VersionedRecord | undefined>;
  write?: (key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition) => Promise<boolean>;
  constructor(readonly inner: Store) {
    if (isVersioned(inner)) {
      this.read = (key) => {
        this.calls.get++;
        this.keys.push(key);
        return inner.read(key);
      };
      this.write = (key, value, version, ttlMs, condition) => {
        this.calls[value === undefined ? 'destroy' : 'set']++;
        this.keys.push(key);
        return inner.write(key, value, version, ttlMs, condition);
      };
    }
  }
  get name() {
    return this.inner.name;
  }
  get total() {
    return this.calls.get + this.calls.set + this.calls.destroy + this.calls.touch;
  }
  get(key: string) {
    this.calls.get++;
    this.keys.push(key);
    return this.inner.get(key);
  }
  set(key: string, value: string, ttlMs: number) {
    this.calls.set++;
    this.keys.push(key);
    return this.inner.set(key, value, ttlMs);
  }
  destroy(key: string) {
    this.calls.destroy++;
    this.keys.push(key);
    return this.inner.destroy(key);
  }
  touch(key: string, ttlMs: number) {
    this.calls.touch++;
    this.keys.push(key);
    return this.inner.touch ? this.inner.touch(key, ttlMs) : Promise.resolve();
  }
}

/** A store whose every call fails, as a dead server would. */
export class FailingStore implements Store {
  constructor(readonly name = 'failing') {}
  async get(): Promise<string | undefined> {
    throw new Error('connection refused');
  }
  async set(): Promise<void> {
    throw new Error('connection refused');
  }
  async destroy(): Promise<void> {
    throw new Error('connection refused');
  }
  async touch(): Promise<void> {
    throw new Error('connection refused');
  }
}

/** A Koa app with signed cookies and session(options) in front of `routes`. */
export function makeApp(options: SessionOptions, routes: Koa.Middleware): Koa {
  const app = new Koa();
  app.keys = ['test-key-1', 'test-key-0'];
  app.silent = true;
  app.use(session(options));
  app.use(routes);
  return app;
}

/** Start `app` on a free loopback port; resolves to its base URL and a close function. */
export async function listen(app: Koa): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(app.callback());
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `name=value` pairs from a response's Set-Cookie headers, ready for a Cookie header (see cookies.ts). */
export { cookieHeader } from './cookies.js';

/** A promise plus its resolve function (to hold a request open until the test says so). */
export function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** The sid a response set in its `sid` (or `name`) cookie. */
export function sidOf(res: { headers: Record<string, unknown> }, name = 'sid'): string {
  const cookie = setCookies(res, name).find((c) => c.value !== '');
  if (!cookie) throw new Error(`no ${name} cookie in the response`);
  return cookie.value;
}

/** A store that never answers, as a stalled server would (until `wake()`). */
export class HangingStore implements Store {
  readonly #waiting = new Set<() => void>();
  hanging = true;
  constructor(
    readonly inner: Store,
    readonly name = 'hanging',
  ) {}
  get pending(): number {
    return this.#waiting.size;
  }
  /** Let every stalled call through. */
  wake(): void {
    this.hanging = false;
    for (const go of this.#waiting) go();
    this.#waiting.clear();
  }
  async #gate(): Promise<void> {
    if (this.hanging) await new Promise<void>((resolve) => this.#waiting.add(resolve));
  }
  async get(key: string) {
    await this.#gate();
    return this.inner.get(key);
  }
  async set(key: string, value: string, ttlMs: number) {
    await this.#gate();
    return this.inner.set(key, value, ttlMs);
  }
  async destroy(key: string) {
    await this.#gate();
    return this.inner.destroy(key);
  }
}
