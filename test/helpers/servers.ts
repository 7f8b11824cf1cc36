/**
 * Real servers for tests and benchmarks: find one (`REDIS_URL`, `MEMCACHED_URL`,
 * `MONGO_URL`) or start one on a free loopback port in a fresh temp dir.
 *
 * This file only re-exports; each job has its own file:
 * - redis-server.ts, memcached-server.ts, mongo-server.ts: the three starters;
 * - started-server.ts: running one binary (stop by PID, restart, halt/resume)
 *   and borrowing a server from an env var;
 * - skip.ts: a missing server skips loudly, and fails under `CI`;
 * - process.ts: spawning and stopping processes, the readiness poll;
 * - binaries.ts, tcp-probe.ts, temp-dirs.ts, ports.ts: small utilities;
 * - fault-proxy.ts: the TCP fault proxy.
 */
export { findBinary, goBinDir } from './binaries.js';
export { tcpProxy, type TcpProxy } from './fault-proxy.js';
export { memcachedServer } from './memcached-server.js';
export { mongoServer } from './mongo-server.js';
export { freePort, listenLoopback } from './ports.js';
export { logTail, startProcess, stopProcess, waitUntil, type ManagedProcess } from './process.js';
export { redisServer } from './redis-server.js';
export { missingServer, skipReason } from './skip.js';
export {
  startServer,
  type ServerKind,
  type ServerOptions,
  type ServerSpec,
  type StartedServer,
  type TestServer,
} from './started-server.js';
export { probeTcp } from './tcp-probe.js';
export { makeTempDir, removeDir } from './temp-dirs.js';
