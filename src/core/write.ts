import { ConflictError } from '../errors.js';
import type { WriteDescriptor } from '../contracts/write.js';
import type { Replica } from './replica.js';

export type { WriteDescriptor } from '../contracts/write.js';

/** The write of `value` over the record at version `read`: conditional on it, one version on (a delete's master tombstone: `tombstoneMs`, default none). */
export function overVersion(
  key: string,
  value: string | undefined,
  read: number,
  ttlMs: number,
  extra?: Pick<WriteDescriptor, 'tombstoneMs' | 'cookie'>,
): WriteDescriptor {
  return { key, value, version: read + 1, ttlMs, condition: read, tombstoneMs: extra?.tombstoneMs ?? 0, cookie: extra?.cookie };
}

/**
 * A write conditional on the version the writer read: a refusal means the
 * record changed under the lock (lost lease, a late write landed first), so
 * nothing is saved and the request fails with {@link ConflictError}.
 */
export async function writeIfVersion(store: Replica, write: WriteDescriptor): Promise<void> {
  if (!(await store.put(write))) throw new ConflictError();
}

/** `write` over a record `shift` versions on (a batch was written under the holder since its read). */
export function shifted(write: WriteDescriptor, shift: number): WriteDescriptor {
  return { ...write, version: write.version + shift, condition: (write.condition as number) + shift };
}
