/** Redis for tests: `REDIS_URL`, or `redis-server` started on a free loopback port. */
import { findBinary } from './binaries.js';
import { missingServer } from './skip.js';
import { fromEnv, startServer, type ServerOptions, type TestServer } from './started-server.js';
import { probeTcp } from './tcp-probe.js';

/** Redis: `REDIS_URL`, or `redis-server` on a free port (no persistence). */
export async function redisServer(options: ServerOptions = {}): Promise<TestServer | undefined> {
  const env = fromEnv('REDIS_URL', options);
  if (env) return env;
  const binary = await findBinary('redis-server');
  if (!binary) {
    return missingServer(
      'redis',
      'redis-server not found on PATH: install it (apt-get install -y redis-server redis-tools) or set REDIS_URL',
    );
  }
  return startServer({
    name: 'redis-server',
    binary,
    args: (port, dir) => [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      ...(options.extraArgs ?? []),
    ],
    ready: (port) => probeTcp(port, 'PING\r\n', '+PONG'),
    url: (port) => `redis://127.0.0.1:${port}`,
  });
}
