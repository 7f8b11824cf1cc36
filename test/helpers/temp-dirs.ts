/** Temp dirs for servers started by tests (created fresh, removed by their owner). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temp dir (`$TMPDIR/kls-<prefix>-XXXXXX`). */
export function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `kls-${prefix}-`));
}

/** Remove a dir we created (recursive, never throws when it is already gone). */
export function removeDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}
