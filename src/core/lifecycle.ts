import { SessionError } from '../errors.js';
import { Latch } from '../util/latch.js';

/**
 * Open → closing → closed, with a count of scopes in flight, so that closing
 * the session layer can wait for them and refuse new ones (503).
 */
export class Lifecycle {
  #inflight = 0;
  #closed = false;
  /** Opens when the last scope in flight ends after close(): every close() call awaits it (SIGTERM and SIGINT may both call it). */
  readonly #idle = new Latch();

  get closed(): boolean {
    return this.#closed;
  }

  get inflight(): number {
    return this.#inflight;
  }

  /** Refuse work once closing; the error tells the client to come back (503 + Retry-After). */
  check(): void {
    if (this.#closed) {
      throw new SessionError('koa-locked-session: the session layer is shutting down', {
        code: 'ERR_SESSION_CLOSED',
        status: 503,
        headers: { 'Retry-After': '1' },
      });
    }
  }

  enter(): void {
    this.check();
    this.#inflight++;
  }

  leave(): void {
    if (--this.#inflight === 0 && this.#closed) this.#idle.open(); // (closed: no scope enters any more, idle for good)
  }

  /** Stop taking work and wait until every scope in flight has ended. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#inflight > 0) await this.#idle.wait();
  }
}
