/**
 * The app child of benchmarks/postgres.ts: one PostgreSQL variant on one port,
 * served by `PROCESSES` node:cluster workers (1 by default). Tells its parent
 * `{ port }` over IPC once every worker listens.
 *
 * Env: `VARIANT` (`raw-pg`, `ours-postgres`, `connect-pg-simple`), `PG_URL`, `PROCESSES`.
 */
import cluster from 'node:cluster';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AppEnv, VariantFactory } from './lib/types.js';

const processes = Number(process.env.PROCESSES ?? 1);
const variant = process.env.VARIANT ?? '';

async function factory(): Promise<VariantFactory> {
  if (variant === 'raw-pg') return (await import('./peers/raw-pg.js')).rawPg;
  if (variant === 'ours-postgres') return (await import('./variants/ours-postgres.js')).oursPostgres;
  if (variant === 'connect-pg-simple') return (await import('./peers/connect-pg-simple.js')).connectPgSimpleVariant;
  throw new Error(`postgres-app: unknown VARIANT ${variant}`);
}

if (cluster.isPrimary && processes > 1) {
  let port = 0;
  let listening = 0;
  for (let i = 0; i < processes; i++) {
    cluster.fork().on('listening', (address: { port: number }) => {
      port = address.port;
      if (++listening === processes) process.send?.({ port });
    });
  }
  process.on('disconnect', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
    process.exit(0);
  });
} else {
  const env: AppEnv = { servers: {}, processes, ttlMs: 3_600_000 };
  const app = await (await factory())(env);
  const server = http.createServer(app.listener);
  server.keepAliveTimeout = 60_000;
  // node:cluster workers listening on port 0 share one port.
  server.listen(0, '127.0.0.1', () => {
    if (cluster.isPrimary) process.send?.({ port: (server.address() as AddressInfo).port });
  });
  process.on('disconnect', () => process.exit(0));
}
