/**
 * The PostgreSQL rows, measured by hand until the harness (run.ts) starts a
 * PostgreSQL server: `npx tsx benchmarks/postgres.ts [--duration 5]`.
 *
 * For raw-pg (floor), ours-postgres and connect-pg-simple, each in a fresh app
 * child (benchmarks/postgres-app.ts) against one PostgreSQL (PG_URL, or one
 * started by test/helpers/postgres-server.ts):
 * - many users, read-modify-write: 200 sessions, 50 connections, req/s, in
 *   3 interleaved rounds (median; the ratio to the floor is taken per round);
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
  // Answers per second over the whole run (autocannon's `duration` is in seconds).
  return { rps: (result['2xx'] + result.non2xx) / result.duration, ok: result['2xx'], errors: result.non2xx + result.errors };
}

const ROUNDS = 3;
const many = new Map<string, number[]>(VARIANTS.map((v) => [v, []]));
const floorRatio: number[] = [];
// Interleaved rounds (each variant once per round, order rotating): a busy machine slows whole rounds, ratios are taken within one.
for (let round = 0; round < ROUNDS; round++) {
  const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!);
  const thisRound = new Map<string, number>();
  for (const variant of order) {
    const one = await startApp(variant, 1);
    const cookies = await Promise.all(Array.from({ length: 200 }, () => fresh(one.url)));
    await load(one.url, cookies, 500); // warm-up
    const run = await load(one.url, cookies);
    await stopApp(one.child);
    many.get(variant)!.push(run.rps);
    thisRound.set(variant, run.rps);
    console.error(`round ${round + 1}: ${variant} many-users RMW ${run.rps.toFixed(0)} req/s (non-2xx ${run.errors})`);
  }
  floorRatio.push(thisRound.get('ours-postgres')! / thisRound.get('raw-pg')!);
}

const hot = new Map<string, { rps: number; ok: number; errors: number; lost: number }>();
for (const variant of VARIANTS) {
  const four = await startApp(variant, 4);
  const cookie = await fresh(four.url);
  const before = await countOf(four.url, cookie);
  const run = await load(four.url, [cookie], 150 * duration);
  hot.set(variant, { ...run, lost: run.ok - ((await countOf(four.url, cookie)) - before) });
  await stopApp(four.child);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`\nPostgreSQL rows (${ROUNDS} interleaved rounds x ${duration} s, 50 connections, autocannon; median)\n`);
console.log('| variant | many users RMW req/s | 4 processes, hot session: req/s | 2xx | non-2xx | lost updates |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const variant of VARIANTS) {
  const h = hot.get(variant)!;
  console.log(`| ${variant} | ${median(many.get(variant)!).toFixed(0)} | ${h.rps.toFixed(0)} | ${h.ok} | ${h.errors} | ${h.lost} |`);
}
console.log(`\nours-postgres / raw-pg floor, many users RMW: ${median(floorRatio).toFixed(2)}x (median of per-round ratios: ${floorRatio.map((r) => r.toFixed(2)).join(', ')})`);
await server.stop();
