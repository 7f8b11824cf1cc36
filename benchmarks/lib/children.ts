/**
 * The harness's children: the app (one per measurement) and the load
 * generator (one per run), each pinned to its own core with `taskset` when the
 * machine allows it. Only processes started here are ever signalled, by PID.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import type {
  AppCommand,
  AppMessage,
  AppStats,
  LoadCommand,
  LoadJob,
  LoadMessage,
  LoadResult,
  ReadResult,
  SessionsResult,
} from './types.js';

/** Which cores each party gets. */
export interface Pinning {
  readonly enabled: boolean;
  /** taskset core lists. */
  readonly app: string;
  readonly loadgen: string;
  readonly servers: string;
  /** For the report. */
  readonly note: string;
}

/** Cores this process may run on (taskset), or undefined without taskset. */
export function allowedCores(): number[] | undefined {
  try {
    const out = execFileSync('taskset', ['-pc', String(process.pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const list = out.split(':').pop()!.trim();
    const cores: number[] = [];
    for (const part of list.split(',')) {
      const [a, b] = part.split('-').map(Number);
      if (a === undefined || Number.isNaN(a)) continue;
      for (let c = a; c <= (b ?? a); c++) cores.push(c);
    }
    return cores;
  } catch {
    return undefined;
  }
}

/** App on one core, load generator (and harness, and servers on a 2-core box) on another. */
export function choosePinning(wanted: boolean): Pinning {
  const off = (note: string): Pinning => ({ enabled: false, app: '', loadgen: '', servers: '', note });
  if (!wanted) return off('not pinned (--no-pin)');
  const cores = allowedCores();
  if (!cores) return off('not pinned: taskset not available');
  if (cores.length < 2) return off(`not pinned: only ${cores.length} core allowed`);
  const [loadgen, app, ...rest] = cores as [number, number, ...number[]];
  const servers = rest.length ? rest.join(',') : String(loadgen);
  return {
    enabled: true,
    app: String(app),
    loadgen: String(loadgen),
    servers,
    note:
      `app on core ${app}; load generator${rest.length ? '' : ', servers'} and harness on core ${loadgen}` +
      (rest.length ? `; servers on cores ${servers}` : '') +
      ` (${cpus().length} cores)`,
  };
}

/** Pin a running process (all its threads) we started, e.g. a server. */
export function pinPid(pid: number, cores: string): void {
  try {
    execFileSync('taskset', ['-a', '-pc', cores, String(pid)], { stdio: 'ignore' });
  } catch {
    // best effort: the report says where pinning was asked for
  }
}

function spawnNode(nodeArgv: string[], args: string[], cores: string, env: NodeJS.ProcessEnv): ChildProcess {
  const argv = [...nodeArgv, ...args];
  return cores
    ? spawn('taskset', ['-c', cores, process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env })
    : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env });
}

/** Keep the last few KB a child printed, for error messages. */
function tail(child: ChildProcess): () => string {
  let text = '';
  const keep = (chunk: Buffer): void => {
    text = (text + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => text.trim();
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));
}

async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}

/** An app child serving one variant. */
export class AppChild {
  readonly #child: ChildProcess;
  readonly #output: () => string;
  #nextId = 1;
  readonly #waiting = new Map<number, (stats: AppStats) => void>();
  port = 0;
  /** PIDs of the processes serving requests (the cluster workers, or the app itself). */
  pids: number[] = [];

  private constructor(child: ChildProcess) {
    this.#child = child;
    this.#output = tail(child);
    child.on('message', (message: AppMessage) => {
      if (message.type === 'stats') {
        this.#waiting.get(message.id)?.(message.stats);
        this.#waiting.delete(message.id);
      }
    });
  }

  static async start(options: {
    nodeArgv: string[];
    variant: string;
    processes: number;
    cores: string;
    env: NodeJS.ProcessEnv;
    timeoutMs?: number;
  }): Promise<AppChild> {
    const args = [options.variant, '--processes', String(options.processes)];
    const app = new AppChild(spawnNode(options.nodeArgv, args, options.cores, options.env));
    const child = app.#child;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`app ${options.variant} not ready after ${options.timeoutMs ?? 60_000} ms`)),
          options.timeoutMs ?? 60_000,
        );
        child.on('message', (message: AppMessage) => {
          if (message.type === 'ready') {
            clearTimeout(timer);
            app.port = message.port;
            app.pids = message.pids.length > 1 ? message.pids.slice(1) : message.pids;
            resolve();
          } else if (message.type === 'fatal') {
            clearTimeout(timer);
            reject(new Error(firstLine(message.message)));
          }
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(
            new Error(
              `app ${options.variant} exited (${signal ?? code}) before it was ready: ${app.#output().split('\n').slice(-3).join(' | ')}`,
            ),
          );
        });
        child.once('error', reject);
      });
    } catch (error) {
      await terminate(child, 1000);
      throw error;
    }
    return app;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  #send(message: AppCommand | { type: 'profile-start' } | { type: 'profile-stop'; file: string }): void {
    if (this.#child.connected) this.#child.send(message);
  }

  /** The app's counters; `resetLockWaits` starts a new lock-wait window first (the reply confirms it). */
  stats(options: { resetLockWaits?: boolean; timeoutMs?: number } = {}): Promise<AppStats> {
    const { resetLockWaits = false, timeoutMs = 5000 } = options;
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`app did not answer a stats request in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(id, (stats) => {
        clearTimeout(timer);
        resolve(stats);
      });
      this.#send({ type: 'stats', id, ...(resetLockWaits ? { resetLockWaits } : {}) });
    });
  }

  /** Wait (bounded) until no request is in flight and the counters stop moving. */
  async quiesce(maxMs = 5000): Promise<AppStats> {
    const deadline = Date.now() + maxMs;
    let last = await this.stats();
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 30));
      const now = await this.stats();
      if ((now.inflight === 0 && now.requests === last.requests) || Date.now() > deadline) return now;
      last = now;
    }
  }

  profileStart(): void {
    this.#send({ type: 'profile-start' });
  }

  profileStop(file: string): void {
    this.#send({ type: 'profile-stop', file });
  }

  async stop(): Promise<void> {
    this.#send({ type: 'stop' });
    await terminate(this.#child, 3000);
  }
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? text).replace(/^Error: /, '');
}

/** The load generator child: one per run, jobs over IPC. */
export class LoadGenerator {
  readonly #child: ChildProcess;
  readonly #output: () => string;
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();

  private constructor(child: ChildProcess) {
    this.#child = child;
    this.#output = tail(child);
    child.on('message', (message: LoadMessage) => {
      if (message.type === 'done' || message.type === 'failed') {
        const waiter = this.#waiting.get(message.id);
        this.#waiting.delete(message.id);
        if (message.type === 'done') waiter?.resolve(message.result);
        else waiter?.reject(new Error(message.message));
      }
    });
    child.on('exit', (code, signal) => {
      for (const waiter of this.#waiting.values()) waiter.reject(new Error(`load generator exited (${signal ?? code}): ${this.#output()}`));
      this.#waiting.clear();
    });
  }

  /** wrk is installed (else every run uses autocannon). */
  wrk = false;

  static async start(nodeArgv: string[], cores: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadGenerator> {
    const gen = new LoadGenerator(spawnNode(nodeArgv, [], cores, env));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('load generator not ready after 30 s')), 30_000);
      gen.#child.on('message', (message: LoadMessage) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          gen.wrk = message.wrk;
          resolve();
        }
      });
      gen.#child.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(`load generator exited before it was ready: ${gen.#output()}`));
      });
    });
    return gen;
  }

  run(job: Extract<LoadJob, { kind: 'load' }>): Promise<LoadResult>;
  run(job: Extract<LoadJob, { kind: 'sessions' }>): Promise<SessionsResult>;
  run(job: Extract<LoadJob, { kind: 'read' }>): Promise<ReadResult>;
  run(job: LoadJob): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#child.send({ type: 'job', id, job } satisfies LoadCommand);
    });
  }

  async stop(): Promise<void> {
    if (this.#child.connected) this.#child.send({ type: 'stop' } satisfies LoadCommand);
    await terminate(this.#child, 2000);
  }
}
