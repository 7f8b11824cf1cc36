/**
 * The options of session(): the public face of src/options/ (types.ts: what a
 * user writes; defaults.ts: DEFAULTS; resolve.ts: the checks). Import from here.
 */
export type { CookieOptions, SessionOptions, AuthOptions, ResolvedCookieOptions, ResolvedOptions } from './options/types.js';
export { DEFAULTS } from './options/defaults.js';
export { resolveOptions } from './options/resolve.js';
