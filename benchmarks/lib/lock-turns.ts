/**
 * Turns of the lock: how many times a process took the session's lease from
 * the locker (issue 23 item 3: "measure turns per second, not just req/s").
 * With lease handoff and group commit one turn serves several requests, so
 * requests per turn and turns per second say where a hot session's time goes
 * (fewer, longer turns; or wake-ups between them).
 *
 * The library publishes no such count: `CHANNELS.lock` fires once per scope
 * (a scope handed the lease in the process counts as an acquisition there),
 * and its message does not say whether the locker was asked. So the bench app
 * counts the calls the middleware makes to `locker.acquire` that resolve,
 * by shadowing the method on that very locker instance: same object, so the
 * middleware's per-locker queues and the locker's fused fast path (looked up
 * by the store object) are untouched, and the library's code is not changed.
 * It costs one extra promise per turn, and is switched on only where lock
 * waits are recorded (hot-session scenarios).
 *
 * This file never imports the library.
 */

/** The part of a locker this counter touches. */
interface Acquiring {
  acquire(key: string, options: never): Promise<unknown>;
}

/** Count the leases `locker` hands out from now on; `onTurn` runs once per resolved acquire. */
export function countTurns(locker: Acquiring, onTurn: () => void): void {
  const acquire = locker.acquire;
  Object.defineProperty(locker, 'acquire', {
    configurable: true,
    writable: true,
    value: function countedAcquire(this: Acquiring, key: string, options: never): Promise<unknown> {
      return acquire.call(this, key, options).then((lease) => {
        onTurn();
        return lease;
      });
    },
  });
}
