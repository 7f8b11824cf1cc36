/**
 * What the store conformance suite's topic files share: the context a test gets
 * (the store, a run-unique key) and the TTL helpers. Kept apart from
 * store-conformance.ts so each topic file can import it without a circle.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Store } from '../contracts/store.js';

/** What store-specific tests get from the suite. */
export interface ConformanceContext {
  /** The store under test (created by the factory before the first test). */
  readonly store: Store;
  /** A key unique to this run: `<tag>-<label>` (label from `[A-Za-z0-9_:.-]`). */
  key(label: string): string;
}

/** A TTL long enough never to expire during a test (ms). */
export const LONG_TTL = 60_000;

/** Wait until the wall clock has passed `at` (ms), plus a margin for the store's clock granularity. */
export async function pastTtl(at: number): Promise<void> {
  const wait = at + 25 - Date.now();
  if (wait > 0) await sleep(wait);
}
