import type Koa from 'koa';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Serve `app` from a forked test worker: on a free loopback port reported to
 * the parent as `{ type: 'listening', port }`; when the parent goes away, stop
 * serving, run `shutdown` (close lockers and clients; at most 2 s) and exit.
 */
export function serveForParent(app: Koa, send: (message: object) => void, shutdown: () => Promise<unknown>): void {
  const server = http.createServer(app.callback());
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => send({ type: 'listening', port: (server.address() as AddressInfo).port }));
  process.on('disconnect', () => {
    server.close();
    server.closeAllConnections();
    const timer = setTimeout(() => process.exit(0), 2000);
    void shutdown()
      .catch(() => {})
      .finally(() => {
        clearTimeout(timer);
        process.exit(0);
      });
  });
}
