import type Koa from 'koa';
import { MemoryLocker, MemoryStore, type SessionOptions } from '../../src/index.js';
import { CountingStore, makeApp } from './app.js';

/**
 * A session app on a MemoryStore wrapped in a {@link CountingStore} (to count
 * store calls) and its own MemoryLocker (to see that locks are released).
 */
export function countingApp(routes: Koa.Middleware, extra: Partial<SessionOptions> = {}) {
  const store = new CountingStore(new MemoryStore());
  const locker = new MemoryLocker();
  const app = makeApp({ master: store, locker, ...extra }, routes);
  return { store, locker, app, server: app.callback() };
}
