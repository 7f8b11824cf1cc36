import { SessionError } from '../errors.js';

const MESSAGE =
  'koa-locked-session: the object returned by ctx.session.get() is a read-only snapshot; ' +
  'change session data inside `await ctx.session.withLock(s => { ... })` or `await using s = await ctx.session.lock()`';

function refuse(): never {
  throw new SessionError(MESSAGE);
}

const isObject = (value: unknown): value is object => typeof value === 'object' && value !== null;

/**
 * A deep read-only view of `value`. Every route that could change it throws our
 * error (in strict and sloppy code alike, and through `Reflect.set`, where a
 * frozen object would only return `false` or ignore the write), so a write to
 * the unlocked snapshot is always an error, never a silent lost update:
 * assignment, `delete`, `Object.defineProperty`/`assign`/`setPrototypeOf`/
 * `preventExtensions`/`freeze`, array methods, and objects reached through a
 * property descriptor (`Object.getOwnPropertyDescriptor(snap, 'a').value` is
 * a read-only view too). Copies are allowed and writable: `structuredClone`
 * is not (a Proxy cannot be cloned), use `JSON.parse(JSON.stringify(snap))`
 * or `{ ...snap }` (shallow: nested values stay read-only views).
 *
 * Nested views are cached per snapshot, so `snap.a === snap.a`. The cache
 * lives and dies with the snapshot (a Map in its closure, not a global
 * WeakMap, whose ephemerons cost every GC).
 */
export function readonly<T extends object>(value: T): T {
  const views = new Map<object, object>();
  const view = (target: object): object => {
    let v = views.get(target);
    if (v === undefined) {
      v = new Proxy(target, handler);
      views.set(target, v);
    }
    return v;
  };
  const handler: ProxyHandler<object> = {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver);
      return isObject(v) ? view(v) : v;
    },
    getOwnPropertyDescriptor(target, key) {
      const d = Reflect.getOwnPropertyDescriptor(target, key);
      // Proxy invariant: a non-configurable, non-writable property must report its own value
      // (never the case for parsed JSON; a custom serializer's frozen value is read-only anyway).
      if (d && isObject(d.value) && (d.configurable || d.writable)) d.value = view(d.value);
      return d;
    },
    set: refuse,
    defineProperty: refuse,
    deleteProperty: refuse,
    setPrototypeOf: refuse,
    preventExtensions: refuse,
  };
  return view(value) as T;
}
