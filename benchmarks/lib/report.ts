/**
 * From measurements to rows (medians over rounds, ratios taken within each
 * round), then to the Markdown report, the console table and the target checks.
 */
import type { BenchOptions } from './args.js';
import type { StoreCalls } from './counters.js';
import { mergeStoreCalls } from './counters.js';
import type { Environment } from './env.js';
import { max, median } from './stats.js';
import { formatAcquisitions, formatLongestWait, formatWaitP99, worstLockWaits } from './lock-wait-report.js';
import { cpuCell, format, metricValue, missingReason, requestsPerTurn, turnsPerSecond } from './compare.js';
import { METRICS } from './targets.js';
import type { LoadResult, LockWaits, Scenario, ScenarioId, VariantInfo } from './types.js';

export const BARE = 'bare-koa';
export const FLOOR = 'raw-redis';
/** The raw floor with node-redis's per-command timeout off: the physical floor. */
export const FLOOR_NO_TIMEOUT = 'raw-redis-notimeout';
/** A bare node:http listener: the load generator's ceiling on the app core. */
export const CEILING = 'node-http';

/** One (round, scenario, variant) run. */
export interface Measurement {
  round: number;
  scenario: ScenarioId;
  variant: string;
  /** Set when the run could not be made; the other fields are then absent. */
  error?: string;
  load?: LoadResult;
  /** Read-modify-write responses committed with a 2xx (app side), in the measured window. */
  acked?: number;
  /** Increase of the counter read back (hot scenarios). */
  counterDelta?: number;
  /** acked − counterDelta. */
  lost?: number;
  storeCalls?: StoreCalls;
  setupFailures?: number;
  /** Requests the app served in the measured window (its own counter). */
  appRequests?: number;
  /** CPU time the serving process(es) spent in the window, per request served, µs. */
  cpuUsPerRequest?: number;
  /** Non-2xx responses the app sent in the window, by status. */
  non2xxByStatus?: Record<string, number>;
  /** Wall time of the whole measurement (start-up to stop), ms. */
  wallMs?: number;
  /** Lock waits in the window, one entry per serving process (our variants, hot-session scenarios). */
  lockWaits?: LockWaits[];
}

export interface RunData {
  env: Environment;
  options: BenchOptions;
  pinning: string;
  childrenVia: string;
  servers: Record<string, string>;
  missingServers: Record<string, string>;
  /** Variant id → why it was not (fully) measured. */
  skipped: Record<string, string>;
  scenarios: readonly Scenario[];
  variants: readonly VariantInfo[];
  measurements: Measurement[];
  wallSeconds: number;
  /** The load generator that drove the runs. */
  generator: string;
  /** Markdown of the CPU profile summaries (`--cpu-prof`). */
  profiles?: string;
  /** Markdown of the before/after table (`--before`, or `--only targets`). */
  comparison?: string;
}

export interface Row {
  scenario: Scenario;
  variant: VariantInfo;
  rounds: number;
  rps?: number;
  p50?: number;
  p99?: number;
  vsBare?: number;
  vsFloor?: number;
  /** The load generator's own CPU µs per response (median over rounds). */
  generatorCpuUs?: number;
  /** CPU µs per request (median over rounds). */
  cpuUs?: number;
  /** × the raw floor whose client has node-redis's command timeout off. */
  vsFloorNoTimeout?: number;
  /** Generators that drove its rounds. */
  generators: string[];
  /** Non-2xx responses by status, summed over rounds (app side). */
  statuses: Record<string, number>;
  non2xx: number;
  errors: number;
  /** Worst round. */
  lost?: number;
  /** Worst round's lost ÷ that round's acknowledged writes. */
  lostShare?: number;
  acked?: number;
  storeCalls?: StoreCalls;
  /** The worst round's lock waits, one entry per serving process (our variants, hot-session scenarios). */
  lockWaits?: LockWaits[];
  /** Leases taken from the locker per second, all processes (median over rounds; lib/lock-turns.ts). */
  turnsPerS?: number;
  /** Requests served per lease (median over rounds). */
  requestsPerTurn?: number;
  error?: string;
}

function ratioPerRound(data: RunData, m: Measurement, baseline: string): number | undefined {
  const base = data.measurements.find((b) => b.round === m.round && b.scenario === m.scenario && b.variant === baseline && b.load);
  if (!base?.load || !m.load || base.load.rps <= 0) return undefined;
  return m.load.rps / base.load.rps;
}

export function buildRows(data: RunData): Row[] {
  const rows: Row[] = [];
  for (const scenario of data.scenarios) {
    for (const variant of data.variants) {
      const ms = data.measurements.filter((m) => m.scenario === scenario.id && m.variant === variant.id);
      if (!ms.length) continue;
      const ok = ms.filter((m) => m.load);
      const row: Row = {
        scenario,
        variant,
        rounds: ok.length,
        generators: [...new Set(ok.map((m) => m.load!.generator ?? 'autocannon'))],
        statuses: {},
        non2xx: ok.reduce((n, m) => n + (m.load?.non2xx ?? 0), 0),
        errors: ok.reduce((n, m) => n + (m.load?.errors ?? 0), 0),
      };
      const set = <K extends keyof Row>(key: K, value: Row[K] | undefined) => {
        if (value !== undefined) row[key] = value as Row[K];
      };
      set('rps', median(ok.map((m) => m.load!.rps)));
      set('p50', median(ok.map((m) => m.load!.p50)));
      set('p99', median(ok.map((m) => m.load!.p99)));
      set('cpuUs', median(ok.map((m) => m.cpuUsPerRequest)));
      set('generatorCpuUs', median(ok.map((m) => m.load!.generatorCpuUs)));
      if (variant.id !== BARE) set('vsBare', median(ok.map((m) => ratioPerRound(data, m, BARE))));
      // Each row is divided by the raw floor of its own backend (Redis unless the variant names another).
      const floor = variant.floor ?? FLOOR;
      if (variant.id !== floor) set('vsFloor', median(ok.map((m) => ratioPerRound(data, m, floor))));
      if (!variant.floor && variant.id !== FLOOR_NO_TIMEOUT)
        set('vsFloorNoTimeout', median(ok.map((m) => ratioPerRound(data, m, FLOOR_NO_TIMEOUT))));
      for (const m of ok) {
        for (const [status, n] of Object.entries(m.non2xxByStatus ?? {})) row.statuses[status] = (row.statuses[status] ?? 0) + n;
      }
      if (scenario.countsLostUpdates) {
        set('lost', max(ok.map((m) => m.lost)));
        set('lostShare', max(ok.map((m) => (m.lost !== undefined && m.acked ? m.lost / m.acked : undefined))));
        const acked = ok.map((m) => m.acked).filter((x): x is number => x !== undefined);
        if (acked.length) row.acked = acked.reduce((a, b) => a + b, 0);
      }
      set('storeCalls', mergeStoreCalls(ok.map((m) => m.storeCalls)));
      set('lockWaits', worstLockWaits(ok));
      set('turnsPerS', median(ok.map(turnsPerSecond)));
      set('requestsPerTurn', median(ok.map(requestsPerTurn)));
      const failed = ms.find((m) => m.error);
      if (!ok.length && failed?.error) row.error = failed.error;
      rows.push(row);
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------

const num = (x: number | undefined, digits = 0): string =>
  x === undefined ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ratio = (x: number | undefined): string => (x === undefined ? '—' : `${x.toFixed(2)}×`);
// At most two decimals: a median of an even number of rounds averages two latencies (342.41999999999996).
const ms = (x: number | undefined): string => (x === undefined ? '—' : `${Number(x.toFixed(2))}`);

export function formatCalls(calls: StoreCalls | undefined, short = false): string {
  if (!calls) return '—';
  const ops = Object.entries(calls.perRequest)
    .filter(([, v]) => v >= 0.005)
    .sort((a, b) => b[1] - a[1])
    .map(([op, v]) => `${op} ${v.toFixed(2)}`);
  if (short) return calls.total < 0.005 ? '0' : calls.total.toFixed(2);
  return calls.total < 0.005 ? '0' : `${calls.total.toFixed(2)} (${ops.join(', ')})`;
}

function lostCell(row: Row): string {
  if (row.lost === undefined) return row.variant.id === BARE ? 'n/a' : '—';
  // The share of the worst round's own acknowledged writes (never above 100 %).
  const pct = row.lostShare !== undefined ? ` (${(row.lostShare * 100).toFixed(1)}%)` : '';
  return row.lost === 0 ? '**0**' : `${num(row.lost)}${pct}`;
}

function checkCell(row: Row): string {
  const expect = row.scenario.expectStoreCalls;
  if (!expect || row.variant.group !== 'ours' || !row.storeCalls) return '';
  return meetsCalls(row.storeCalls, expect) ? ' ✅' : ' ❌';
}

function meetsCalls(calls: StoreCalls, expect: { reads: number; writes: number }): boolean {
  const close = (a: number, b: number) => Math.abs(a - b) < 0.01;
  return close(calls.reads, expect.reads) && close(calls.writes, expect.writes) && (expect.reads + expect.writes > 0 || calls.total < 0.01);
}

/** Non-2xx statuses the app counted, e.g. ` (503×12)`. */
function statusCell(row: Row): string {
  const entries = Object.entries(row.statuses);
  return entries.length ? ` (${entries.map(([s, n]) => `${s}×${n}`).join(', ')})` : '';
}

/** Markdown table of one scenario. */
/** The hot-session scenarios (one session for every connection) get the lock-wait columns. */
const showsLockWaits = (scenario: Scenario): boolean => scenario.recordsLockWaits === true;

function scenarioTable(rows: Row[]): string {
  const scenario = rows[0]!.scenario;
  const lost = scenario.countsLostUpdates;
  const waits = showsLockWaits(scenario);
  const head = [
    'variant',
    'req/s',
    'p50 ms',
    'p99 ms',
    'CPU µs / req',
    '× bare Koa',
    '× floor',
    '× floor, no cmd timeout',
    ...(lost ? ['lost updates (worst round)'] : []),
    'store calls / req',
    ...(waits
      ? [
          'longest lock wait ms, per process (worst round)',
          'lock wait p99 ms (worst process)',
          'lock acquisitions, per process (same order)',
          'lock turns / s (requests / turn)',
        ]
      : []),
    'non-2xx / errors',
  ];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map((h, i) => (i === 0 || h.startsWith('store') ? '---' : '---:')).join(' | ')} |`];
  for (const row of rows) {
    const name = row.variant.group === 'ours' ? `**${row.variant.label}**` : row.variant.label;
    if (row.error) {
      lines.push(`| ${name} | not measured: ${row.error.replace(/\|/g, '\\|').slice(0, 160)} |${' |'.repeat(head.length - 2)}`);
      continue;
    }
    lines.push(
      `| ${[
        name,
        num(row.rps),
        ms(row.p50),
        ms(row.p99),
        num(row.cpuUs, 1),
        ratio(row.vsBare),
        ratio(row.vsFloor),
        ratio(row.vsFloorNoTimeout),
        ...(lost ? [lostCell(row)] : []),
        formatCalls(row.storeCalls) + checkCell(row),
        ...(waits
          ? [formatLongestWait(row.lockWaits), formatWaitP99(row.lockWaits), formatAcquisitions(row.lockWaits), turnsCell(row)]
          : []),
        `${row.non2xx} / ${row.errors}${statusCell(row)}${row.generators.includes('autocannon') ? ' (autocannon)' : ''}`,
      ].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

/** `1,234 (3.10)`: the turns of the lock per second and the requests each served; `—` where not counted. */
function turnsCell(row: Row): string {
  if (row.turnsPerS === undefined) return '—';
  return `${num(row.turnsPerS)}${row.requestsPerTurn !== undefined ? ` (${row.requestsPerTurn.toFixed(2)})` : ''}`;
}

export interface TargetCheck {
  target: string;
  measured: string;
  /** CPU µs per request behind the check (for a ratio: ours / the other). */
  cpu: string;
  met: boolean | undefined;
}

/**
 * The targets, reported and never failed on: each ratio target of issue 23
 * (lib/targets.ts, the same metrics as the before/after table) whose variant
 * this run measured, then the guarantees every run checks: 0 lost updates for
 * each of our locked hot-session rows, the store calls each scenario expects.
 */
export function checkTargets(rows: Row[], measurements: readonly Measurement[]): TargetCheck[] {
  const run = { measurements };
  const out: TargetCheck[] = [];
  for (const metric of METRICS) {
    if (!metric.met || (metric.kind !== 'ratio' && metric.kind !== 'cpuRatio')) continue;
    if (!measurements.some((m) => m.scenario === metric.scenario && m.variant === metric.variant)) continue;
    const value = metricValue(run, metric);
    out.push({
      target: `${metric.item} · ${metric.label} ${metric.target}`,
      measured: value === undefined ? missingReason(run, metric) : format(metric.kind, value),
      cpu: cpuCell(run, metric),
      met: value === undefined ? undefined : metric.met(value),
    });
  }
  const cpu = (row: Row) => (row.cpuUs === undefined ? '—' : row.cpuUs.toFixed(1));
  for (const row of rows.filter(
    (r) => r.scenario.countsLostUpdates && r.variant.group === 'ours' && r.variant.id !== 'ours-redis-memlock',
  )) {
    out.push({
      target: `${row.scenario.id === 'hot' ? 'Hot session' : 'Many processes'}: 0 lost updates, ${row.variant.label}`,
      measured: row.error ? 'not measured' : row.lost === undefined ? 'no read-back' : `${num(row.lost)} lost of ${num(row.acked)}`,
      cpu: cpu(row),
      met: row.error || row.lost === undefined ? undefined : row.lost === 0,
    });
  }
  for (const row of rows.filter((r) => r.scenario.expectStoreCalls && r.variant.group === 'ours' && r.storeCalls)) {
    const expect = row.scenario.expectStoreCalls!;
    out.push({
      target: `${row.scenario.title.replace(/^\d+\.\s*/, '')}: ${expect.label}, ${row.variant.label}`,
      measured: formatCalls(row.storeCalls),
      cpu: cpu(row),
      met: meetsCalls(row.storeCalls!, expect),
    });
  }
  const peersLosing = rows.filter((r) => r.scenario.countsLostUpdates && r.variant.group !== 'ours' && (r.lost ?? 0) > 0);
  if (peersLosing.length) {
    out.push({
      target: 'For comparison: unlocked peers lose updates on a hot session',
      measured: peersLosing.map((r) => `${r.variant.label} (${r.scenario.id}): ${num(r.lost)}`).join('; '),
      cpu: peersLosing.map((r) => `${r.variant.label} (${r.scenario.id}): ${cpu(r)}`).join('; '),
      met: undefined,
    });
  }
  return out;
}

export function renderMarkdown(data: RunData, rows: Row[], chartFile: string): string {
  const { env, options } = data;
  const o = options;
  const load = `${env.loadAvgStart.join(' / ')}${env.loadAvgEnd ? ` → ${env.loadAvgEnd.join(' / ')}` : ''}`;
  const busy = Math.max(...env.loadAvgStart, ...(env.loadAvgEnd ?? [])) > env.cores * 0.5;
  const parts: string[] = [];
  parts.push(`# koa-locked-session benchmarks — ${env.date.slice(0, 10)} on ${env.host}`);
  parts.push('');
  if (o.quick) parts.push('> **Quick run** (`--quick`): one short round, for a smoke check only. Do not quote these numbers.\n');
  if (busy) parts.push(`> **Noisy machine**: load average ${load} on ${env.cores} cores while this ran. Treat the numbers as rough.\n`);
  if (data.generator !== 'wrk')
    parts.push(
      '> **wrk was not installed**: autocannon drove the load. It saturates its own core near 10k req/s, so bare Koa and the fast variants are capped by the client and every ratio is squeezed toward 1.\n',
    );
  parts.push(
    `Generated by \`npm run bench\` (\`benchmarks/run.ts\`). Every variant serves the same four routes in its own process; ${data.generator === 'wrk' ? 'wrk (one thread, Lua script `lib/wrk.lua`) drives them from another process, except a hot session with client-side cookies, which needs a cookie jar (autocannon, marked in the table)' : 'autocannon drives them from another process'}; ` +
      'each scenario is run for every variant in each round (variants in rotating order), and the tables show medians over rounds. ' +
      '**× bare Koa** and **× floor** are req/s ratios to bare Koa and to the raw floor of each row’s backend (Redis GET+SET; for the PostgreSQL rows one SELECT + one UPDATE, `raw-pg`) measured in the same round, then the median over rounds.',
  );
  parts.push('');
  parts.push('## Setup');
  parts.push('');
  parts.push('| | |');
  parts.push('| --- | --- |');
  parts.push(`| Node | ${env.node} (V8 ${env.v8}) |`);
  parts.push(`| OS / CPU | ${env.os}; ${env.cpu}; ${env.cores} cores; ${env.memoryGb} GB |`);
  parts.push(`| Load average (1/5/15 min) | ${load} |`);
  parts.push(`| Pinning | ${data.pinning} |`);
  parts.push(`| Load generator | ${data.generator} |`);
  parts.push(`| Rounds / duration / warm-up | ${o.rounds} × ${o.durationS} s, ${o.warmupS} s warm-up each |`);
  parts.push(`| Connections / users / processes | ${o.connections} / ${o.users} / ${o.processes} |`);
  parts.push(`| Children | ${data.childrenVia}; a fresh app process per measurement |`);
  parts.push(`| Commit | ${env.git} |`);
  parts.push(`| Wall time | ${Math.round(data.wallSeconds)} s |`);
  for (const [kind, v] of Object.entries(data.servers)) parts.push(`| ${kind} server | ${v} |`);
  for (const [kind, why] of Object.entries(data.missingServers)) parts.push(`| ${kind} server | **missing**: ${why} |`);
  parts.push('');
  parts.push(
    `Packages: ${Object.entries(env.packages)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
  );
  parts.push('');
  parts.push('## Results');
  parts.push('');
  parts.push(`![req/s per scenario and variant](${chartFile})`);
  parts.push('');
  for (const scenario of data.scenarios) {
    const scenarioRows = rows.filter((r) => r.scenario.id === scenario.id);
    if (!scenarioRows.length) continue;
    parts.push(`### ${scenario.title}`);
    parts.push('');
    parts.push(scenario.description);
    parts.push('');
    parts.push(scenarioTable(scenarioRows));
    parts.push('');
  }
  const ceiling = rows.find((r) => r.variant.id === CEILING && r.rps !== undefined);
  const bare = rows.find((r) => r.variant.id === BARE && r.scenario.id === ceiling?.scenario.id && r.rps !== undefined);
  if (ceiling && bare) {
    parts.push('## Load generator ceiling');
    parts.push('');
    parts.push(
      `On the app's core, the load generator drives a bare \`node:http\` listener at **${num(ceiling.rps)} req/s** and bare Koa at **${num(bare.rps)} req/s** ` +
        `(${ratio(bare.rps! / ceiling.rps!)} of it), on the ${ceiling.scenario.title.replace(/^\d+\.\s*/, '').toLowerCase()} scenario. ` +
        (bare.rps! < ceiling.rps! * 0.8
          ? 'Bare Koa is limited by Koa, not by the client.'
          : "**Bare Koa is close to the ceiling: either the client or the machine (other load on the app's core) is the limit; compare CPU µs per request below.**"),
    );
    if (ceiling.generatorCpuUs !== undefined && bare.cpuUs !== undefined) {
      parts.push('');
      parts.push(
        `CPU per request: the load generator spends **${ceiling.generatorCpuUs.toFixed(1)} µs** per response (its own CPU, measured), bare Koa **${bare.cpuUs.toFixed(1)} µs**, ` +
          `the node:http listener ${ceiling.cpuUs?.toFixed(1) ?? '—'} µs. On equal cores the client could drive ${(bare.cpuUs / ceiling.generatorCpuUs).toFixed(1)}× what bare Koa can serve.`,
      );
    }
    parts.push('');
  }
  if (data.comparison) {
    parts.push('## Before / after (targets)');
    parts.push('');
    parts.push(data.comparison);
    parts.push('');
  }
  if (data.profiles) {
    parts.push('## CPU profiles (app side, measured windows only)');
    parts.push('');
    parts.push(
      'Self time per function (the frame on top of the stack), summed over rounds, divided by the requests served while profiling. The app ran unbundled under tsx for this, so frames keep their files; the profiler itself costs some throughput, so the req/s of a `--cpu-prof` run are not for quoting.',
    );
    parts.push('');
    parts.push(data.profiles);
    parts.push('');
  }
  parts.push('## Targets (reported, not enforced)');
  parts.push('');
  parts.push(
    "Issue 23's ratio targets (the number is its item), each by req/s and by CPU, then the guarantees. **CPU µs/req**: ours (for a ratio: ours / the other), median over rounds.",
  );
  parts.push('');
  parts.push('| target | measured | CPU µs/req | met |');
  parts.push('| --- | --- | ---: | :---: |');
  for (const t of checkTargets(rows, data.measurements))
    parts.push(`| ${t.target} | ${t.measured} | ${t.cpu} | ${t.met === undefined ? '—' : t.met ? '✅' : '❌'} |`);
  parts.push('');
  const skipped = Object.entries(data.skipped);
  if (skipped.length) {
    parts.push('## Not measured');
    parts.push('');
    for (const [id, why] of skipped) parts.push(`- \`${id}\`: ${why}`);
    parts.push('');
  }
  parts.push('## Variants');
  parts.push('');
  for (const v of data.variants) parts.push(`- **${v.label}** (\`${v.id}\`): ${v.description}`);
  parts.push('');
  parts.push('## How to read');
  parts.push('');
  parts.push(
    [
      "- **req/s** counts 2xx responses only; **p50/p99** are the load generator's latencies (wrk: of every response; autocannon: of 2xx responses). **non-2xx / errors**: responses with a status ≥ 400 as the client saw them, then connection errors; in brackets the non-2xx statuses the app counted (a 503 or 409 is an error, never throughput).",
      '- **CPU µs / req**: user + system CPU time of the app process(es) over the measured window (`process.cpuUsage()`), divided by the requests they served. Unlike req/s it barely depends on what else the machine is running, so it is the steadiest number here on a busy box.',
      "- **Store calls / req**: the store operations the app caused per request in the measured window. Redis: `INFO commandstats` deltas, which include the locker's commands and the commands run *inside* its scripts (so `evalsha 2.00, set 1.00` is two round trips, not three). Memcached: `stats` deltas. MongoDB: driver command monitoring. MemoryStore: a counting subclass. `—`: the variant has no external store (bare Koa, cookie sessions).",
      "- **Longest lock wait, per process** (hot-session scenarios, our variants): the longest time one request of a process waited for the session lock, from asking to holding it (its wait in the process' own queue of the session plus the wait at the locker), from the `koa-locked-session:lock` diagnostics channel, recorded inside each app process over the measured window. With several processes, each process' longest wait is listed (longest first), so one starved process shows; the round shown is the worst one. **lock wait p99**: the 99th percentile of those waits in the process with the largest one. **Lock acquisitions, per process**: how many scopes of each process got the lock in that round, in the same order (a process far below the others is starved too).",
      "- **Lost updates**: in the hot scenarios, the read-modify-write responses the app committed with a 2xx minus the increase of the counter read back afterwards (counted in the app, so requests cut off at the end of a run are still accounted for). The percentage is of one round's acknowledged writes.",
      "- Cookie sessions keep the data in the client: concurrent requests carry the same cookie, so with koa-session's cookie mode the last response wins. Our CookieStore serializes scopes by the stable id inside the cookie and, by default (`recentWrites`), remembers each session's latest write in the process, so within one process a stale cookie still reads the latest data; across processes it cannot (it is not in the many-processes scenario).",
      '- Ratios are taken within a round, then the median is reported, so slow drifts of the machine affect numerator and denominator alike.',
    ].join('\n'),
  );
  parts.push('');
  return parts.join('\n');
}

/** A compact table for the terminal. */
export function renderConsole(rows: Row[]): string {
  const out: string[] = [];
  for (const scenarioId of [...new Set(rows.map((r) => r.scenario.id))]) {
    const scenarioRows = rows.filter((r) => r.scenario.id === scenarioId);
    const waits = showsLockWaits(scenarioRows[0]!.scenario);
    const header = [
      'variant',
      'req/s',
      'p99',
      'cpu µs',
      '×bare',
      '×floor',
      '×floor-nt',
      'calls/req',
      'lost',
      ...(waits ? ['lock wait max (per process)', 'wait p99'] : []),
      'non-2xx',
    ];
    out.push('');
    out.push(scenarioRows[0]!.scenario.title);
    const cells = scenarioRows.map((r) =>
      r.error
        ? [r.variant.label, 'not measured', ...header.slice(2).map(() => '')]
        : [
            r.variant.label,
            num(r.rps),
            ms(r.p99),
            num(r.cpuUs, 1),
            ratio(r.vsBare),
            ratio(r.vsFloor),
            ratio(r.vsFloorNoTimeout),
            formatCalls(r.storeCalls, true),
            r.scenario.countsLostUpdates ? (r.lost === undefined ? '—' : num(r.lost)) : '',
            ...(waits ? [formatLongestWait(r.lockWaits), formatWaitP99(r.lockWaits)] : []),
            `${r.non2xx}${statusCell(r)}`,
          ],
    );
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
    const line = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ');
    out.push(line(header));
    out.push(widths.map((w) => '─'.repeat(w)).join('  '));
    for (const c of cells) out.push(line(c));
  }
  return out.join('\n');
}
