/**
 * Drive one load run with `wrk` (a C load generator, ~10× lighter per request
 * than autocannon, which saturates its own core near 10k req/s and so capped
 * bare Koa and squeezed every ratio toward 1). Runs inside the load-generator
 * child, so wrk inherits its core pinning.
 *
 * Cookies go through `wrk.lua`: none (fresh visitors), one (hot session,
 * untouched route) or a pool taken round-robin (many users). wrk cannot keep a
 * cookie jar (its Lua sees one `Set-Cookie` of several), so a run that must
 * follow cookies (client-side sessions on one hot session) stays on autocannon:
 * see `lib/loadgen.ts`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadJob, LoadResult } from './types.js';

/**
 * CPU time (µs) of this process's waited-for children so far, from
 * /proc/self/stat (cutime + cstime, in clock ticks of 10 ms); undefined off Linux.
 * wrk is our only child, so the difference around a run is wrk's own CPU.
 */
function childrenCpuUs(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[13]) + Number(fields[14]); // cutime, cstime (fields 16, 17)
    return Number.isFinite(ticks) ? ticks * 10_000 : undefined;
  } catch {
    return undefined;
  }
}

/** `wrk -v` works: wrk is installed. */
export function wrkAvailable(): boolean {
  try {
    // `wrk -v` prints its version and exits 1; a missing binary throws ENOENT.
    execFileSync('wrk', ['-v'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

interface WrkSummary {
  durationUs: number;
  requests: number;
  bytes: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
}

/** The JSON line `wrk.lua`'s done() prints. */
export function parseWrkOutput(stdout: string): WrkSummary {
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_WRK_JSON '));
  if (!line) throw new Error(`wrk printed no summary:\n${stdout.slice(-2000)}`);
  return JSON.parse(line.slice('BENCH_WRK_JSON '.length)) as WrkSummary;
}

export async function wrkLoad(job: Extract<LoadJob, { kind: 'load' }>, script: string): Promise<LoadResult> {
  const mode = job.cookies;
  const cookies = mode.kind === 'pool' ? mode.cookies : mode.kind === 'jar' ? [mode.cookie] : [];
  const dir = await mkdtemp(join(tmpdir(), 'kls-wrk-'));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, BENCH_WRK_PATH: job.path };
    if (cookies.length) {
      const file = join(dir, 'cookies.txt');
      await writeFile(file, `${cookies.join('\n')}\n`);
      env.BENCH_WRK_COOKIES = file;
    }
    // wrk takes whole seconds only; the real duration comes back in the summary.
    const seconds = Math.max(1, Math.round(job.durationS));
    const args = ['-t', '1', '-c', String(Math.max(1, job.connections)), '-d', `${seconds}s`, '--timeout', '10s', '-s', script, job.url];
    const cpuBefore = childrenCpuUs();
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile('wrk', args, { env, maxBuffer: 1 << 20 }, (error, out, err) => {
        if (error) reject(new Error(`wrk failed: ${error.message}\n${err}`));
        else resolve(out);
      });
    });
    const s = parseWrkOutput(stdout);
    const cpuAfter = childrenCpuUs();
    const durationS = s.durationUs / 1e6;
    // wrk counts statuses > 399 as errors; our routes never answer 1xx/3xx, so the rest are 2xx.
    const ok = s.requests - s.status;
    return {
      rps: durationS > 0 ? ok / durationS : 0,
      p50: Math.round(s.p50Us / 10) / 100,
      p99: Math.round(s.p99Us / 10) / 100,
      responses: s.requests,
      ok2xx: ok,
      non2xx: s.status,
      errors: s.connect + s.read + s.write,
      timeouts: s.timeout,
      durationS,
      generator: 'wrk',
      ...(cpuBefore !== undefined && cpuAfter !== undefined && s.requests > 0
        ? { generatorCpuUs: (cpuAfter - cpuBefore) / s.requests }
        : {}),
      ...(mode.kind === 'jar' ? { cookie: mode.cookie } : {}),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
