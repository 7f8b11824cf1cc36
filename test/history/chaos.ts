/**
 * `npm run chaos`: the history workload at length, every configuration (or
 * one), printing a table of operations checked, faults injected and anomalies
 * found, and the smallest counterexample of any failing run. Exits 1 on an
 * anomaly.
 *
 *   npm run chaos -- --seconds 60 --config redis --seed 7 --processes 6
 *
 * Flags: `--seconds N` (per configuration, default 30), `--config NAME`
 * (repeatable or comma separated; default all: redis, redis-cluster, redis-sentinel,
 * memcached, mongo, postgres, memory), `--seed N` (default: random, printed),
 * `--processes N` (4–8 app processes, default 4), `--verbose` (print each fault),
 * `--lease-ms`, `--store-timeout`, `--lock-timeout` (ms; default 1000, 500, 3000).
 */
import { parseArgs } from 'node:util';
import { CONFIGS, type ConfigName } from './backends.js';
import { FAULTS, faultCount, runHistory, type RunReport } from './workload.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    config: { type: 'string', multiple: true },
    seed: { type: 'string' },
    processes: { type: 'string', default: '4' },
    verbose: { type: 'boolean', default: false },
    'lease-ms': { type: 'string', default: '1000' },
    'store-timeout': { type: 'string', default: '500' },
    'lock-timeout': { type: 'string', default: '3000' },
  },
});
const seconds = Number(values.seconds);
const processes = Number(values.processes);
const timings = {
  leaseMs: Number(values['lease-ms']),
  storeTimeout: Number(values['store-timeout']),
  lockTimeout: Number(values['lock-timeout']),
};
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const configs = (values.config ?? [...CONFIGS])
  .flatMap((c) => c.split(','))
  .map((c) => c.trim())
  .filter(Boolean);
const unknown = configs.filter((c) => !(CONFIGS as readonly string[]).includes(c));
if (!(seconds > 0) || !Number.isInteger(seed) || !(processes >= 1) || unknown.length || !Object.values(timings).every((ms) => ms > 0)) {
  console.error(
    `usage: npm run chaos -- [--seconds N] [--config ${CONFIGS.join('|')}]… [--seed N] [--processes N] [--verbose] [--lease-ms N] [--store-timeout N] [--lock-timeout N]${unknown.length ? `\nunknown config: ${unknown.join(', ')}` : ''}`,
  );
  process.exit(2);
}

console.log(
  `chaos: ${configs.join(', ')}; ${seconds} s each; seed ${seed}; ${processes} processes; lease ${timings.leaseMs} ms, storeTimeout ${timings.storeTimeout} ms, lockTimeout ${timings.lockTimeout} ms`,
);
const rows: Array<RunReport | { config: string; skip: string }> = [];
for (const config of configs as ConfigName[]) {
  console.log(`\n== ${config}`);
  const report = await runHistory({
    config,
    seconds,
    seed,
    processes,
    timings,
    log: values.verbose ? (line) => console.log(`  ${line}`) : undefined,
  });
  if ('skip' in report) {
    rows.push({ config, skip: report.skip });
    console.log(`  skipped: ${report.skip}`);
    continue;
  }
  rows.push(report);
  const { counts } = report.result;
  console.log(
    `  ${report.durationS.toFixed(0)} s, ${counts.ops} ops, ${faultCount(report)} faults (${FAULTS.map((k) => `${k} ${report.faults[k]}`).join(', ')}), ${report.handoffs} acked appends by lease handoff, ${report.masterWrites} master writes for ${report.result.counts.appends.ok} acked appends (${report.carried} carried by a batch), ${report.result.anomalies.length} anomalies`,
  );
  if (report.counterexample)
    console.log(`  SMALLEST COUNTEREXAMPLE (seed ${seed}, config ${config}):\n${report.counterexample.replace(/^/gm, '    ')}`);
}

const header = [
  'config',
  'wall s',
  'ops checked',
  'appends ok/unknown/failed',
  'by handoff',
  'master writes',
  'carried',
  'reads ok',
  'final list',
  'faults (pause/holder, kill, restart, delay, partition, cut)',
  'anomalies',
];
const table = rows.map((r) => {
  if ('skip' in r) return [r.config, '', 'skipped', '', '', '', '', '', '', '', r.skip];
  const { counts } = r.result;
  const f = r.faults;
  return [
    r.config,
    r.durationS.toFixed(0),
    String(counts.ops),
    `${counts.appends.ok}/${counts.appends.unknown} (${counts.unknownApplied} landed)/${counts.appends.failed}`,
    String(r.handoffs),
    String(r.masterWrites),
    String(r.carried),
    String(counts.reads.ok),
    String(counts.finalLength),
    `${faultCount(r)} (${f.pause}/${r.pausedHolders}, ${f.kill}, ${f.restart}, ${f.delay}, ${f.partition}, ${f.cut})`,
    String(r.result.anomalies.length),
  ];
});
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(
  `\nseed ${seed}, ${seconds} s per configuration\n${line(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${table.map(line).join('\n')}`,
);
const failed = rows.some((r) => !('skip' in r) && !r.result.valid);
process.exit(failed ? 1 : 0);
