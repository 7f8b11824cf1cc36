/**
 * A one-time event to wait for: {@link Latch.wait} settles once
 * {@link Latch.open} was called (at once when it was). Its promise is made only
 * when someone waits, which on the hot paths that use it is rare: a latch
 * nobody waits for costs one small object.
 */
export class Latch {
  #opened = false;
  #waiting: { promise: Promise<void>; resolve: () => void } | undefined;

  /** Settles once the latch is open. */
  wait(): Promise<void> {
    if (this.#opened) return opened;
    if (!this.#waiting) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#waiting = { promise, resolve };
    }
    return this.#waiting.promise;
  }

  /** Open the latch: every wait settles (and every later one at once). */
  open(): void {
    this.#opened = true;
    this.#waiting?.resolve();
  }
}

const opened: Promise<void> = Promise.resolve();
