/**
 * PostgreSQL for tests: `PG_URL`, or a server of Debian's `postgresql` package
 * started here (initdb in a fresh temp dir, then the postmaster on a free
 * loopback port, no Unix socket, fsync off). PostgreSQL refuses to run as
 * root, so as root the binaries run as the `postgres` user (`setpriv`, which
 * execs in place: the PID we stop is the postmaster's own).
 *
 * The same policy as test/helpers/servers.ts, whose helpers this uses: a
 * missing server skips loudly locally and fails under `CI`; `restart()`,
 * `halt()` and `resume()` work on servers we started.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  findBinary,
  makeTempDir,
  missingServer,
  removeDir,
  startServer,
  type ServerOptions,
  type StartedServer,
  type TestServer,
} from './servers.js';

const run = promisify(execFile);
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** The newest `/usr/lib/postgresql/<major>/bin` with an `initdb`, else `initdb` on PATH. */
async function binDir(): Promise<string | undefined> {
  const base = '/usr/lib/postgresql';
  const majors = await readdir(base).catch(() => [] as string[]);
  const dirs = majors
    .filter((m) => /^\d+$/.test(m))
    .sort((a, b) => Number(b) - Number(a))
    .map((m) => join(base, m, 'bin'));
  for (const dir of dirs) if (await findBinary('initdb', [dir])) return dir;
  const onPath = await findBinary('initdb');
  return onPath ? join(onPath, '..') : undefined;
}

/** `command args`, as the postgres user when we are root. */
function asPostgres(command: string, args: readonly string[]): [string, string[]] {
  return asRoot ? ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', command, ...args]] : [command, [...args]];
}

/** PostgreSQL: `PG_URL`, or initdb + postgres on a free loopback port. */
export async function postgresServer(options: ServerOptions = {}): Promise<TestServer | StartedServer | undefined> {
  const url = options.useEnv === false ? undefined : process.env.PG_URL;
  if (url) return { url, external: true, stop: async () => {} };
  const bin = await binDir();
  if (!bin) {
    return missingServer(
      'postgres',
      'initdb not found in /usr/lib/postgresql/*/bin or on PATH: install it (apt-get install -y postgresql) or set PG_URL',
    );
  }
  const root = await makeTempDir('postgres-data');
  const data = join(root, 'data');
  try {
    await chmod(root, 0o777); // the postgres user creates the data dir in it
    if (!asRoot) await mkdir(data, { mode: 0o700 });
    const [command, args] = asPostgres(join(bin, 'initdb'), [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-sync',
      '--no-instructions',
    ]);
    await run(command, args, { cwd: root });
  } catch (error) {
    await removeDir(root);
    return missingServer('postgres', `initdb failed: ${(error as Error).message}`);
  }
  const [postgres, prefix] = asPostgres(join(bin, 'postgres'), []);
  const server = await startServer({
    name: 'postgres',
    binary: postgres,
    args: (port) => [
      ...prefix,
      '-D',
      data,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'fsync=off',
      '-c',
      'full_page_writes=off', // no durability needed past the OS: a SIGQUIT'd server still recovers every commit
      '-c',
      'max_connections=200',
      '-c',
      'shared_buffers=16MB',
      ...(options.extraArgs ?? []),
    ],
    ready: (port) => pgReady(port),
    url: (port) => `postgres://postgres@127.0.0.1:${port}/postgres`,
    startTimeoutMs: 60_000,
    // Immediate shutdown: the postmaster ends its backends and exits; the next start recovers.
    stopSignal: 'SIGQUIT',
  });
  const stop = server.stop.bind(server);
  return Object.assign(server, {
    async stop() {
      await stop();
      await removeDir(root);
    },
  });
}

async function pgReady(port: number): Promise<boolean> {
  const pg = await import('pg');
  const client = new pg.default.Client({
    connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`,
    connectionTimeoutMillis: 500,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end().catch(() => {});
  }
}

/** A database of its own for one test file (a shared `PG_URL` server is never cleared). */
export async function freshDatabase(server: TestServer, label: string): Promise<{ url: string; drop(): Promise<void> }> {
  const pg = await import('pg');
  const name = `kls_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.default.Client({ connectionString: server.url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(server.url);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.default.Client({ connectionString: server.url });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } catch {
        // the server may be gone already (stopped by the test)
      } finally {
        await client.end().catch(() => {});
      }
    },
  };
}
