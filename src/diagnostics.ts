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

export interface LockMessage {
  session: string;
  locker: string;
  waitMs: number;
  outcome: 'acquired' | 'timeout' | 'error';
}

export interface StoreMessage {
  session: string;
  store: string;
  role: 'master' | 'mirror';
  op: 'get' | 'set' | 'destroy' | 'touch';
  durationMs: number;
  error?: unknown;
}

export interface MirrorErrorMessage {
  session: string;
  store: string;
  op: 'set' | 'destroy' | 'touch';
  error: unknown;
}

export const lockChannel = diagnostics_channel.channel(CHANNELS.lock);
export const storeChannel = diagnostics_channel.channel(CHANNELS.store);
export const mirrorErrorChannel = diagnostics_channel.channel(CHANNELS.mirrorError);
