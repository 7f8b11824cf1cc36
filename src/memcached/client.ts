/**
 * The `memcached` client as MemcachedStore sees it: the subset of its callback
 * API the store uses, one bounded command (`Call`), and the hardening of a
 * client the store creates. Its own file because the store, its limits
 * (limits.ts) and its compare-and-swap write (cas-write.ts) all talk to the
 * server through it.
 */
import { debuglog } from 'node:util';
import { storeCall } from '../util/deadline.js';
import { errorMessage } from '../util/format.js';

const debug = debuglog('koa-locked-session');

/** The name of MemcachedStore in logs, events and errors. */
export const MEMCACHED_STORE_NAME = 'memcached';

export type Callback<T> = (error: unknown, result: T) => void;

/** The subset of the `memcached` client the store uses (all callback-based). */
export interface MemcachedClient {
  get(key: string, cb: Callback<unknown>): void;
  gets(key: string, cb: Callback<Record<string, unknown> | undefined>): void;
  set(key: string, value: string, lifetime: number, cb: Callback<boolean>): void;
  cas(key: string, value: string, cas: string, lifetime: number, cb: Callback<boolean>): void;
  add(key: string, value: string, lifetime: number, cb: Callback<boolean>): void;
  del(key: string, cb: Callback<boolean>): void;
  settings(cb: Callback<Array<Record<string, unknown>>>): void;
  end(): void;
  namespace?: string;
  maxValue?: number;
  servers?: string[];
  emit(event: string, ...args: unknown[]): boolean;
  connectionIssue?: (error: unknown, socket: { end?: () => void; serverAddress?: string } | undefined) => void;
}

/** One command on the client (`command` names it in errors), its callback as a promise. */
export type Call = <T>(command: string, start: (cb: Callback<T>) => void) => Promise<T>;

/**
 * Promise wrapper over the callback API, bounded by `timeoutMs` through the
 * shared store-call wrapper (the library never calls back for a command
 * that was in flight when a server died), failures as `StoreError`.
 */
export function boundedCall(timeoutMs: number): Call {
  return <T>(command: string, start: (cb: Callback<T>) => void): Promise<T> =>
    storeCall(
      MEMCACHED_STORE_NAME,
      command,
      timeoutMs,
      () => new Promise<T>((resolve, reject) => start((error, result) => (error ? reject(error) : resolve(result)))),
    );
}

/**
 * Replace the library's failure bookkeeping on a client we created. Its own
 * marks a server dead for `retry` ms after one error, and past that (or on a
 * second error meanwhile, e.g. concurrent requests when the server dies) it
 * "reconnects" by spawning the `ping` binary: on a machine without `ping`
 * that spawn emits an unhandled 'error' and crashes the process. Here an
 * issue only closes the faulty connection: the next request connects again,
 * failing fast while the server is down and succeeding once it is back.
 */
export function harden(client: MemcachedClient): void {
  client.connectionIssue = (error, socket) => {
    socket?.end?.();
    debug('memcached issue on %s: %s', socket?.serverAddress, errorMessage(error));
    client.emit('issue', { server: socket?.serverAddress, messages: [errorMessage(error)] });
  };
}
