/**
 * Every check of programmer input in one place, with one message format:
 *
 *   koa-locked-session: Expected RedisStore `timeoutMs` to be a positive number of ms, got `-1`
 *
 * used by the middleware options (src/options/resolve.ts) and by every store and locker
 * constructor. Bad programmer input fails fast (a `TypeError` at construction);
 * the per-call checks a store makes (a TTL, a version) throw a `StoreError`
 * with status 500 instead, because they reach the store through the session
 * layer, which reports store failures.
 */
import { StoreError } from '../errors.js';
import { describe } from './format.js';
import type { WriteCondition } from '../contracts/store.js';

/**
 * Checks of the options of one component. `owner` is how messages name it:
 * `''` for `session()` itself (messages then read "Expected \`ttl\` …"),
 * `'RedisStore'`, `'MemcachedStore'`… for a store or locker.
 */
export class Validator {
  constructor(readonly owner: string) {}

  /** Throw the one message format: "Expected <owner> `option` to be <expected>, got `<value>`. <fix>" */
  fail(option: string, expected: string, got: unknown, fix = ''): never {
    const who = this.owner ? `${this.owner} ` : '';
    throw new TypeError(
      `koa-locked-session: Expected ${who}\`${option}\` to be ${expected}, got \`${describe(got)}\`${fix ? `. ${fix}` : ''}`,
    );
  }

  /** A positive, finite number of ms (`fallback` when undefined). */
  positiveMs(option: string, value: unknown, fallback: number): number;
  positiveMs(option: string, value: unknown, fallback?: number): number | undefined;
  positiveMs(option: string, value: unknown, fallback?: number): number | undefined {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) this.fail(option, 'a positive number of ms', value);
    return value;
  }

  /** A non-negative, finite number of ms, where 0 turns something off (`fallback` when undefined). */
  nonNegativeMs(option: string, value: unknown, fallback: number): number {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) this.fail(option, 'a non-negative number of ms', value);
    return value;
  }

  /** A positive integer (`fallback` when undefined). */
  positiveInt(option: string, value: unknown, fallback: number): number;
  positiveInt(option: string, value: unknown, fallback?: number): number | undefined;
  positiveInt(option: string, value: unknown, fallback?: number): number | undefined {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) this.fail(option, 'a positive integer', value);
    return value;
  }

  /** A boolean (`fallback` when undefined). */
  bool(option: string, value: unknown, fallback: boolean): boolean {
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') this.fail(option, 'a boolean', value);
    return value;
  }

  /** A string matching `pattern` (`fallback` when undefined); `expected` describes the pattern. */
  string(option: string, value: unknown, fallback: string, pattern?: RegExp, expected = 'a string'): string {
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || (pattern && !pattern.test(value))) this.fail(option, expected, value);
    return value;
  }

  /** One of `allowed` (`fallback` when undefined). */
  oneOf<const T>(option: string, value: unknown, allowed: readonly T[], fallback: T): T {
    if (value === undefined) return fallback;
    if (!allowed.includes(value as T)) this.fail(option, listed(allowed), value);
    return value as T;
  }

  /** An options object (`{}` when undefined). */
  object<T extends object>(option: string, value: T | undefined): T {
    if (value === undefined) return {} as T;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(option, 'an object', value);
    return value;
  }

  /** A Store: else the message names the members it lacks (and the adapter, for a store of another session library). */
  store(option: string, value: unknown): void {
    const problem = storeProblem(value);
    if (problem === undefined) return;
    const who = this.owner ? `${this.owner} ` : '';
    throw new TypeError(`koa-locked-session: Expected ${who}\`${option}\` to be a Store (name, get(), set(), destroy()): ${problem}`);
  }

  /**
   * Refuse any key of `input` that is not in `known`: a misspelt or foreign
   * option (koa-session's `key`, express-session's `resave`…) would otherwise
   * be ignored silently. `hints` maps foreign names to the message that names
   * our equivalent; `path` prefixes the option in messages (`cookie.`).
   */
  known(input: object, known: readonly string[], hints: Readonly<Record<string, string>> = {}, path = ''): void {
    for (const key of Object.keys(input)) {
      if (known.includes(key)) continue;
      const where = this.owner ? `${this.owner} option` : 'option';
      const hint = Object.hasOwn(hints, key) ? hints[key]! : `Known options: ${known.join(', ')}`;
      throw new TypeError(`koa-locked-session: Unknown ${where} \`${path}${key}\`. ${hint}`);
    }
  }
}

/** `'a', 'b' or 'c'`, as messages list allowed values. */
function listed(values: readonly unknown[]): string {
  const shown = values.map((v) => (typeof v === 'string' ? `'${v}'` : String(v)));
  return shown.length <= 1 ? shown.join('') : `${shown.slice(0, -1).join(', ')} or ${shown.at(-1)}`;
}

// ---- what a Store and a Locker must have --------------------------------------

/** The members a {@link import('../contracts/store.js').Store} needs that `value` lacks (empty: none). */
export function missingStoreMembers(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) return ['name', 'get()', 'set()', 'destroy()'];
  const s = value as Record<string, unknown>;
  const missing: string[] = [];
  if (typeof s.name !== 'string') missing.push('name');
  for (const method of ['get', 'set', 'destroy']) if (typeof s[method] !== 'function') missing.push(`${method}()`);
  return missing;
}

/**
 * Why `value` is not a Store, naming what it lacks, or `undefined` when it is
 * one. A store of express-session (connect) or of koa-session /
 * koa-generic-session (koa-redis…) gets a pointer to its adapter.
 */
export function storeProblem(value: unknown): string | undefined {
  const missing = missingStoreMembers(value);
  if (missing.length === 0) return undefined;
  const lacks = `it lacks ${missing.join(', ')}`;
  if (typeof value !== 'object' || value === null) return lacks;
  const s = value as Record<string, unknown>;
  const fn = (name: string): ((...args: unknown[]) => unknown) | undefined =>
    typeof s[name] === 'function' ? (s[name] as (...args: unknown[]) => unknown) : undefined;
  // connect stores take callbacks (get(sid, cb)) and inherit load/regenerate/createSession from express-session's Store.
  if (
    fn('createSession') ||
    fn('regenerate') ||
    fn('load') ||
    (fn('get') && fn('get')!.length >= 2 && fn('set') && fn('set')!.length >= 3)
  ) {
    return `${lacks}. It looks like an express-session (connect) store: wrap it with \`fromConnectStore(store)\``;
  }
  // koa-session external stores and koa-generic-session stores (koa-redis) have promise get/set/destroy but no name.
  if (fn('get') && fn('set') && fn('destroy')) {
    return `${lacks}. It looks like a koa-session / koa-generic-session store (koa-redis…): wrap it with \`fromKoaStore(store)\``;
  }
  return lacks;
}

// ---- per-call checks of the stores ---------------------------------------------

/**
 * A record's TTL as the stores need it: a positive, finite number of ms,
 * rounded up to a whole ms. Thrown as a `StoreError` (status 500) naming the
 * store and the command, before anything is sent.
 */
export function checkTtl(store: string, command: string, ttlMs: number): number {
  if (typeof ttlMs !== 'number' || !(ttlMs > 0) || !Number.isFinite(ttlMs)) {
    throw new StoreError(store, `${command} failed: expected ttlMs to be a positive number of ms, got \`${describe(ttlMs)}\``, {
      status: 500,
    });
  }
  return Math.ceil(ttlMs);
}

/** The version and condition of a versioned write (see `VersionedStore.write`), checked before anything is sent. */
export function checkVersionedWrite(store: string, command: string, version: number, condition: WriteCondition): void {
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new StoreError(store, `${command} failed: expected version to be a non-negative safe integer, got \`${describe(version)}\``, {
      status: 500,
    });
  }
  if (!(condition === null || condition === 'newer' || (Number.isSafeInteger(condition) && condition >= 0))) {
    throw new StoreError(store, `${command} failed: expected condition to be null, 'newer' or a version, got \`${describe(condition)}\``, {
      status: 500,
    });
  }
}
