/**
 * The store conformance suite lives in src/testing/ (shipped to store authors as
 * `koa-locked-session/testing`); the store tests keep importing it from here.
 */
export { storeConformance, type ConformanceContext, type ConformanceOptions } from '../../src/testing/store-conformance.js';
