/**
 * Soak benchmark (not a test): N fresh sessions through a bounded MemoryStore.
 * Reports RSS and heap after every 100k sessions, and checks that the store
 * stays within its bound and the locker map ends empty.
 *
 *   npx tsx benchmarks/probes/soak-memory.ts [--sessions 1000000] [--max 100000] [--concurrency 64]
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import Koa from 'koa';
import { MemoryLocker, MemoryStore, session } from '../../src/index.js';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '1000000' },
    max: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '64' },
  },
});
const total = Number(values.sessions);
const max = Number(values.max);
const concurrency = Number(values.concurrency);

const store = new MemoryStore({ max });
const locker = new MemoryLocker();
const app = new Koa();
app.keys = ['soak'];
app.use(session({ master: store, locker }));
app.use(async (ctx) => {
  // A fresh session, then a locked update on it (so the locker is exercised too).
  await ctx.session.withLock((s: { n?: number }) => void (s.n = 1));
  await ctx.session.withLock((s: { n?: number }) => void (s.n = 2));
  ctx.body = 'ok';
});
const server = http.createServer(app.callback());
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as { port: number };
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const rows: string[] = [
  '| sessions | RSS MB | heap used MB | store size | locker entries | s |',
  '| ---: | ---: | ---: | ---: | ---: | ---: |',
];
const started = Date.now();
let sent = 0;
let done = 0;
let peakRss = 0;
const get = () =>
  new Promise<void>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      })
      .on('error', reject);
  });
async function worker(): Promise<void> {
  while (sent < total) {
    sent++;
    await get();
    done++;
    if (done % 100_000 === 0) {
      globalThis.gc?.();
      const { rss, heapUsed } = process.memoryUsage();
      peakRss = Math.max(peakRss, rss);
      rows.push(
        `| ${done.toLocaleString('en')} | ${mb(rss)} | ${mb(heapUsed)} | ${store.size.toLocaleString('en')} | ${locker.size} | ${((Date.now() - started) / 1000).toFixed(0)} |`,
      );
      process.stderr.write(`\r${done.toLocaleString('en')} / ${total.toLocaleString('en')} sessions`);
    }
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
process.stderr.write('\n');
agent.destroy();
server.close();
await store.close();
console.log(rows.join('\n'));
console.log(
  `\npeak RSS ${mb(peakRss)} MB; store bound ${max.toLocaleString('en')}: final size ${store.size.toLocaleString('en')}; locker entries at the end: ${locker.size}`,
);
if (store.size > max || locker.size !== 0) process.exitCode = 1;
