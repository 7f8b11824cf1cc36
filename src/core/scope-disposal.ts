import { debuglog } from 'node:util';

/**
 * The one way `lock()` differs from `withLock`: its scope ends when the data it
 * returned is disposed (`await using`), and JavaScript does not tell a disposer
 * that its block threw, so a disposed participant's changes are saved. This file
 * holds that difference — the disposer on the data, the `lock()` participants not
 * disposed yet, and the end of the request ending (and reporting) the ones an app
 * forgot — so that scope.ts reads as open / join / leave / commit. A scope makes
 * its {@link Undisposed} on its first `lock()` (a `withLock` scope never does).
 */

const debug = debuglog('koa-locked-session');

let warnedUndisposed = false;
/** Loud, once per process: a `lock()` left open is a bug in the app that would otherwise block the session. */
function warnUndisposed(): void {
  debug('a lock() scope was still open when its request ended');
  if (warnedUndisposed) return;
  warnedUndisposed = true;
  process.emitWarning(
    'koa-locked-session: a ctx.session.lock() scope was still open when its request ended; it was ended for you (saved after a response, discarded after an error). Use `await using s = await ctx.session.lock()` or withLock() so the scope ends with its block',
    { code: 'KOA_LOCKED_SESSION_UNDISPOSED_LOCK' },
  );
}

/** The `lock()` participants of one scope that have not been disposed yet (innermost last). */
export class Undisposed<Participant extends { readonly view: Record<string, unknown> }> {
  readonly #open: Participant[] = [];

  /**
   * A `lock()` participant: ended by the disposer on the data (`await using`
   * blocks end innermost first, so the disposer ends the innermost one), or by
   * {@link endWithRequest}. `leave` ends one participant without a throw.
   */
  disposable(
    me: Participant,
    data: Record<string, unknown>,
    leave: (participant: Participant) => Promise<void>,
  ): Record<string, unknown> & AsyncDisposable {
    this.#open.push(me);
    // The disposer lives on the data (made once per scope); a joined caller's view passes it through.
    if (!Object.hasOwn(data, Symbol.asyncDispose)) {
      const dispose = async (): Promise<void> => {
        const participant = this.#open.pop();
        if (participant) await leave(participant); // none left: ended with its request
      };
      Object.defineProperty(data, Symbol.asyncDispose, { value: dispose, enumerable: false, configurable: true });
    }
    return me.view as Record<string, unknown> & AsyncDisposable;
  }

  /**
   * At the end of the request: when every one of the scope's `participants`
   * is a `lock()` never disposed (no `await using`), they would hold the
   * session's lock for good. They are ended here by `leave` (the scope saves
   * when the request succeeded and discards when it failed), and reported once
   * per process. Otherwise `undefined`: no promise.
   */
  endWithRequest(participants: number, leave: (participant: Participant) => Promise<void>): Promise<void> | undefined {
    if (this.#open.length === 0 || participants !== this.#open.length) return undefined;
    warnUndisposed();
    return this.#endAll(leave);
  }

  async #endAll(leave: (participant: Participant) => Promise<void>): Promise<void> {
    for (let p = this.#open.pop(); p; p = this.#open.pop()) await leave(p);
  }
}
