/**
 * Fault measurements (a benchmark, not a test), on a real Redis behind a
 * loopback TCP proxy that black-holes traffic:
 *
 * 1. Dead master: 500 concurrent requests on a session whose master stopped
 *    answering. Every one must end in 503 within storeTimeout + a margin, none
 *    may hang, and the heap must come back to its baseline.
 * 2. Dead mirror: p50/p99 latency of a locked read-modify-write with no mirror,
 *    with one dead mirror in 'background' mode (bounded queue), and with one
 *    dead mirror in 'await' mode (each call bounded by storeTimeout).
 *
 *   npx tsx benchmarks/probes/faults.ts [--requests 500] [--store-timeout 500]
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import Koa from 'koa';
import { createClient } from 'redis';
import { MemoryStore, RedisStore, session, type SessionOptions } from '../../src/index.js';
import { redisServer, tcpProxy } from '../../test/helpers/servers.js';

const { values } = parseArgs({
  options: { requests: { type: 'string', default: '500' }, 'store-timeout': { type: 'string', default: '500' } },
});
const N = Number(values.requests);
const storeTimeout = Number(values['store-timeout']);

const redis = await redisServer();
if (!redis) throw new Error('faults benchmark needs redis-server (or REDIS_URL)');
const port = Number(new URL(redis.url).port);

async function serve(options: SessionOptions) {
  const app = new Koa();
  app.keys = ['faults'];
  app.silent = true;
  app.use(session({ storeTimeout, ...options }));
  app.use(async (ctx) => {
    ctx.body = { n: await ctx.session.withLock((s: { n?: number }) => (s.n = (s.n ?? 0) + 1)) };
  });
  const server = http.createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // No socket cap: every request is in flight at once, so latency is the server's, not a client queue's.
  const agent = new http.Agent({ keepAlive: true });
  const call = (cookie?: string) =>
    new Promise<{ status: number; ms: number; cookie: string }>((resolve, reject) => {
      const start = performance.now();
      http
        .get(
          { host: '127.0.0.1', port: (server.address() as { port: number }).port, path: '/', agent, headers: cookie ? { cookie } : {} },
          (res) => {
            res.resume();
            res.on('end', () =>
              resolve({
                status: res.statusCode!,
                ms: performance.now() - start,
                cookie: (res.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; '),
              }),
            );
          },
        )
        .on('error', reject);
    });
  return { call, close: () => new Promise<void>((r) => (agent.destroy(), server.close(() => r()))) };
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const mb = (b: number) => (b / 1024 / 1024).toFixed(1);

// 1. Dead master.
{
  const proxy = await tcpProxy(port);
  const client = await createClient({ url: `redis://127.0.0.1:${proxy.port}` })
    .on('error', () => {})
    .connect();
  const app = await serve({ master: new RedisStore({ client, timeoutMs: 60_000 }) });
  // N users, each with a live session, all hitting the dead master at once.
  const cookies: string[] = [];
  for (let i = 0; i < N; i++) cookies.push((await app.call()).cookie);
  globalThis.gc?.();
  const baseline = process.memoryUsage().heapUsed;
  proxy.blackhole();
  const results = await Promise.all(cookies.map((cookie) => app.call(cookie)));
  globalThis.gc?.();
  const during = process.memoryUsage().heapUsed;
  // The server comes back: the held commands drain, and so does the memory they held.
  proxy.pass();
  await client.ping();
  await new Promise((r) => setTimeout(r, 200));
  globalThis.gc?.();
  const after = process.memoryUsage().heapUsed;
  const statuses = new Map<number, number>();
  for (const r of results) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
  const ms = results.map((r) => r.ms);
  console.log(`## Dead master (${N} users, one concurrent request each, storeTimeout ${storeTimeout} ms)\n`);
  console.log(
    '| statuses | slowest ms | p99 ms | heap before MB | heap while dead MB | heap after recovery MB |\n| --- | ---: | ---: | ---: | ---: | ---: |',
  );
  console.log(
    `| ${[...statuses].map(([s, c]) => `${c}× ${s}`).join(', ')} | ${Math.max(...ms).toFixed(0)} | ${pct(ms, 99).toFixed(0)} | ${mb(baseline)} | ${mb(during)} | ${mb(after)} |\n`,
  );
  await app.close();
  client.destroy();
  await proxy.close();
}

// 2. Dead mirror.
{
  const rows: string[] = [];
  const measure = async (label: string, options: SessionOptions) => {
    const app = await serve({ master: new MemoryStore(), ...options });
    const cookies = await Promise.all(Array.from({ length: 200 }, async () => (await app.call()).cookie));
    const lat: number[] = [];
    const started = performance.now();
    let i = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (performance.now() - started < 3000) {
          const r = await app.call(cookies[i++ % cookies.length]);
          if (r.status === 200) lat.push(r.ms);
        }
      }),
    );
    rows.push(`| ${label} | ${lat.length} | ${pct(lat, 50).toFixed(1)} | ${pct(lat, 99).toFixed(1)} |`);
    await app.close();
  };
  const proxy = await tcpProxy(port);
  const client = await createClient({ url: `redis://127.0.0.1:${proxy.port}` })
    .on('error', () => {})
    .connect();
  const deadMirror = () => new RedisStore({ client, prefix: 'mirror:', timeoutMs: 60_000 });
  await measure('no mirror', {});
  proxy.blackhole();
  await measure("one dead mirror, mirrorWrites 'background' (queue bound 1000)", { mirrors: [deadMirror()], mirrorWrites: 'background' });
  await measure(`one dead mirror, mirrorWrites 'await' (storeTimeout ${storeTimeout} ms)`, { mirrors: [deadMirror()] });
  proxy.pass();
  client.destroy();
  await proxy.close();
  console.log('## Dead mirror (MemoryStore master, 32 connections, 3 s)\n');
  console.log('| mirrors | 2xx requests | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: |');
  console.log(rows.join('\n'));
}
await redis.stop();
