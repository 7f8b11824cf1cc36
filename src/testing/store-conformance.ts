/**
 * One conformance suite for every `Store` (the contract in src/contracts/store.ts),
 * run by each of our store tests against a real server of its kind, and shipped
 * to store authors as `koa-locked-session/testing`.
 *
 * Keys are unique per run (a random tag), so the suite can run against a
 * shared server (REDIS_URL…) without clearing it. The only waits are past a
 * TTL: expiry is the behaviour under test, never a way to synchronise.
 *
 * This file declares the suite; the tests live by topic beside it:
 * store-conformance-basic.ts (get/set/destroy, exact round trips),
 * store-conformance-ttl.ts (expiry and touch) and
 * store-conformance-versioned.ts (conditional writes and tombstones).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isVersioned, type Store } from '../contracts/store.js';
import type { ConformanceContext } from './store-conformance-context.js';
import { basicConformance } from './store-conformance-basic.js';
import { ttlConformance } from './store-conformance-ttl.js';
import { versionedConformance } from './store-conformance-versioned.js';

export type { ConformanceContext } from './store-conformance-context.js';

/** Options of {@link storeConformance}. */
export interface ConformanceOptions {
  /** Store-specific tests, declared inside the suite's `describe`. */
  extraTests?: (ctx: ConformanceContext) => void;
  /** Skip the whole suite with this reason (e.g. no server). */
  skip?: string | false | undefined;
  /** The short TTL of tests that only wait for an expiry (ms). @default 50 */
  shortTtlMs?: number;
  /**
   * The TTL of tests that must act on a record inside its TTL (read it, touch it)
   * before waiting for the expiry: long enough for one call on a slow machine (ms).
   * @default 1000
   */
  readableTtlMs?: number;
  /**
   * How long before its TTL the store may lose a record (ms). Only for a store
   * with a known, documented gap (memcached's one-second clock). @default 0
   */
  earlyExpiryMs?: number;
  /**
   * Whether the store must pass the versioned-write tests (VersionedStore).
   * `false` only for stores that cannot write conditionally (adapted peer stores).
   * @default true
   */
  versioned?: boolean;
}

/**
 * Declare the conformance suite for `name`. `factory` creates the store once
 * (before the first test); `store.close()` runs after the last.
 */
export function storeConformance(name: string, factory: () => Store | Promise<Store>, options: ConformanceOptions = {}): void {
  const { extraTests, skip = false, shortTtlMs = 50, readableTtlMs = 1000, earlyExpiryMs = 0, versioned = true } = options;
  const tag = `t${randomUUID().slice(0, 8)}`;
  let current: Store | undefined;
  const ctx: ConformanceContext = {
    get store(): Store {
      if (!current) throw new Error(`${name}: the store factory has not run (or failed)`);
      return current;
    },
    key: (label) => `${tag}-${label}`,
  };

  describe(`${name} store conformance`, { skip }, () => {
    before(async () => {
      current = await factory();
    });
    after(async () => {
      await current?.close?.();
    });

    basicConformance(ctx);
    ttlConformance(ctx, { shortTtlMs, readableTtlMs, earlyExpiryMs });
    if (versioned) versionedConformance(ctx, shortTtlMs);
    else it('is not versioned (plain writes): the adapter must not pretend otherwise', () => assert.equal(isVersioned(ctx.store), false));

    extraTests?.(ctx);
  });
}
