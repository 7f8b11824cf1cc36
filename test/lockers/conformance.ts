/**
 * The locker conformance suite lives in src/testing/ (shipped to locker authors
 * as `koa-locked-session/testing`); the locker tests keep importing it from here.
 */
export { lockerConformance, type LockerConformanceOptions } from '../../src/testing/locker-conformance.js';
