/**
 * Does session() of the code under test accept a variant's extra options?
 * Run once per variant by the harness before planning, so a variant whose
 * option does not exist yet (session() rejects unknown options) is skipped
 * with the reason instead of failing every measurement. Imported lazily:
 * the harness loads our `src/` only when a selected variant needs the check.
 */
import { MemoryStore, session } from '../../src/index.js';

type SessionOptions = Parameters<typeof session>[0];

/** `undefined` when session() takes the options, else the first line of what it threw. */
export async function rejectedOptions(options: Readonly<Record<string, unknown>>): Promise<string | undefined> {
  const master = new MemoryStore();
  try {
    const middleware = session({ ...options, master } as SessionOptions);
    await middleware.close();
    return undefined;
  } catch (error) {
    return (error instanceof Error ? error.message : String(error)).split('\n')[0];
  } finally {
    await master.close();
  }
}
