import { ConflictError } from '../errors.js';
import type { RequestWriteOptions } from '../contracts/store.js';
import type { Replica } from './replica.js';

/**
 * A write conditional on the version the writer read: a refusal means the
 * record changed under the lock (lost lease, a late write landed first), so
 * nothing is saved and the request fails with {@link ConflictError}.
 * `value` undefined deletes: `ttl` is then the mirrors' tombstone and
 * `tombstoneMs` how long the master keeps one; `options` go to a
 * request-bound master (the cookie kind).
 */
export async function writeIfVersion(
  store: Replica,
  key: string,
  value: string | undefined,
  version: number,
  ttl: number,
  tombstoneMs = 0,
  options?: RequestWriteOptions,
): Promise<void> {
  const applied =
    value === undefined
      ? await store.write(key, undefined, version + 1, ttl, version, tombstoneMs)
      : await store.write(key, value, version + 1, ttl, version, ttl, options);
  if (!applied) throw new ConflictError();
}
