/**
 * Real servers for tests and benchmarks: find one (`REDIS_URL`, `MEMCACHED_URL`,
 * `MONGO_URL`) or start one on a free loopback port in a fresh temp dir.
 *
 * - A server we start is stopped by its PID only (`stop()`), and killed when this
 *   process exits, so a crashed test run leaves nothing behind.
 * - `restart()` (servers we started only) stops the PID and starts the same
 *   binary again on the same port and dir: the "server comes back" case;
 *   `halt()` / `resume()` are its two halves, for "server down" tests.
 * - A missing binary: under `CI` we throw (a CI run must never go green by
 *   skipping); otherwise we print a loud reason on stderr and return
 *   `undefined`, and the test uses `{ skip: skipReason(kind) }`.
 *
 * The small process/port/dir utilities are exported for other starters
 * (e.g. a Redis Cluster starter).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { access, constants, mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';

/** The kinds of server this module can find or start. */
export type ServerKind = 'redis' | 'memcached' | 'mongo';

/** A server usable by tests: either borrowed from an env var or started by us. */
export interface TestServer {
  /** Connection URL: `redis://127.0.0.1:P`, `127.0.0.1:P` (memcached), `mongodb://127.0.0.1:P/`. */
  readonly url: string;
  /** True when the server came from an env var: we never stop or restart it. */
  readonly external: boolean;
  /** Stop the server we started (a no-op for an external one). Idempotent. */
  stop(): Promise<void>;
  /** Stop our PID and start the binary again on the same port and dir. Absent on external servers. */
  restart?: () => Promise<void>;
}

/** A server process we started ourselves. */
export interface StartedServer extends TestServer {
  readonly external: false;
  readonly port: number;
  /** The temp dir the server runs in (removed by `stop()`). */
  readonly dir: string;
  /** PID of the current process (changes on `restart()`); 0 while halted. */
  readonly pid: number;
  /** Stop our PID and start the same binary again on the same port and dir. */
  restart(): Promise<void>;
  /** Stop our PID but keep the port and dir: the server is down until {@link resume}. */
  halt(): Promise<void>;
  /** Start the binary again on the same port and dir after {@link halt}. */
  resume(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Small reusable utilities
// ---------------------------------------------------------------------------

/** A free loopback TCP port: listen on port 0, read the port, close. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not read a free port'))));
    });
  });
}

/** A fresh temp dir (`$TMPDIR/kls-<prefix>-XXXXXX`). */
export function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `kls-${prefix}-`));
}

/** Remove a dir we created (recursive, never throws when it is already gone). */
export function removeDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

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
      const exited = new Promise<void>((res) => child.once('exit', () => {
        done = true;
        live.delete(child);
        log.end();
        res();
      }));
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

/**
 * Send `request` to 127.0.0.1:`port` and resolve true when the reply starts with
 * `expected` (e.g. `PING\r\n` → `+PONG`). False on any error or after `timeoutMs`.
 */
export function probeTcp(port: number, request: string, expected: string, timeoutMs = 1000, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    let reply = '';
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write(request));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.length >= expected.length) finish(reply.startsWith(expected));
    });
    socket.once('end', () => finish(reply.startsWith(expected)));
  });
}

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

/** How to run one kind of server binary. */
export interface ServerSpec {
  /** Name for messages, e.g. `redis-server`. */
  readonly name: string;
  /** Absolute path of the binary. */
  readonly binary: string;
  /** Command-line arguments for a given port and dir. */
  args(port: number, dir: string): string[];
  /** True once the server on `port` answers. */
  ready(port: number): Promise<boolean>;
  /** Client URL for `port`. */
  url(port: number): string;
  /** Bound on startup (ms). @default 20_000 */
  readonly startTimeoutMs?: number;
  /** Signal that stops the server. @default 'SIGTERM' */
  readonly stopSignal?: NodeJS.Signals;
}

/**
 * Start `spec` on a free loopback port in a fresh temp dir and wait until it
 * answers. A port taken between our probe and the server's bind is retried on a
 * new port (the first start) or the same port (a restart).
 */
export async function startServer(spec: ServerSpec): Promise<StartedServer> {
  const dir = await makeTempDir(spec.name.replace(/[^a-z0-9]+/gi, '-'));
  const logFile = join(dir, 'server.log');
  let port = 0;
  let proc: ManagedProcess | undefined;
  let stopped = false;

  const launch = async (fixedPort: number | undefined): Promise<void> => {
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const candidate = fixedPort ?? await freePort();
      const started = await startProcess(spec.binary, spec.args(candidate, dir), { cwd: dir, logFile });
      try {
        await waitUntil(() => spec.ready(candidate), {
          what: `${spec.name} on 127.0.0.1:${candidate}`,
          timeoutMs: spec.startTimeoutMs ?? 20_000,
          proc: started,
        });
        port = candidate;
        proc = started;
        return;
      } catch (error) {
        lastError = error;
        await stopProcess(started);
        // A restart on a fixed port may race the old socket's release: retry shortly.
        if (fixedPort !== undefined) await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    throw lastError;
  };

  try {
    await launch(undefined);
  } catch (error) {
    await removeDir(dir);
    throw error;
  }

  const server: StartedServer = {
    external: false,
    get url() {
      return spec.url(port);
    },
    get port() {
      return port;
    },
    dir,
    get pid() {
      return proc?.pid ?? 0;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (proc) await stopProcess(proc, 5000, spec.stopSignal);
      await removeDir(dir);
    },
    async halt() {
      if (proc) await stopProcess(proc, 5000, spec.stopSignal);
      proc = undefined;
    },
    async resume() {
      if (stopped) throw new Error(`${spec.name} was stopped; cannot start it again`);
      if (proc && !proc.hasExited()) return;
      await launch(port);
    },
    async restart() {
      await server.halt();
      await server.resume();
    },
  };
  return server;
}

// ---------------------------------------------------------------------------
// Redis, Memcached, MongoDB (FerretDB)
// ---------------------------------------------------------------------------

/** Options shared by the three starters. */
export interface ServerOptions {
  /** Use the env var (`REDIS_URL`…) when set. @default true */
  useEnv?: boolean;
  /** Extra command-line arguments for a server we start. */
  extraArgs?: readonly string[];
}

function fromEnv(variable: string, options: ServerOptions): TestServer | undefined {
  const url = options.useEnv === false ? undefined : process.env[variable];
  if (!url) return undefined;
  return { url, external: true, stop: async () => {} };
}

/** Redis: `REDIS_URL`, or `redis-server` on a free port (no persistence). */
export async function redisServer(options: ServerOptions = {}): Promise<TestServer | undefined> {
  const env = fromEnv('REDIS_URL', options);
  if (env) return env;
  const binary = await findBinary('redis-server');
  if (!binary) {
    return missingServer('redis', 'redis-server not found on PATH: install it (apt-get install -y redis-server redis-tools) or set REDIS_URL');
  }
  return startServer({
    name: 'redis-server',
    binary,
    args: (port, dir) => ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', ...(options.extraArgs ?? [])],
    ready: (port) => probeTcp(port, 'PING\r\n', '+PONG'),
    url: (port) => `redis://127.0.0.1:${port}`,
  });
}

/** Memcached: `MEMCACHED_URL` (`host:port`), or `memcached` on a free port. */
export async function memcachedServer(options: ServerOptions = {}): Promise<TestServer | undefined> {
  const env = fromEnv('MEMCACHED_URL', options);
  if (env) return env;
  const binary = await findBinary('memcached');
  if (!binary) {
    return missingServer('memcached', 'memcached not found on PATH: install it (apt-get install -y memcached) or set MEMCACHED_URL');
  }
  return startServer({
    name: 'memcached',
    binary,
    // -U 0: no UDP; -u: memcached refuses to run as root without naming a user.
    args: (port) => ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', '64', '-u', userInfo().username, ...(options.extraArgs ?? [])],
    ready: (port) => probeTcp(port, 'version\r\n', 'VERSION'),
    url: (port) => `127.0.0.1:${port}`,
    // A cache without persistence: SIGTERM only adds a ~1 s graceful shutdown.
    stopSignal: 'SIGKILL',
  });
}

/** MongoDB wire protocol: `MONGO_URL`, or FerretDB 1.x (SQLite backend) on a free port. */
export async function mongoServer(options: ServerOptions = {}): Promise<TestServer | undefined> {
  const env = fromEnv('MONGO_URL', options);
  if (env) return env;
  const extra = goBinDir();
  const binary = await findBinary('ferretdb', extra ? [extra] : []);
  if (!binary) {
    return missingServer('mongo', 'ferretdb not found on PATH or in $(go env GOPATH)/bin: run .ci/run (it builds FerretDB v1.24.0 with Go) or set MONGO_URL to a MongoDB server');
  }
  return startServer({
    name: 'ferretdb',
    binary,
    args: (port, dir) => [
      '--handler=sqlite',
      // Test data need no durability: skip the fsync per commit.
      `--sqlite-url=file:${dir}/?_pragma=synchronous(off)`,
      `--state-dir=${dir}`,
      `--listen-addr=127.0.0.1:${port}`,
      '--telemetry=disable',
      // The debug HTTP server defaults to :8088, which clashes when several run.
      '--debug-addr=-',
      '--log-level=warn',
      ...(options.extraArgs ?? []),
    ],
    ready: mongoReady,
    url: (port) => `mongodb://127.0.0.1:${port}/`,
    startTimeoutMs: 60_000,
    // SIGTERM waits ~3 s for clients to disconnect; SQLite in WAL mode survives a kill.
    stopSignal: 'SIGKILL',
  });
}

async function mongoReady(port: number): Promise<boolean> {
  // The wire protocol is binary: ask the real driver (loaded only here).
  const { MongoClient } = await import('mongodb');
  const client = new MongoClient(`mongodb://127.0.0.1:${port}/`, { serverSelectionTimeoutMS: 500, connectTimeoutMS: 500 });
  try {
    await client.connect();
    const reply = await client.db('admin').command({ ping: 1 });
    return reply.ok === 1;
  } finally {
    await client.close().catch(() => {});
  }
}


// ---------------------------------------------------------------------------
// Fault injection
// ---------------------------------------------------------------------------

/** A loopback TCP proxy in front of a server, for fault tests. */
export interface TcpProxy {
  /** Port clients connect to (127.0.0.1). */
  readonly port: number;
  /** Forward traffic (the initial mode). */
  pass(): void;
  /**
   * Keep connections open but deliver nothing, in either direction, until
   * `pass()` (a network partition: like TCP, the held bytes arrive in order
   * when it heals, so no reply is lost or misattributed).
   */
  blackhole(): void;
  /** Destroy every open connection (the server "crashed"); new ones are still accepted. */
  cut(): void;
  /** Deliver every chunk `ms` later, in order, both directions (a slow network). `pass()` ends it. */
  delay(ms: number): void;
  /**
   * Cut the connection when the client next sends a chunk matching `match`,
   * after forwarding only the first half of it: a command torn mid-write.
   */
  cutOnNextWrite(match?: (chunk: Buffer) => boolean): void;
  /** Close the proxy and every connection. */
  close(): Promise<void>;
}

/** Listen on a free loopback port; resolves to the port. */
export async function listenLoopback(server: import('node:net').Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

/** Start a {@link TcpProxy} on a free loopback port forwarding to 127.0.0.1:`targetPort`. */
export async function tcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  let mode: 'pass' | 'blackhole' = 'pass';
  let delayMs = 0;
  let cutNext: ((chunk: Buffer) => boolean) | undefined;
  const sockets = new Set<import('node:net').Socket>();
  const flushers = new Set<() => void>();
  const server = createServer((client) => {
    const upstream = connect({ port: targetPort, host: targetHost });
    sockets.add(client);
    sockets.add(upstream);
    const held: Array<[import('node:net').Socket, Buffer]> = [];
    const flush = (): void => {
      for (const [to, chunk] of held.splice(0)) if (!to.destroyed) to.write(chunk);
    };
    flushers.add(flush);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
      flushers.delete(flush);
    };
    const forward = (to: import('node:net').Socket) => (chunk: Buffer): void => {
      if (to === upstream && cutNext?.(chunk)) {
        cutNext = undefined;
        upstream.write(chunk.subarray(0, Math.max(1, chunk.length >> 1)), drop);
        return;
      }
      // Timers of equal delay fire in the order they were set, so delayed chunks stay in order.
      if (mode === 'pass' && held.length === 0) {
        if (delayMs > 0) setTimeout(() => to.destroyed || to.write(chunk), delayMs);
        else to.write(chunk);
      } else held.push([to, chunk]);
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  const port = await listenLoopback(server);
  return {
    port,
    pass: () => {
      mode = 'pass';
      delayMs = 0;
      for (const flush of flushers) flush();
    },
    delay: (ms: number) => {
      delayMs = ms;
    },
    cutOnNextWrite: (match = () => true) => {
      cutNext = match;
    },
    blackhole: () => {
      mode = 'blackhole';
    },
    cut: () => {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      server.close(() => resolve());
    }),
  };
}
