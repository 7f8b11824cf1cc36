/**
 * Running one server binary for tests: on a free loopback port in a fresh temp
 * dir, stopped by its PID only; `restart()` / `halt()` / `resume()` for "server
 * down / comes back" tests. Also the shared types of every starter and
 * borrowing a server from an env var (`REDIS_URL`…).
 */
import { join } from 'node:path';
import { freePort } from './ports.js';
import { startProcess, stopProcess, waitUntil, type ManagedProcess } from './process.js';
import { makeTempDir, removeDir } from './temp-dirs.js';

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
      const candidate = fixedPort ?? (await freePort());
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

/** Options shared by the three starters. */
export interface ServerOptions {
  /** Use the env var (`REDIS_URL`…) when set. @default true */
  useEnv?: boolean;
  /** Extra command-line arguments for a server we start. */
  extraArgs?: readonly string[];
}

/** The server named by env var `variable`, unless `useEnv` is false. */
export function fromEnv(variable: string, options: ServerOptions): TestServer | undefined {
  const url = options.useEnv === false ? undefined : process.env[variable];
  if (!url) return undefined;
  return { url, external: true, stop: async () => {} };
}
