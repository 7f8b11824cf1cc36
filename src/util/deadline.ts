/**
 * Bounded waits without a timer per call. Every store call on the hot path is
 * bounded (a black-holed server must turn into a 503, not a hang), but a
 * `setTimeout` or `AbortSignal.timeout` per call is a measurable share of the
 * CPU of a request. Instead, pending calls sit in one set that a single
 * unref'd timer sweeps every {@link RESOLUTION_MS}: a call fails between `ms`
 * and `ms + RESOLUTION_MS` after it started, which is all a multi-second
 * safety bound needs.
 */
import { StoreError } from '../errors.js';
import { errorMessage } from './format.js';

const RESOLUTION_MS = 25;

interface Pending {
  readonly at: number;
  readonly fail: () => void;
}

const pending = new Set<Pending>();
let sweeper: NodeJS.Timeout | undefined;

function sweep(): void {
  const now = Date.now();
  for (const entry of pending) {
    if (entry.at <= now) {
      pending.delete(entry);
      entry.fail();
    }
  }
  if (pending.size === 0 && sweeper) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

/**
 * `call()`'s result, or a rejection with `onTimeout()` once `ms` have passed
 * without an answer. A call that throws synchronously rejects at once.
 */
export function withDeadline<T>(call: () => Promise<T>, ms: number, onTimeout: () => unknown): Promise<T> {
  return bounded(call, ms, onTimeout, identity);
}

/** What {@link storeCall} may do besides the deadline. */
export interface StoreCallHooks {
  /** Called once when the deadline passes (e.g. abort the driver's operation). */
  onTimeout?: (() => void) | undefined;
  /** A store-specific translation of a driver error (e.g. one whose message quotes a key); `undefined`: the default. */
  mapError?: ((error: unknown) => StoreError | undefined) | undefined;
}

/**
 * The one store-call wrapper every store uses: `call()` bounded by `ms`
 * (through the shared sweeper above, no timer per call), every failure a
 * `StoreError` naming the store and the command: `[redis] GET failed: no
 * reply within 2000 ms`, `[mongo] FIND failed: <driver message>`. A
 * `StoreError` thrown by `call()` itself passes through unchanged.
 */
export function storeCall<T>(store: string, command: string, ms: number, call: () => Promise<T>, hooks?: StoreCallHooks): Promise<T> {
  return bounded(
    call,
    ms,
    () => {
      hooks?.onTimeout?.();
      return new StoreError(store, `${command} failed: no reply within ${ms} ms`);
    },
    (error) => {
      if (error instanceof StoreError) return error;
      return hooks?.mapError?.(error) ?? new StoreError(store, `${command} failed: ${errorMessage(error)}`, { cause: error });
    },
  );
}

function identity(error: unknown): unknown {
  return error;
}

function bounded<T>(call: () => Promise<T>, ms: number, onTimeout: () => unknown, mapError: (error: unknown) => unknown): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const entry: Pending = { at: Date.now() + ms, fail: () => reject(onTimeout()) };
    pending.add(entry);
    sweeper ??= setInterval(sweep, RESOLUTION_MS).unref();
    let promise: Promise<T>;
    try {
      promise = call();
    } catch (error) {
      pending.delete(entry);
      reject(mapError(error));
      return;
    }
    promise.then(
      (value) => {
        pending.delete(entry);
        resolve(value);
      },
      (error: unknown) => {
        pending.delete(entry);
        reject(mapError(error));
      },
    );
  });
}
