/** Memcached for tests: `MEMCACHED_URL`, or `memcached` started on a free loopback port. */
import { userInfo } from 'node:os';
import { findBinary } from './binaries.js';
import { missingServer } from './skip.js';
import { fromEnv, startServer, type ServerOptions, type TestServer } from './started-server.js';
import { probeTcp } from './tcp-probe.js';

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
