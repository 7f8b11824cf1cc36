/**
 * The before/after table of the targets (issues 12 and 13): the same metrics
 * computed from a saved run (`--before <file.json>`, the JSON `npm run bench`
 * writes next to its report) and from this run. Ratios are taken within a
 * round and then the median, as in the report, so the two columns compare like
 * with like even when the machine's speed differs between the two runs.
 */
import { readFile } from 'node:fs/promises';
import { mergeStoreCalls } from './counters.js';
import type { Measurement } from './report.js';
import { max, median } from './stats.js';
import { formatLongestWait, formatWaitP99, longestWait, worstLockWaits, worstP99 } from './lock-wait-report.js';
import type { ScenarioId } from './types.js';

/** The part of a run's data the comparison needs (the saved JSON has more). */
export interface SavedRun {
  env: { date: string; git: string; host: string };
  options?: { rounds: number; durationS: number; warmupS: number; users: number; connections: number };
  measurements: Measurement[];
}

export async function loadRun(file: string): Promise<SavedRun> {
  const data = JSON.parse(await readFile(file, 'utf8')) as SavedRun;
  if (!Array.isArray(data.measurements)) throw new TypeError(`bench: --before ${file} is not a bench data file (no measurements)`);
  return data;
}

/**
 * `cpu`: CPU µs per request. `cpuRatio`: the `vs` variant's CPU per request ÷
 * this one's, per round, median: the req/s ratio a CPU-bound app would reach on
 * a core of its own, which a busy shared machine disturbs far less than req/s.
 */
/**
 * `lockWait`: the longest time a request waited for the session lock, worst
 * round, shown per process (`812 (812 · 140 · 130 · 120)`) so a starved
 * process shows; `lockWaitP99`: the p99 of the waits in the worst process.
 */
type Kind = 'ratio' | 'cpuRatio' | 'rps' | 'cpu' | 'p99' | 'lost' | 'lostShare' | 'calls' | 'lockWait' | 'lockWaitP99';

interface Metric {
  label: string;
  scenario: ScenarioId;
  variant: string;
  kind: Kind;
  /** For ratios: the denominator variant (same scenario, same round). */
  vs?: string;
  /** Target, as text, and its check. */
  target?: string;
  met?: (x: number) => boolean;
}

const atLeast = (t: number) => (x: number) => x >= t;

export const METRICS: readonly Metric[] = [
  { label: 'load generator ceiling: node:http req/s', scenario: 'untouched', variant: 'node-http', kind: 'rps' },
  { label: 'bare Koa req/s (untouched route)', scenario: 'untouched', variant: 'bare-koa', kind: 'rps' },
  {
    label: 'bare Koa ÷ node:http (≪ 1: Koa, not wrk, is the limit)',
    scenario: 'untouched',
    variant: 'bare-koa',
    vs: 'node-http',
    kind: 'ratio',
  },
  { label: 'bare Koa CPU µs/req (untouched route)', scenario: 'untouched', variant: 'bare-koa', kind: 'cpu' },
  {
    label: 'many users RMW, RedisStore+RedisLocker × raw floor',
    scenario: 'rmw',
    variant: 'ours-redis',
    vs: 'raw-redis',
    kind: 'ratio',
    target: '≥ 0.85×',
    met: atLeast(0.85),
  },
  {
    label: 'many users RMW, RedisStore+RedisLocker × raw floor, no cmd timeout',
    scenario: 'rmw',
    variant: 'ours-redis',
    vs: 'raw-redis-notimeout',
    kind: 'ratio',
  },
  {
    label: 'many users RMW, RedisStore+RedisLocker ÷ koa-session+koa-redis',
    scenario: 'rmw',
    variant: 'ours-redis',
    vs: 'koa-session-redis',
    kind: 'ratio',
    target: '> 1×',
    met: (x) => x > 1,
  },
  {
    label: 'many users RMW, RedisStore+RedisLocker ÷ koa-generic-session',
    scenario: 'rmw',
    variant: 'ours-redis',
    vs: 'koa-generic-session',
    kind: 'ratio',
  },
  { label: 'many users RMW, RedisStore+RedisLocker req/s', scenario: 'rmw', variant: 'ours-redis', kind: 'rps' },
  {
    label: 'many users RMW, RedisStore+RedisLocker × raw floor, by CPU µs/req',
    scenario: 'rmw',
    variant: 'ours-redis',
    vs: 'raw-redis',
    kind: 'cpuRatio',
    target: '≥ 0.85×',
    met: atLeast(0.85),
  },
  {
    label: 'many users RMW, RedisStore+RedisLocker × raw floor no cmd timeout, by CPU',
    scenario: 'rmw',
    variant: 'ours-redis',
    vs: 'raw-redis-notimeout',
    kind: 'cpuRatio',
  },
  {
    label: 'many users RMW, RedisStore+RedisLocker ÷ koa-session+koa-redis, by CPU',
    scenario: 'rmw',
    variant: 'ours-redis',
    vs: 'koa-session-redis',
    kind: 'cpuRatio',
    target: '> 1×',
    met: (x) => x > 1,
  },
  { label: 'many users RMW, RedisStore+RedisLocker CPU µs/req', scenario: 'rmw', variant: 'ours-redis', kind: 'cpu' },
  { label: 'many users RMW, raw floor CPU µs/req', scenario: 'rmw', variant: 'raw-redis', kind: 'cpu' },
  { label: 'many users RMW, raw floor no cmd timeout CPU µs/req', scenario: 'rmw', variant: 'raw-redis-notimeout', kind: 'cpu' },
  {
    label: 'many users read-only, MemoryStore × bare Koa',
    scenario: 'read',
    variant: 'ours-memory',
    vs: 'bare-koa',
    kind: 'ratio',
    target: '≥ 0.85×',
    met: atLeast(0.85),
  },
  {
    label: 'many users read-only, MemoryStore × bare Koa, by CPU',
    scenario: 'read',
    variant: 'ours-memory',
    vs: 'bare-koa',
    kind: 'cpuRatio',
    target: '≥ 0.85×',
    met: atLeast(0.85),
  },
  { label: 'many users read-only, RedisStore × raw floor', scenario: 'read', variant: 'ours-redis', vs: 'raw-redis', kind: 'ratio' },
  {
    label: 'fresh sessions, MemoryStore ÷ koa-session cookie mode',
    scenario: 'fresh',
    variant: 'ours-memory',
    vs: 'koa-session-cookie',
    kind: 'ratio',
    target: '≥ 1×',
    met: atLeast(1),
  },
  {
    label: 'fresh sessions, MemoryStore ÷ koa-session cookie mode, by CPU',
    scenario: 'fresh',
    variant: 'ours-memory',
    vs: 'koa-session-cookie',
    kind: 'cpuRatio',
    target: '≥ 1×',
    met: atLeast(1),
  },
  { label: 'fresh sessions, MemoryStore CPU µs/req', scenario: 'fresh', variant: 'ours-memory', kind: 'cpu' },
  { label: 'fresh sessions, RedisStore × raw floor', scenario: 'fresh', variant: 'ours-redis', vs: 'raw-redis', kind: 'ratio' },
  {
    label: 'fresh sessions, RedisStore × raw floor, no cmd timeout',
    scenario: 'fresh',
    variant: 'ours-redis',
    vs: 'raw-redis-notimeout',
    kind: 'ratio',
  },
  {
    label: 'RMW, CookieStore ÷ koa-session cookie mode',
    scenario: 'rmw',
    variant: 'ours-cookie',
    vs: 'koa-session-cookie',
    kind: 'ratio',
    target: '≥ 1×',
    met: atLeast(1),
  },
  {
    label: 'RMW, CookieStore ÷ koa-session cookie mode, by CPU',
    scenario: 'rmw',
    variant: 'ours-cookie',
    vs: 'koa-session-cookie',
    kind: 'cpuRatio',
    target: '≥ 1×',
    met: atLeast(1),
  },
  { label: 'RMW, CookieStore CPU µs/req', scenario: 'rmw', variant: 'ours-cookie', kind: 'cpu' },
  {
    label: 'untouched route, MemoryStore × bare Koa',
    scenario: 'untouched',
    variant: 'ours-memory',
    vs: 'bare-koa',
    kind: 'ratio',
    target: '≥ 0.98×',
    met: atLeast(0.98),
  },
  {
    label: 'untouched route, MemoryStore store calls / req',
    scenario: 'untouched',
    variant: 'ours-memory',
    kind: 'calls',
    target: '0',
    met: (x) => x < 0.005,
  },
  { label: 'many users read-only, RedisStore CPU µs/req', scenario: 'read', variant: 'ours-redis', kind: 'cpu' },
  { label: 'fresh sessions, RedisStore CPU µs/req', scenario: 'fresh', variant: 'ours-redis', kind: 'cpu' },
  ...hotMetrics(),
];

/**
 * The hot-session metrics (issue 13 item 5): one process against the raw
 * GET+SET floor, four processes against koa-session + koa-redis, each with
 * p99, Redis (or store + locker) commands per request and the longest lock
 * wait per process; for the ladder (handoff off → handoff, group commit off →
 * the defaults) and the Memcached / MongoDB masters with RedisLocker.
 */
function hotMetrics(): Metric[] {
  const ours = [
    { id: 'ours-redis', label: 'RedisStore+RedisLocker' },
    { id: 'ours-redis-nohandoff', label: 'RedisStore+RedisLocker, handoff off' },
    { id: 'ours-redis-nogroupcommit', label: 'RedisStore+RedisLocker, group commit off' },
  ];
  const zero = { target: '0', met: (x: number) => x === 0 };
  const one: Metric[] = [];
  for (const { id, label } of ours) {
    const at = (what: string) => `hot session, 1 process, ${label} ${what}`;
    const main = id === 'ours-redis';
    one.push(
      {
        label: at('× raw floor'),
        scenario: 'hot',
        variant: id,
        vs: 'raw-redis',
        kind: 'ratio',
        ...(main ? { target: '≥ 1×', met: atLeast(1) } : {}),
      },
      ...(main
        ? [{ label: at('× raw floor, no cmd timeout'), scenario: 'hot', variant: id, vs: 'raw-redis-notimeout', kind: 'ratio' } as const]
        : []),
      { label: at('req/s'), scenario: 'hot', variant: id, kind: 'rps' },
      ...(main ? [{ label: at('CPU µs/req'), scenario: 'hot', variant: id, kind: 'cpu' } as const] : []),
      { label: at('p99 ms'), scenario: 'hot', variant: id, kind: 'p99' },
      { label: at('lost updates'), scenario: 'hot', variant: id, kind: 'lost', ...zero },
      { label: at('Redis commands / req'), scenario: 'hot', variant: id, kind: 'calls' },
      { label: at('longest lock wait ms'), scenario: 'hot', variant: id, kind: 'lockWait' },
    );
  }
  one.push(
    {
      label: 'hot session, 1 process, koa-session+koa-redis × raw floor',
      scenario: 'hot',
      variant: 'koa-session-redis',
      vs: 'raw-redis',
      kind: 'ratio',
    },
    { label: 'hot session, 1 process, koa-session+koa-redis p99 ms', scenario: 'hot', variant: 'koa-session-redis', kind: 'p99' },
    {
      label: 'hot session, 1 process, koa-session+koa-redis lost updates (share of its acked, worst round)',
      scenario: 'hot',
      variant: 'koa-session-redis',
      kind: 'lostShare',
    },
  );
  const four: Metric[] = [];
  const many = [
    ...ours,
    { id: 'ours-memcached-redislock', label: 'MemcachedStore+RedisLocker' },
    { id: 'ours-mongo-redislock', label: 'MongoStore+RedisLocker' },
  ];
  for (const { id, label } of many) {
    const at = (what: string) => `hot session, 4 processes, ${label} ${what}`;
    const commands = id.startsWith('ours-redis') ? 'Redis commands / req' : 'store + locker commands / req';
    four.push(
      { label: at('req/s'), scenario: 'processes', variant: id, kind: 'rps' },
      {
        label: at('÷ koa-session+koa-redis'),
        scenario: 'processes',
        variant: id,
        vs: 'koa-session-redis',
        kind: 'ratio',
        target: '≥ 1×',
        met: atLeast(1),
      },
      { label: at('p99 ms'), scenario: 'processes', variant: id, kind: 'p99' },
      { label: at('lost updates'), scenario: 'processes', variant: id, kind: 'lost', ...zero },
      { label: at(commands), scenario: 'processes', variant: id, kind: 'calls' },
      { label: at('longest lock wait ms, per process'), scenario: 'processes', variant: id, kind: 'lockWait' },
      { label: at('lock wait p99 ms, worst process'), scenario: 'processes', variant: id, kind: 'lockWaitP99' },
    );
  }
  four.push(
    { label: 'hot session, 4 processes, koa-session+koa-redis p99 ms', scenario: 'processes', variant: 'koa-session-redis', kind: 'p99' },
    {
      label: 'hot session, 4 processes, koa-session+koa-redis lost updates (share of its acked, worst round)',
      scenario: 'processes',
      variant: 'koa-session-redis',
      kind: 'lostShare',
    },
  );
  return [...one, ...four];
}

/** One metric's value in one run, or undefined when the run lacks it. */
export function metricValue(run: { measurements: readonly Measurement[] }, metric: Metric): number | undefined {
  const ms = run.measurements.filter((m) => m.scenario === metric.scenario && m.variant === metric.variant && m.load);
  if (!ms.length) return undefined;
  switch (metric.kind) {
    case 'rps':
      return median(ms.map((m) => m.load!.rps));
    case 'p99':
      return median(ms.map((m) => m.load!.p99));
    case 'cpu':
      return median(ms.map((m) => m.cpuUsPerRequest));
    case 'cpuRatio': {
      const ratios = ms.map((m) => {
        const base = run.measurements.find((b) => b.round === m.round && b.scenario === m.scenario && b.variant === metric.vs && b.load);
        return base?.cpuUsPerRequest && m.cpuUsPerRequest ? base.cpuUsPerRequest / m.cpuUsPerRequest : undefined;
      });
      return median(ratios);
    }
    case 'lost':
      return max(ms.map((m) => m.lost));
    case 'lostShare':
      return max(ms.map((m) => (m.lost !== undefined && m.acked ? m.lost / m.acked : undefined)));
    case 'calls':
      return mergeStoreCalls(ms.map((m) => m.storeCalls))?.total;
    case 'lockWait':
    case 'lockWaitP99': {
      const worst = worstLockWaits(ms);
      if (!worst) return undefined;
      return metric.kind === 'lockWait' ? longestWait(worst) : worstP99(worst);
    }
    case 'ratio': {
      const ratios = ms.map((m) => {
        const base = run.measurements.find((b) => b.round === m.round && b.scenario === m.scenario && b.variant === metric.vs && b.load);
        return base?.load && base.load.rps > 0 ? m.load!.rps / base.load.rps : undefined;
      });
      return median(ratios);
    }
  }
}

export function format(kind: Kind, x: number | undefined): string {
  if (x === undefined) return '—';
  switch (kind) {
    case 'ratio':
    case 'cpuRatio':
      return `${x.toFixed(2)}×`;
    case 'cpu':
      return x.toFixed(1);
    case 'rps':
      return Math.round(x).toLocaleString('en-US');
    case 'p99':
    case 'lockWait':
    case 'lockWaitP99':
      return `${Number(x.toFixed(2))}`;
    case 'lost':
      return String(x);
    case 'lostShare':
      return `${(x * 100).toFixed(1)} %`;
    case 'calls':
      return x.toFixed(2);
  }
}

/** A metric's table cell: its value, with the per-process split for `lockWait`. */
function metricCell(run: { measurements: readonly Measurement[] }, metric: Metric, value: number | undefined): string {
  if (value === undefined) return '—';
  const ms = () => run.measurements.filter((m) => m.scenario === metric.scenario && m.variant === metric.variant && m.load);
  if (metric.kind === 'lockWait') return formatLongestWait(worstLockWaits(ms()));
  if (metric.kind === 'lockWaitP99') return formatWaitP99(worstLockWaits(ms()));
  return format(metric.kind, value);
}

/** Markdown table: metric, target, before, after, after ÷ before, target met (after). */
export function renderComparison(before: SavedRun, after: Pick<SavedRun, 'measurements' | 'env' | 'options'>, beforeName: string): string {
  const setting = (r: Pick<SavedRun, 'options'>) =>
    r.options
      ? `${r.options.rounds} × ${r.options.durationS} s, ${r.options.warmupS} s warm-up, ${r.options.users} users, ${r.options.connections} connections`
      : 'settings unknown';
  const same = setting(before) === setting(after);
  const lines = [
    `Before: \`${beforeName}\` (${before.env.git}; ${setting(before)}); after: this run (${after.env.git}; ${setting(after)}). Ratios are medians of per-round ratios within each run.`,
    ...(same || !before.options || !after.options
      ? []
      : [
          '',
          `> **Different settings**: short or unwarmed runs inflate CPU per request (JIT warm-up) and shift ratios; rerun with the before's durations (\`--duration ${before.options.durationS} --warmup ${before.options.warmupS}\`) to compare.`,
        ]),
    '',
    '| metric | target | before | after | after ÷ before | met (after) |',
    '| --- | --- | ---: | ---: | ---: | :---: |',
  ];
  for (const metric of METRICS) {
    // Only what this run set out to measure (`--only hot-targets` leaves the many-users rows out).
    if (!after.measurements.some((m) => m.scenario === metric.scenario && m.variant === metric.variant)) continue;
    const b = metricValue(before, metric);
    const a = metricValue(after, metric);
    if (a === undefined && b === undefined) continue;
    const change =
      a !== undefined && b !== undefined && b !== 0 && metric.kind !== 'lost' && metric.kind !== 'lostShare' && metric.kind !== 'calls'
        ? `${(a / b).toFixed(2)}×`
        : '';
    // (for `cpu`, `p99` and the lock waits, lower is better: after ÷ before < 1 is the gain)
    const met = !metric.met || a === undefined ? '' : metric.met(a) ? '✅' : '❌';
    lines.push(
      `| ${metric.label} | ${metric.target ?? ''} | ${metricCell(before, metric, b)} | ${metricCell(after, metric, a)} | ${change} | ${met} |`,
    );
  }
  return lines.join('\n');
}
