/** Finding server binaries: on `PATH`, or where `go install` puts them (FerretDB). */
import { execFileSync } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

let goBin: string | null | undefined;
/** `$(go env GOBIN)` or `$(go env GOPATH)/bin`, where `go install` puts binaries; `undefined` without Go. */
export function goBinDir(): string | undefined {
  if (goBin === undefined) {
    try {
      const out = execFileSync('go', ['env', 'GOBIN', 'GOPATH'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const [gobin = '', gopath = ''] = out.split('\n').map((s) => s.trim());
      const first = gopath.split(delimiter)[0] ?? '';
      goBin = gobin || (first ? join(first, 'bin') : null);
    } catch {
      goBin = null;
    }
  }
  return goBin ?? undefined;
}

/** Absolute path of an executable found on `PATH` or in `extraDirs`, else `undefined`. */
export async function findBinary(name: string, extraDirs: readonly string[] = []): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...extraDirs].filter(Boolean);
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
