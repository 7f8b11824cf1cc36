/**
 * The before/after table of the targets (issue 23, lib/targets.ts): the same metrics
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
import { METRICS, type Kind, type Metric } from './targets.js';
import type { LockWaits } from './types.js';

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

/** One metric's value in one run, or undefined when the run lacks it. */
export function metricValue(run: { measurements: readonly Measurement[] }, metric: Metric): number | undefined {
  const ms = run.measurements.filter((m) => m.scenario === metric.scenario && m.variant === metric.variant && m.load);
  if (!ms.length) return undefined;
  switch (metric.kind) {
    case 'turnsPerS':
      return median(ms.map(turnsPerSecond));
    case 'requestsPerTurn':
      return median(ms.map(requestsPerTurn));
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

/** The leases all processes of a round took from the locker (undefined: not counted, e.g. a run before the counter). */
function turnsOf(waits: readonly LockWaits[] | undefined): number | undefined {
  if (!waits?.length || waits.some((w) => w.turns === undefined)) return undefined;
  return waits.reduce((n, w) => n + w.turns!, 0);
}

/** One round's leases from the locker per second of load (undefined: not counted). */
export function turnsPerSecond(m: Pick<Measurement, 'lockWaits' | 'load'>): number | undefined {
  const turns = turnsOf(m.lockWaits);
  return turns === undefined || !m.load || !(m.load.durationS > 0) ? undefined : turns / m.load.durationS;
}

/** One round's requests served per lease from the locker (undefined: not counted, or no lease taken). */
export function requestsPerTurn(m: Pick<Measurement, 'lockWaits' | 'appRequests'>): number | undefined {
  const turns = turnsOf(m.lockWaits);
  return turns && m.appRequests !== undefined ? m.appRequests / turns : undefined;
}

/** Median CPU µs per request of one variant in one scenario. */
function cpuOf(run: { measurements: readonly Measurement[] }, scenario: string, variant: string): number | undefined {
  return median(run.measurements.filter((m) => m.scenario === scenario && m.variant === variant && m.load).map((m) => m.cpuUsPerRequest));
}

/**
 * The CPU µs per request behind a metric row (issue 23: "CPU µs per request in
 * every row"): the row's variant, and for a ratio the other one too (`44.1 / 28.0`).
 */
export function cpuCell(run: { measurements: readonly Measurement[] }, metric: Metric): string {
  const text = (x: number | undefined) => (x === undefined ? '—' : x.toFixed(1));
  const own = cpuOf(run, metric.scenario, metric.variant);
  if (metric.vs && (metric.kind === 'ratio' || metric.kind === 'cpuRatio')) {
    const other = cpuOf(run, metric.scenario, metric.vs);
    return own === undefined && other === undefined ? '—' : `${text(own)} / ${text(other)}`;
  }
  return text(own);
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
    case 'turnsPerS':
      return Math.round(x).toLocaleString('en-US');
    case 'requestsPerTurn':
      return x.toFixed(2);
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
export function metricCell(run: { measurements: readonly Measurement[] }, metric: Metric, value: number | undefined): string {
  if (value === undefined) return '—';
  const ms = () => run.measurements.filter((m) => m.scenario === metric.scenario && m.variant === metric.variant && m.load);
  if (metric.kind === 'lockWait') return formatLongestWait(worstLockWaits(ms()));
  if (metric.kind === 'lockWaitP99') return formatWaitP99(worstLockWaits(ms()));
  return format(metric.kind, value);
}

/** Why a metric has no value in a run: its variant (or the ratio's other one) was not measured, or the counter is absent. */
export function missingReason(run: { measurements: readonly Measurement[] }, metric: Metric): string {
  const failed = (variant: string) => {
    const ms = run.measurements.filter((m) => m.scenario === metric.scenario && m.variant === variant);
    return ms.length > 0 && ms.every((m) => !m.load) ? (ms.find((m) => m.error)?.error ?? 'no load result') : undefined;
  };
  const own = failed(metric.variant);
  if (own) return `— (not measured: ${own.replace(/\|/g, '\\|').slice(0, 80)})`;
  if (metric.vs && !run.measurements.some((m) => m.scenario === metric.scenario && m.variant === metric.vs && m.load))
    return `— (no \`${metric.vs}\` in this run)`;
  return '—';
}

/** Markdown table: item, metric, target, before, after, after ÷ before, target met (after), CPU µs/req before and after. */
export function renderComparison(before: SavedRun, after: Pick<SavedRun, 'measurements' | 'env' | 'options'>, beforeName: string): string {
  const setting = (r: Pick<SavedRun, 'options'>) =>
    r.options
      ? `${r.options.rounds} × ${r.options.durationS} s, ${r.options.warmupS} s warm-up, ${r.options.users} users, ${r.options.connections} connections`
      : 'settings unknown';
  const same = setting(before) === setting(after);
  const lines = [
    `Before: \`${beforeName}\` (${before.env.git}; ${setting(before)}); after: this run (${after.env.git}; ${setting(after)}). Ratios are medians of per-round ratios within each run. **#**: the item of issue 23 (0: context). **CPU µs/req**: median of the row's variant (for a ratio, this one / the other); lower is better. A row the before run lacks shows —.`,
    ...(same || !before.options || !after.options
      ? []
      : [
          '',
          `> **Different settings**: short or unwarmed runs inflate CPU per request (JIT warm-up) and shift ratios; rerun with the before's durations (\`--duration ${before.options.durationS} --warmup ${before.options.warmupS}\`) to compare.`,
        ]),
    '',
    '| # | metric | target | before | after | after ÷ before | met (after) | CPU µs/req before | CPU µs/req after |',
    '| ---: | --- | --- | ---: | ---: | ---: | :---: | ---: | ---: |',
  ];
  for (const metric of METRICS) {
    // Only what this run set out to measure (`--only hot-targets` leaves the many-users rows out).
    if (!after.measurements.some((m) => m.scenario === metric.scenario && m.variant === metric.variant)) continue;
    const b = metricValue(before, metric);
    const a = metricValue(after, metric);
    const change =
      a !== undefined && b !== undefined && b !== 0 && metric.kind !== 'lost' && metric.kind !== 'lostShare' && metric.kind !== 'calls'
        ? `${(a / b).toFixed(2)}×`
        : '';
    // (for `cpu`, `p99` and the lock waits, lower is better: after ÷ before < 1 is the gain)
    const met = !metric.met || a === undefined ? '' : metric.met(a) ? '✅' : '❌';
    const afterCell = a === undefined ? missingReason(after, metric) : metricCell(after, metric, a);
    lines.push(
      `| ${metric.item} | ${metric.label} | ${metric.target ?? ''} | ${metricCell(before, metric, b)} | ${afterCell} | ${change} | ${met} | ${cpuCell(before, metric)} | ${cpuCell(after, metric)} |`,
    );
  }
  return lines.join('\n');
}
