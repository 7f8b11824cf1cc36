/**
 * What a PostgresStore registers for PostgresLocker in the one fast-path
 * registry (src/contracts/fast-path.ts, which says why a registry): the locker
 * then reads and writes the store's rows inside its lock's transaction.
 */
import { fastPathOf, registerFastPath } from '../contracts/fast-path.js';
import type { PgPoolLike } from './sql.js';

/** What a PostgresStore tells PostgresLocker about itself. */
export interface PostgresFastPath {
  /** The pool the store queries: the fast path applies to a locker on the same pool (so the same database). */
  readonly pool: PgPoolLike;
  /** The quoted table name. */
  readonly table: string;
  /** The store's operation timeout (ms): it bounds the fused acquire-and-read when the middleware gives none. */
  readonly timeoutMs: number;
  /** Resolves once the table exists (or `createTable: false`). */
  ready(): Promise<void>;
}

/** Called by PostgresStore's constructor: `store` may be fused with a PostgresLocker on `info.pool`. */
export function registerPostgresFastPath(store: object, info: PostgresFastPath): void {
  registerFastPath(store, 'postgres', info);
}

/** The fast-path description of `store` when it is a PostgresStore (or a subclass), else `undefined`. */
export function postgresFastPathOf(store: unknown): PostgresFastPath | undefined {
  return fastPathOf<PostgresFastPath>(store, 'postgres');
}
