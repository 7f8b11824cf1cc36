/**
 * The PostgreSQL rows, measured by hand until the harness (run.ts) starts a
 * PostgreSQL server: `npx tsx benchmarks/postgres.ts [--duration 5]`.
 *
 * For raw-pg (floor), ours-postgres and connect-pg-simple, each in a fresh app
 * child (benchmarks/postgres-app.ts) against one PostgreSQL (PG_URL, or one
 * started by test/helpers/postgres-server.ts):
 * - many users, read-modify-write: 200 sessions, 50 connections, req/s;
 * - four processes, one hot session: 150 x duration requests, req/s and lost
 *   updates (2xx answers minus the counter's increase).
 * Load comes from autocannon in this process. Prints a Markdown table.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import autocannon from 'autocannon';
import { postgresServer } from '../test/helpers/postgres-server.js';

const duration = Number(process.argv[process.argv.indexOf('--duration') + 1] || 5);
const VARIANTS = ['raw-pg', 'ours-postgres', 'connect-pg-simple'] as const;
const APP = resolve(import.meta.dirname, 'postgres-app.ts');

const server = await postgresServer();
if (!server) throw new Error('no PostgreSQL: install postgresql or set PG_URL');

async function startApp(variant: string, processes: number): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(APP, [], { execArgv: ['--import', 'tsx'], env: { ...process.env, VARIANT: variant, PG_URL: server!.url, PROCESSES: String(processes) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [message] = (await once(child, 'message')) as [{ port: number }];
  return { url: `http://127.0.0.1:${message.port}`, child };
}

async function stopApp(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.disconnect();
  await exited;
}

async function fresh(url: string): Promise<string> {
  const res = await fetch(`${url}/fresh`);
  await res.text();
  return res.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ');
}

async function countOf(url: string, cookie: string): Promise<number> {
  const res = await fetch(`${url}/read`, { headers: { cookie } });
  return ((await res.json()) as { count: number }).count;
}

/** `amount`: a fixed number of requests, all answered before it resolves (none cut off at the end: lost updates are exact). */
async function load(url: string, cookies: string[], amount?: number): Promise<{ rps: number; ok: number; errors: number }> {
  const result = await autocannon({
    url,
    connections: 50,
    ...(amount ? { amount } : { duration }),
    requests: [{ method: 'GET', path: '/rmw', setupRequest: (req) => ({ ...req, headers: { ...req.headers, cookie: cookies[Math.floor(Math.random() * cookies.length)]! } }) }],
  });
  return { rps: result.requests.average, ok: result['2xx'], errors: result.non2xx + result.errors };
}

const rows: string[] = [];
for (const variant of VARIANTS) {
  const one = await startApp(variant, 1);
  const cookies = await Promise.all(Array.from({ length: 200 }, () => fresh(one.url)));
  await load(one.url, cookies); // warm-up
  const many = await load(one.url, cookies);
  await stopApp(one.child);

  const four = await startApp(variant, 4);
  const hot = await fresh(four.url);
  const before = await countOf(four.url, hot);
  const run = await load(four.url, [hot], 150 * duration);
  const lost = run.ok - ((await countOf(four.url, hot)) - before);
  await stopApp(four.child);
  rows.push(`| ${variant} | ${many.rps.toFixed(0)} | ${many.errors} | ${run.rps.toFixed(0)} | ${run.ok} | ${run.errors} | ${lost} |`);
  console.error(rows.at(-1));
}
console.log(`\nPostgreSQL rows (${duration} s per run, 50 connections, autocannon)\n`);
console.log('| variant | many users RMW req/s | non-2xx | 4 processes hot session req/s | 2xx | non-2xx | lost updates |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const row of rows) console.log(row);
await server.stop();
