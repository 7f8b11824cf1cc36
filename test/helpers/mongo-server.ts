/**
 * The MongoDB wire protocol for tests: `MONGO_URL`, or FerretDB 1.x (SQLite
 * backend) started on a free loopback port, ready when the real driver pings it.
 */
import { findBinary, goBinDir } from './binaries.js';
import { missingServer } from './skip.js';
import { fromEnv, startServer, type ServerOptions, type TestServer } from './started-server.js';

/** MongoDB wire protocol: `MONGO_URL`, or FerretDB 1.x (SQLite backend) on a free port. */
export async function mongoServer(options: ServerOptions = {}): Promise<TestServer | undefined> {
  const env = fromEnv('MONGO_URL', options);
  if (env) return env;
  const extra = goBinDir();
  const binary = await findBinary('ferretdb', extra ? [extra] : []);
  if (!binary) {
    return missingServer(
      'mongo',
      'ferretdb not found on PATH or in $(go env GOPATH)/bin: run .ci/run (it builds FerretDB v1.24.0 with Go) or set MONGO_URL to a MongoDB server',
    );
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
