/**
 * `koa-locked-session/testing`: the conformance suites our own stores and
 * lockers pass, for authors of other ones. Each call declares a `node:test`
 * suite, so a test file is all it takes:
 *
 * ```ts
 * // my-store.test.ts, run with `node --test`
 * import { storeConformance } from 'koa-locked-session/testing';
 * import { MyStore } from './my-store.js';
 *
 * storeConformance('MyStore', () => new MyStore({ url: process.env.MY_URL }));
 * ```
 *
 * Kept out of the main entry: it loads `node:test` and `node:assert`, which an
 * app never needs.
 *
 * @module
 */
export { storeConformance, type ConformanceContext, type ConformanceOptions } from './store-conformance.js';
export { lockerConformance, type LockerConformanceOptions } from './locker-conformance.js';
