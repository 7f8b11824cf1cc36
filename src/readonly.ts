import { SessionError } from './errors.js';

const MESSAGE =
  'koa-locked-session: the object returned by ctx.session.get() is a read-only snapshot; ' +
  'change session data inside `await ctx.session.withLock(s => { ... })` or `await using s = await ctx.session.lock()`';

function refuse(): never {
  throw new SessionError(MESSAGE);
}

const cache = new WeakMap<object, object>();

const handler: ProxyHandler<object> = {
  get(target, key, receiver) {
    const value = Reflect.get(target, key, receiver);
    return typeof value === 'object' && value !== null ? readonly(value) : value;
  },
  set: refuse,
  defineProperty: refuse,
  deleteProperty: refuse,
  setPrototypeOf: refuse,
};

/**
 * A deep read-only view of `value`. Writes throw in strict and sloppy code alike
 * (a frozen object would silently ignore them in sloppy code), so a write to the
 * unlocked snapshot is an error, never a silent lost update.
 */
export function readonly<T extends object>(value: T): T {
  let view = cache.get(value);
  if (!view) {
    view = new Proxy(value, handler);
    cache.set(value, view);
  }
  return view as T;
}
