/**
 * What fromConnectStore and fromKoaStore check alike before wrapping a store of
 * another session library: that it has get, set and destroy, their options
 * (`name`, `timeoutMs`), and the TTL of each `set`. One copy, so the two
 * adapters' messages stay the same shape.
 */
import { StoreError } from '../errors.js';
import { describe } from '../util/format.js';
import { Validator } from '../util/validate.js';
import { validTtl } from './record.js';

/** The options both adapters take (each documents them on its own options type). */
export interface PeerStoreAdapterOptions {
  name?: string;
  timeoutMs?: number;
}

/** How an adapter names itself and the stores it takes, in its messages and default store name. */
export interface PeerAdapter {
  /** The adapter function, e.g. `fromConnectStore`. */
  readonly fn: string;
  /** What it takes, e.g. `an express-session store`. */
  readonly takes: string;
  /** The default store name's prefix: `connect` gives `connect:<class name>`. */
  readonly namePrefix: string;
}

/** The checked settings of one adapted store. */
export interface PeerStoreSettings {
  /** The store's name in logs, events and errors. */
  readonly name: string;
  /** Longest wait for one call (ms). */
  readonly timeoutMs: number;
}

/**
 * Check that `store` has get, set and destroy (a TypeError naming what it
 * lacks) and validate `options`; resolves the name (`<prefix>:<class name>`
 * by default) and the timeout (2000 ms by default).
 */
export function checkPeerStore(store: unknown, options: PeerStoreAdapterOptions, adapter: PeerAdapter): PeerStoreSettings {
  const missing = ['get', 'set', 'destroy'].filter((m) => typeof (store as Record<string, unknown> | null)?.[m] !== 'function');
  if (typeof store !== 'object' || store === null || missing.length > 0) {
    throw new TypeError(
      `koa-locked-session: Expected ${adapter.fn}() to get ${adapter.takes} (with get, set and destroy), got \`${describe(store)}\`${missing.length && store ? ` (it lacks ${missing.join(', ')})` : ''}`,
    );
  }
  const timeoutMs = new Validator(adapter.fn).positiveMs('timeoutMs', options.timeoutMs, 2000);
  const className = store.constructor?.name;
  const name = options.name ?? `${adapter.namePrefix}:${className && className !== 'Object' ? className : 'store'}`;
  return { name, timeoutMs };
}

/** The TTL of a `set` on an adapted store: a positive finite number of ms, else a StoreError (500: a bug upstream). */
export function checkAdaptedTtl(name: string, ttlMs: number): void {
  if (!validTtl(ttlMs))
    throw new StoreError(name, `expected ttlMs to be a positive number of ms, got \`${describe(ttlMs)}\``, { status: 500 });
}
