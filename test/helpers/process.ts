/**
 * Supervising the server processes tests start: spawn with output to a log
 * file, stop by PID (SIGTERM, then SIGKILL), and kill whatever is still running
 * when this process exits or is signalled, so a crashed run leaves nothing behind.
 * Also the bounded readiness poll used by every starter.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** Processes started here that are still running: killed when this process exits or is signalled. */
const live = new Set<ChildProcess>();
function killAll(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}
process.once('exit', killAll);
// 'exit' does not fire when a signal ends the process (the test runner's
// timeout, Ctrl-C, `timeout`): kill our servers, then let the signal do what it
// would have done (unless someone else handles it).
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

/** A child process we started, with its output going to a log file. */
export interface ManagedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves when the process has exited (for any reason). */
  readonly exited: Promise<void>;
  /** True once the process has exited. */
  readonly hasExited: () => boolean;
}

/** Spawn `command args` in `cwd`, stdout+stderr appended to `logFile`. Killed on our exit. */
export function startProcess(command: string, args: readonly string[], options: { cwd: string; logFile: string }): Promise<ManagedProcess> {
  return new Promise((resolve, reject) => {
    const log = createWriteStream(options.logFile, { flags: 'a' });
    log.once('open', () => {
      const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', log, log] });
      let done = false;
      const exited = new Promise<void>((res) =>
        child.once('exit', () => {
          done = true;
          live.delete(child);
          log.end();
          res();
        }),
      );
      child.once('error', (error) => {
        live.delete(child);
        log.end();
        reject(error);
      });
      child.once('spawn', () => {
        live.add(child);
        resolve({ child, pid: child.pid!, logFile: options.logFile, exited, hasExited: () => done });
      });
    });
    log.once('error', reject);
  });
}

/** `signal` (SIGTERM) to our process, SIGKILL after `graceMs`, and wait until it has exited. */
export async function stopProcess(proc: ManagedProcess, graceMs = 5000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.hasExited()) return;
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

/** The last `chars` characters of a log file (for error messages). */
export async function logTail(file: string, chars = 2000): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).slice(-chars);
  } catch {
    return '';
  }
}

/**
 * Poll `check` until it returns true (a server's readiness has no event we can
 * wait on). Bounded by `timeoutMs`; fails at once if `proc` exits meanwhile.
 */
export async function waitUntil(
  check: () => Promise<boolean>,
  options: { what: string; timeoutMs?: number; intervalMs?: number; proc?: ManagedProcess },
): Promise<void> {
  const { what, timeoutMs = 20_000, intervalMs = 25, proc } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc?.hasExited()) {
      throw new Error(`${what} exited before it was ready:\n${await logTail(proc.logFile)}`);
    }
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(`${what} was not ready after ${timeoutMs} ms${proc ? `:\n${await logTail(proc.logFile)}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
