import diagnostics_channel from 'node:diagnostics_channel';

/**
 * Diagnostics through Node's built-in `node:diagnostics_channel`: subscribe to
 * get metrics without a dependency. Publishing costs nothing while nobody
 * subscribes. Payloads never carry session ids or data.
 *
 * @example
 * import diagnostics_channel from 'node:diagnostics_channel';
 * diagnostics_channel.subscribe('koa-locked-session:store', (m) => histogram.record(m.store, m.op, m.durationMs));
 */
export const CHANNELS = Object.freeze({
  /** Every lock acquisition: `{ session, locker, waitMs, outcome: 'acquired' | 'timeout' | 'error' }`. */
  lock: 'koa-locked-session:lock',
  /** Every store call: `{ session, store, role: 'master' | 'mirror', op, durationMs, error? }`. */
  store: 'koa-locked-session:store',
  /** A mirror write failed or was dropped: `{ session, store, op, error }`. */
  mirrorError: 'koa-locked-session:mirror-error',
});

/** Published on `koa-locked-session:lock` for every lock acquisition. */
export interface LockMessage {
  /** The session's name (`session({ name })`), never its id. */
  session: string;
  /** The locker's `name`. */
  locker: string;
  /** How long the request waited for the lock, ms. */
  waitMs: number;
  /** Acquired, gave up at `lockTimeout`, or the locker failed. */
  outcome: 'acquired' | 'timeout' | 'error';
}

/** Published on `koa-locked-session:store` for every store call. */
export interface StoreMessage {
  /** The session's name (`session({ name })`), never its id. */
  session: string;
  /** The store's `name`. */
  store: string;
  /** Whether the store is the master or a mirror. */
  role: 'master' | 'mirror';
  /** The store operation. */
  op: 'get' | 'set' | 'destroy' | 'touch';
  /** How long the call took, ms. */
  durationMs: number;
  /** What it threw, when it failed. */
  error?: unknown;
}

/** Published on `koa-locked-session:mirror-error` when a mirror write failed or was dropped. */
export interface MirrorErrorMessage {
  /** The session's name (`session({ name })`), never its id. */
  session: string;
  /** The mirror's `name`. */
  store: string;
  /** The write that failed. */
  op: 'set' | 'destroy' | 'touch';
  /** What the mirror threw (or why the write was dropped). */
  error: unknown;
}

export const lockChannel = diagnostics_channel.channel(CHANNELS.lock);
export const storeChannel = diagnostics_channel.channel(CHANNELS.store);
export const mirrorErrorChannel = diagnostics_channel.channel(CHANNELS.mirrorError);
