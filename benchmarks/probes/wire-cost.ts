/**
 * What does a µs of JavaScript per request cost on the wire? Bare Koa plus a
 * middleware that burns B µs of pure JS per request, served by a child pinned
 * to one core, driven by wrk pinned to the other (50 keep-alive connections,
 * loopback), in two modes:
 *
 * | mode           | the response is written                                             |
 * | -------------- | ------------------------------------------------------------------- |
 * | `same turn`    | in the turn that parsed the request (what Koa does)                 |
 * | `setImmediate` | after one `setImmediate`, so the responses of one turn leave together |
 *
 * For each (B, mode) it reports the app's CPU µs per request (process.cpuUsage()
 * deltas, reported by the child over IPC, divided by the requests it served in
 * the same window) and req/s, medians over interleaved rounds; then what the
 * burn added to the CPU per request (against B = 0, same mode), that ÷ B (the
 * amplification: above 1 when each µs of JS costs more than a µs), and the
 * least-squares slope of CPU/req on B per mode.
 *
 * Why it can be above 1: the app's CPU includes the kernel's work in the
 * response's `writev`, which on loopback delivers the bytes and wakes the
 * reader (wrk) through `sock_def_readable`. The longer each request takes, the
 * more often wrk has drained its socket and sleeps, so more responses pay a
 * wake-up; responses written together after a `setImmediate` share one.
 * `--perf` records the app with `perf record -g` for one configuration and
 * prints the share of its samples in that wake-up.
 *
 * The burn is a fixed count of loop iterations calibrated at start-up to B µs
 * (fastest of several trials), so a burn preempted by another process still
 * costs B µs of CPU, not B µs of wall time; the child reports what one burn
 * measures once warm (the `burn check` column).
 *
 *   npx tsx benchmarks/probes/wire-cost.ts [--rounds 5] [--duration 3] [--warmup 2] [--burn 0,5,10,20]
 *                                          [--connections 50] [--no-pin] [--perf] [--perf-burn 20]
 *
 * `--perf` (when `perf` exists) then records one more run per mode at `--perf-burn` (default: the largest burn).
 *
 * A one-off probe, not part of `npm run bench`. Needs wrk; pins with taskset when
 * it exists and two cores are allowed (says so loudly when not).
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median, slope } from '../lib/stats.js';
import { allowedCores } from '../lib/children.js';

export type Mode = 'same' | 'immediate';
const MODES: readonly Mode[] = ['same', 'immediate'];
const MODE_LABEL: Record<Mode, string> = { same: 'same turn', immediate: 'setImmediate' };

/** Child → parent messages. */
type ChildMessage = { type: 'ready'; port: number; burnCheckUs: number } | { type: 'mark'; id: number; cpuUs: number; served: number };

// ---------------------------------------------------------------------------
// The app child: bare Koa + the burn, on a free loopback port.

let sink = 0;

/** `iterations` steps of a dependency chain the JIT cannot drop (the result goes to `sink`). */
function spin(iterations: number): void {
  let x = sink;
  for (let i = 0; i < iterations; i++) x = (x * 31 + i) | 0;
  sink = x;
}

/** Loop iterations per µs on this core: the fastest of several timed trials, once the loop is optimised. */
function calibrate(): number {
  const n = 2_000_000;
  for (let i = 0; i < 5; i++) spin(n);
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 15; i++) {
    const t0 = process.hrtime.bigint();
    spin(n);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1000);
  }
  return n / best;
}

async function serve(burnUs: number, mode: Mode): Promise<void> {
  const { default: Koa } = await import('koa');
  const iterations = Math.round(burnUs * calibrate());
  // What one burn measures once warm (median of 1,000), for the report.
  const times: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const t0 = process.hrtime.bigint();
    spin(iterations);
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  const burnCheckUs = burnUs > 0 ? (median(times) ?? 0) : 0;

  const app = new Koa();
  app.silent = true;
  let served = 0;
  if (iterations > 0)
    app.use((_ctx, next) => {
      spin(iterations);
      return next();
    });
  if (mode === 'immediate') app.use((_ctx, next) => new Promise<void>((resolve) => setImmediate(resolve)).then(next));
  app.use((ctx) => {
    served++;
    ctx.body = { count: 1 };
  });
  const server = app.listen(0, '127.0.0.1');
  // Like benchmarks/app.ts: wrk keeps its connections; Node's 5 s default would reset idle ones between runs.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  await once(server, 'listening');
  process.on('message', (m: { type?: string; id?: number }) => {
    if (m?.type !== 'mark' || m.id === undefined) return;
    const cpu = process.cpuUsage();
    process.send!({ type: 'mark', id: m.id, cpuUs: cpu.user + cpu.system, served } satisfies ChildMessage);
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ type: 'ready', port: (server.address() as AddressInfo).port, burnCheckUs } satisfies ChildMessage);
}

// ---------------------------------------------------------------------------
// The parent: children, wrk, rounds, the table.

interface Pins {
  app?: string;
  wrk?: string;
  note: string;
}

/** App on the first allowed core, wrk on the second; none (said loudly) when that is impossible. */
function choosePins(wanted: boolean): Pins {
  if (!wanted) return { note: 'NOT PINNED (--no-pin): app and wrk share the cores, CPU per request is noisier' };
  const cores = allowedCores();
  if (!cores) return { note: 'NOT PINNED: taskset is not available' };
  if (cores.length < 2) return { note: `NOT PINNED: only ${cores.length} core allowed` };
  return { app: String(cores[0]), wrk: String(cores[1]), note: `app on core ${cores[0]}, wrk on core ${cores[1]}` };
}

function wrkAvailable(): boolean {
  try {
    execFileSync('wrk', ['-v'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    // `wrk -v` prints its version and exits 1; only a missing binary is ENOENT.
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

function perfAvailable(): boolean {
  try {
    execFileSync('perf', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const pinned = (cores: string | undefined, argv: string[]): [string, string[]] =>
  cores ? ['taskset', ['-c', cores, ...argv]] : [argv[0]!, argv.slice(1)];

/** The app child of one configuration. */
class App {
  readonly #child: ChildProcess;
  #nextId = 1;
  readonly #waiting = new Map<number, (m: Extract<ChildMessage, { type: 'mark' }>) => void>();
  port = 0;
  burnCheckUs = 0;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'mark') {
        this.#waiting.get(m.id)?.(m);
        this.#waiting.delete(m.id);
      }
    });
  }

  get pid(): number {
    return this.#child.pid!;
  }

  static async start(burnUs: number, mode: Mode, cores: string | undefined): Promise<App> {
    const self = fileURLToPath(import.meta.url);
    const [cmd, args] = pinned(cores, [process.execPath, '--import', 'tsx', self, '--serve', String(burnUs), '--mode', mode]);
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const app = new App(child);
    const [ready] = (await Promise.race([
      once(child, 'message'),
      once(child, 'exit').then(([code]) => Promise.reject(new Error(`app child exited (${code}) before listening`))),
    ])) as [ChildMessage];
    if (ready.type !== 'ready') throw new Error(`app child: expected ready, got ${ready.type}`);
    app.port = ready.port;
    app.burnCheckUs = ready.burnCheckUs;
    return app;
  }

  /** The child's CPU so far (µs) and the requests it answered. */
  mark(): Promise<{ cpuUs: number; served: number }> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.#child.send({ type: 'mark', id });
    });
  }

  /** Disconnecting the IPC channel ends the child (it exits on 'disconnect'); SIGKILL after 5 s. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const done = once(child, 'exit');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.disconnect();
    await done;
    clearTimeout(timer);
  }
}

interface WrkRun {
  rps: number;
  requests: number;
  errors: number;
}

async function wrk(port: number, seconds: number, connections: number, cores: string | undefined): Promise<WrkRun> {
  const lua = fileURLToPath(new URL('../lib/wrk.lua', import.meta.url));
  const argv = [
    'wrk',
    '-t',
    '1',
    '-c',
    String(connections),
    '-d',
    `${seconds}s`,
    '--timeout',
    '10s',
    '-s',
    lua,
    `http://127.0.0.1:${port}/`,
  ];
  const [cmd, args] = pinned(cores, argv);
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(cmd, args, { env: { ...process.env, BENCH_WRK_PATH: '/' }, maxBuffer: 1 << 20 }, (error, out, err) =>
      error ? reject(new Error(`wrk failed: ${error.message}\n${err}`)) : resolve(out),
    );
  });
  const { parseWrkOutput } = await import('../lib/wrk.js');
  const s = parseWrkOutput(stdout);
  const errors = s.status + s.connect + s.read + s.write + s.timeout;
  return { rps: s.durationUs > 0 ? (s.requests - s.status) / (s.durationUs / 1e6) : 0, requests: s.requests, errors };
}

export interface WireCostOptions {
  /** Burns in µs of JS per request. @default [0, 5, 10, 20] */
  burnsUs: number[];
  /** Interleaved rounds (medians over them). @default 5 */
  rounds: number;
  /** Seconds of measured load per run (wrk: whole seconds). @default 3 */
  durationS: number;
  /** Seconds of load before each measured run, discarded. @default 2 */
  warmupS: number;
  /** wrk connections (keep-alive). @default 50 */
  connections: number;
  /** Pin app and wrk to their own cores with taskset. @default true */
  pin: boolean;
}

export interface WireCostCell {
  /** App CPU µs per request of each round. */
  cpuUs: number[];
  rps: number[];
  burnCheckUs: number[];
  errors: number;
}

export interface WireCostResult {
  pins: string;
  cells: Map<string, WireCostCell>;
}

const key = (burnUs: number, mode: Mode): string => `${burnUs}/${mode}`;

async function measure(
  burnUs: number,
  mode: Mode,
  o: WireCostOptions,
  pins: Pins,
): Promise<{ cpuUs: number; rps: number; burnCheckUs: number; errors: number }> {
  const app = await App.start(burnUs, mode, pins.app);
  try {
    if (o.warmupS > 0) await wrk(app.port, o.warmupS, o.connections, pins.wrk);
    const before = await app.mark();
    const run = await wrk(app.port, o.durationS, o.connections, pins.wrk);
    const after = await app.mark();
    const served = after.served - before.served;
    return {
      cpuUs: served > 0 ? (after.cpuUs - before.cpuUs) / served : Number.NaN,
      rps: run.rps,
      burnCheckUs: app.burnCheckUs,
      errors: run.errors,
    };
  } finally {
    await app.stop();
  }
}

export async function runWireCost(o: WireCostOptions, log: (line: string) => void): Promise<WireCostResult> {
  const pins = choosePins(o.pin);
  log(`pinning: ${pins.note}`);
  const configs = o.burnsUs.flatMap((b) => MODES.map((mode) => ({ burnUs: b, mode })));
  const cells = new Map<string, WireCostCell>(
    configs.map((c) => [key(c.burnUs, c.mode), { cpuUs: [], rps: [], burnCheckUs: [], errors: 0 }]),
  );
  for (let r = 0; r < o.rounds; r++) {
    // Every configuration once per round, starting one further along each round, so no configuration always runs first.
    for (let i = 0; i < configs.length; i++) {
      const { burnUs, mode } = configs[(i + r) % configs.length]!;
      const m = await measure(burnUs, mode, o, pins);
      const cell = cells.get(key(burnUs, mode))!;
      cell.cpuUs.push(m.cpuUs);
      cell.rps.push(m.rps);
      cell.burnCheckUs.push(m.burnCheckUs);
      cell.errors += m.errors;
      log(
        `  round ${r + 1}/${o.rounds} burn ${burnUs} µs ${MODE_LABEL[mode]}: ${m.cpuUs.toFixed(1)} µs CPU/req, ${Math.round(m.rps)} req/s`,
      );
    }
  }
  return { pins: pins.note, cells };
}

const fmt = (v: number | undefined, digits = 1): string => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));

/** The Markdown report: medians per (burn, mode), what the burn added, its amplification, and the slopes. */
export function formatWireCost(result: WireCostResult, o: WireCostOptions): string {
  const cpu = (b: number, m: Mode) => median(result.cells.get(key(b, m))!.cpuUs);
  const rps = (b: number, m: Mode) => median(result.cells.get(key(b, m))!.rps);
  const base = (m: Mode) => cpu(0, m);
  const added = (b: number, m: Mode) => {
    const c = cpu(b, m);
    const z = base(m);
    return c !== undefined && z !== undefined ? c - z : undefined;
  };
  const amp = (b: number, m: Mode) => {
    const a = added(b, m);
    return a !== undefined && b > 0 ? a / b : undefined;
  };
  const lines = [
    `Bare Koa + B µs of JS per request; wrk ${o.connections} connections, 1 thread, ${o.warmupS} s warm-up + ${o.durationS} s, medians of ${o.rounds} interleaved rounds; ${result.pins}.`,
    '',
    '| burn µs | burn check µs | same turn: CPU µs/req | same turn: req/s | setImmediate: CPU µs/req | setImmediate: req/s | added CPU µs/req (same turn) | ÷ burn (same turn) | added CPU µs/req (setImmediate) | ÷ burn (setImmediate) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...o.burnsUs.map((b) => {
      const check = median(MODES.flatMap((m) => result.cells.get(key(b, m))!.burnCheckUs));
      return `| ${b} | ${fmt(check, 2)} | ${fmt(cpu(b, 'same'))} | ${fmt(rps(b, 'same'), 0)} | ${fmt(cpu(b, 'immediate'))} | ${fmt(rps(b, 'immediate'), 0)} | ${b > 0 ? fmt(added(b, 'same')) : '–'} | ${fmt(amp(b, 'same'), 2)} | ${b > 0 ? fmt(added(b, 'immediate')) : '–'} | ${fmt(amp(b, 'immediate'), 2)} |`;
    }),
    '',
    ...MODES.map(
      (m) =>
        `Slope (least squares of median CPU µs/req on burn µs), ${MODE_LABEL[m]}: ${fmt(
          slope(
            o.burnsUs,
            o.burnsUs.map((b) => cpu(b, m)),
          ),
          2,
        )} µs of CPU per µs of JS.`,
    ),
    '',
    'CPU µs/req of every round (same turn | setImmediate):',
    '',
    ...o.burnsUs.map(
      (b) =>
        `- burn ${b}: ${result.cells
          .get(key(b, 'same'))!
          .cpuUs.map((v) => fmt(v))
          .join(' ')} | ${result.cells
          .get(key(b, 'immediate'))!
          .cpuUs.map((v) => fmt(v))
          .join(' ')}`,
    ),
  ];
  const errors = [...result.cells.values()].reduce((s, c) => s + c.errors, 0);
  if (errors) lines.push('', `**${errors} wrk errors** (non-2xx, connect, read, write or timeout): the run is suspect.`);
  return lines.join('\n');
}

/** Record the app of one configuration with `perf record -g` during a measured run and count where its samples land. */
async function perfShares(burnUs: number, mode: Mode, o: WireCostOptions): Promise<string> {
  if (!perfAvailable()) return '**--perf skipped: `perf` is not installed.**';
  const { parsePerfScript, stackShares } = await import('../lib/perf-stacks.js');
  const pins = choosePins(o.pin);
  const dir = await mkdtemp(join(tmpdir(), 'kls-wire-perf-'));
  const app = await App.start(burnUs, mode, pins.app);
  try {
    if (o.warmupS > 0) await wrk(app.port, o.warmupS, o.connections, pins.wrk);
    const data = join(dir, 'perf.data');
    // perf itself runs beside wrk, off the app's core.
    const [cmd, args] = pinned(pins.wrk, ['perf', 'record', '-g', '-o', data, '-p', String(app.pid), '--', 'sleep', String(o.durationS)]);
    const perf = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let perfErr = '';
    perf.stderr!.on('data', (c: Buffer) => (perfErr += c.toString()));
    const run = await wrk(app.port, o.durationS, o.connections, pins.wrk);
    const [code] = (await once(perf, 'exit')) as [number | null];
    if (code !== 0) return `**--perf failed** (perf record exited ${code}): ${perfErr.trim().slice(-500)}`;
    const script = await new Promise<string>((resolve, reject) =>
      execFile('perf', ['script', '-i', data, '-F', 'comm,tid,event,ip,sym'], { maxBuffer: 1 << 30 }, (error, out, err) =>
        error ? reject(new Error(`perf script failed: ${error.message}\n${err}`)) : resolve(out),
      ),
    );
    const s = stackShares(parsePerfScript(script));
    const pct = (n: number) => (s.samples ? `${((100 * n) / s.samples).toFixed(1)} %` : '–');
    return [
      `perf record -g of the app, burn ${burnUs} µs, ${MODE_LABEL[mode]}, ${o.durationS} s under wrk (${Math.round(run.rps)} req/s): ${s.samples} samples (all threads of the app).`,
      '',
      '| where | share of samples |',
      '| --- | ---: |',
      `| \`_raw_spin_unlock_irqrestore\` under \`sock_def_readable\` (waking wrk) | ${pct(s.wakeUnlock)} |`,
      `| \`sock_def_readable\` anywhere on the stack | ${pct(s.sockReadable)} |`,
      `| \`writev\` anywhere on the stack (the response's system call) | ${pct(s.writev)} |`,
      `| kernel (leaf frame) | ${pct(s.kernel)} |`,
      '',
      'With `cpu-clock` sampling (no hardware PMU, as on a VM), an interrupts-off region is charged to where interrupts come back on: `_raw_spin_unlock_irqrestore` here is the whole wake-up.',
    ].join('\n');
  } finally {
    await app.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------

function numberList(name: string, raw: string): number[] {
  const list = raw.split(',').map((v) => Number(v.trim()));
  if (!list.length || list.some((v) => !Number.isFinite(v) || v < 0))
    throw new TypeError(`wire-cost: Expected --${name} to be comma-separated non-negative numbers, got \`${raw}\``);
  return list;
}

function positive(name: string, raw: string, integer: boolean): number {
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v)))
    throw new TypeError(`wire-cost: Expected --${name} to be a positive ${integer ? 'integer' : 'number'}, got \`${raw}\``);
  return v;
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      mode: { type: 'string', default: 'same' },
      rounds: { type: 'string', default: '5' },
      duration: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '2' },
      burn: { type: 'string', default: '0,5,10,20' },
      connections: { type: 'string', default: '50' },
      'no-pin': { type: 'boolean', default: false },
      perf: { type: 'boolean', default: false },
      'perf-burn': { type: 'string' },
    },
  });
  if (values.serve !== undefined) {
    await serve(Number(values.serve), values.mode === 'immediate' ? 'immediate' : 'same');
  } else {
    if (!wrkAvailable()) throw new Error('wire-cost: needs wrk (apt-get install wrk)');
    const burns = numberList('burn', values.burn!);
    const options: WireCostOptions = {
      burnsUs: burns.includes(0) ? burns : [0, ...burns],
      rounds: positive('rounds', values.rounds!, true),
      // wrk takes whole seconds.
      durationS: Math.max(1, Math.round(positive('duration', values.duration!, false))),
      warmupS: values.warmup === '0' ? 0 : Math.max(1, Math.round(positive('warmup', values.warmup!, false))),
      connections: positive('connections', values.connections!, true),
      pin: !values['no-pin'],
    };
    const pins = choosePins(options.pin);
    if (!pins.app) console.error(`\n*** ${pins.note} ***\n`);
    const result = await runWireCost(options, (line) => console.error(line));
    console.log(formatWireCost(result, options));
    if (values.perf) {
      const perfBurn = values['perf-burn'] !== undefined ? numberList('perf-burn', values['perf-burn'])[0]! : Math.max(...options.burnsUs);
      for (const mode of MODES) console.log(`\n${await perfShares(perfBurn, mode, options)}`);
    }
  }
}
