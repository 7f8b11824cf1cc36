/**
 * The skip policy for tests that need a real server: a missing server skips
 * with a loud reason locally, and fails the run under `CI` (a CI run must never
 * go green by skipping).
 */

const skips = new Map<string, string>();

/**
 * A server cannot be had. Under `CI`: throw (the run must fail). Otherwise print
 * a loud reason on stderr, remember it for {@link skipReason}, return undefined.
 */
export function missingServer(kind: string, reason: string): undefined {
  if (process.env.CI) {
    throw new Error(`${kind} tests cannot run under CI: ${reason}`);
  }
  skips.set(kind, reason);
  process.stderr.write(`\n${'*'.repeat(78)}\n*** SKIPPING ${kind} tests: ${reason}\n${'*'.repeat(78)}\n\n`);
  return undefined;
}

/** The reason given to {@link missingServer} for `kind` (for `{ skip: … }`). */
export function skipReason(kind: string): string {
  return skips.get(kind) ?? `${kind} server unavailable`;
}
