/**
 * Bounded waits without a timer per call. Every store call on the hot path is
 * bounded (a black-holed server must turn into a 503, not a hang), but a
 * `setTimeout` or `AbortSignal.timeout` per call is a measurable share of the
 * CPU of a request. Instead, pending calls sit in one set that a single
 * unref'd timer sweeps every {@link RESOLUTION_MS}: a call fails between `ms`
 * and `ms + RESOLUTION_MS` after it started, which is all a multi-second
 * safety bound needs.
 */
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
  return new Promise<T>((resolve, reject) => {
    const entry: Pending = { at: Date.now() + ms, fail: () => reject(onTimeout()) };
    pending.add(entry);
    sweeper ??= setInterval(sweep, RESOLUTION_MS).unref();
    let promise: Promise<T>;
    try {
      promise = call();
    } catch (error) {
      pending.delete(entry);
      reject(error);
      return;
    }
    promise.then(
      (value) => {
        pending.delete(entry);
        resolve(value);
      },
      (error: unknown) => {
        pending.delete(entry);
        reject(error);
      },
    );
  });
}
