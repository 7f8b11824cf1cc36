/**
 * `npm run bench`: every store of koa-locked-session and the peers a user would
 * pick instead, through the same scenarios, in one run.
 *
 * For each round, each scenario and each variant (in an order that rotates
 * from round to round) the harness:
 *  1. empties the servers the variant uses;
 *  2. starts the variant's app in a fresh child process (`benchmarks/app.ts`),
 *     pinned to its own core;
 *  3. creates the scenario's sessions, warms up, reads the counter, snapshots
 *     the store counters, runs wrk (autocannon when wrk is missing, or for a
 *     run that must follow cookies) from the load-generator child (on another
 *     core), waits for the app to settle, snapshots again, reads the counter
 *     back;
 *  4. stops the app.
 * Then it writes `benchmarks/results/<date>-<host>.md` (+ `.svg`, `.json`) and
 * prints the table. See `--help` for the flags.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs, USAGE, type BenchOptions } from './lib/args.js';
import { buildEntrypoints } from './lib/build.js';
import { renderChart } from './lib/chart.js';
import { AppChild, choosePinning, LoadGenerator, pinPid, type Pinning } from './lib/children.js';
import { snapshot, storeCalls } from './lib/counters.js';
import { collectEnvironment, localDate } from './lib/env.js';
import { Progress } from './lib/progress.js';
import { BARE, buildRows, FLOOR, FLOOR_NO_TIMEOUT, renderConsole, renderMarkdown, type Measurement, type RunData } from './lib/report.js';
import { flushServer, startServers, type BenchServers } from './lib/servers.js';
import type { CookieMode, Scenario, VariantInfo } from './lib/types.js';
import { loadRun, renderComparison } from './lib/compare.js';
import { PRESETS } from './lib/presets.js';
import { renderProfile, summarizeProfiles } from './lib/profile.js';
import { SCENARIOS } from './scenarios/index.js';
import { VARIANTS } from './variants/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Scenarios and variants picked by `--only` (plus the baselines the ratios need), and the pairs of a preset. */
function select(options: BenchOptions): {
  scenarios: Scenario[];
  variants: VariantInfo[];
  pairs?: Readonly<Record<string, readonly string[]>>;
} {
  const preset = options.only.length === 1 ? PRESETS[options.only[0]!] : undefined;
  if (preset) {
    const ids = new Set(Object.values(preset).flat());
    return {
      scenarios: SCENARIOS.filter((s) => preset[s.id]?.length),
      variants: VARIANTS.filter((v) => ids.has(v.id)),
      pairs: preset,
    };
  }
  const terms = options.only;
  const groups = new Set(['ours', 'peer', 'peers', 'baseline', 'baselines']);
  const scenarioTerms = terms.filter((t) => SCENARIOS.some((s) => s.id.includes(t)));
  const variantTerms = terms.filter((t) => groups.has(t) || VARIANTS.some((v) => v.id.includes(t)));
  const unknown = terms.filter((t) => !scenarioTerms.includes(t) && !variantTerms.includes(t));
  if (unknown.length) {
    throw new TypeError(
      `bench: --only ${unknown.map((t) => `\`${t}\``).join(', ')} matches no variant or scenario. ` +
        `Variants: ${VARIANTS.map((v) => v.id).join(', ')} (or ours, peers, baselines). Scenarios: ${SCENARIOS.map((s) => s.id).join(', ')}.`,
    );
  }
  const scenarios = scenarioTerms.length ? SCENARIOS.filter((s) => scenarioTerms.some((t) => s.id.includes(t))) : [...SCENARIOS];
  const matches = (v: VariantInfo, t: string) => v.id.includes(t) || v.group === t || `${v.group}s` === t;
  let variants = variantTerms.length ? VARIANTS.filter((v) => variantTerms.some((t) => matches(v, t))) : [...VARIANTS];
  if (variantTerms.length && options.baselines) {
    const wanted = new Set(variants.map((v) => v.id));
    wanted.add(BARE);
    if (variants.some((v) => v.needs.includes('redis'))) {
      wanted.add(FLOOR);
      wanted.add(FLOOR_NO_TIMEOUT);
    }
    // Rows measured against another backend's floor (PostgreSQL: raw-pg) bring that floor along.
    for (const v of variants) if (v.floor) wanted.add(v.floor);
    variants = VARIANTS.filter((v) => wanted.has(v.id));
  }
  return { scenarios, variants };
}

interface Step {
  round: number;
  scenario: Scenario;
  variant: VariantInfo;
  weight: number;
}

/** `--quick` keeps the many-processes scenario to these (a cluster start costs seconds), unless a preset names its pairs. */
const QUICK_PROCESSES = new Set([FLOOR, 'ours-redis', 'ours-redis-memlock']);

function plan(
  options: BenchOptions,
  scenarios: Scenario[],
  variants: VariantInfo[],
  pairs?: Readonly<Record<string, readonly string[]>>,
): Step[] {
  const steps: Step[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    for (const scenario of scenarios) {
      const list = variants.filter(
        (v) =>
          scenario.accepts(v) &&
          (!v.onlyScenarios || v.onlyScenarios.includes(scenario.id)) &&
          (!pairs || pairs[scenario.id]?.includes(v.id)) &&
          !(options.quick && !pairs && scenario.processes === 'many' && !QUICK_PROCESSES.has(v.id)),
      );
      // Round-robin: each round starts one variant further, so no variant is always first (or last).
      const shift = list.length ? (round - 1) % list.length : 0;
      const rotated = [...list.slice(shift), ...list.slice(0, shift)];
      for (const variant of rotated) {
        const processes = scenario.processes === 'many' ? options.processes : 1;
        const setup = scenario.sessions === 'users' ? options.users / 1500 : 0.1;
        steps.push({ round, scenario, variant, weight: 0.7 + 0.3 * processes + setup + options.warmupS + options.durationS });
      }
    }
  }
  return steps;
}

/** The app of a variant could not start: the variant is dropped for the rest of the run. */
class StartError extends Error {}

interface Context {
  options: BenchOptions;
  /** Profiles written, with the requests served while each was taken. */
  profiles: { scenario: string; variant: string; file: string; requests: number; cpuUs: number }[];
  servers: BenchServers;
  pinning: Pinning;
  appArgv: string[];
  loadgen: LoadGenerator;
  profileDir: string;
}

/** `BENCH_DEBUG=1`: phase timings of each measurement on stderr. */
const debug = process.env.BENCH_DEBUG
  ? (() => {
      let last = Date.now();
      return (phase: string) => {
        const now = Date.now();
        process.stderr.write(`  ${phase} ${now - last} ms\n`);
        last = now;
      };
    })()
  : () => {};

async function measure(ctx: Context, step: Step): Promise<Measurement> {
  const { options, servers, loadgen } = ctx;
  debug('begin');
  const { scenario, variant, round } = step;
  const m: Measurement = { round, scenario: scenario.id, variant: variant.id };
  for (const kind of variant.needs) {
    const server = servers.started.get(kind);
    if (server && (!server.external || options.flushExternal)) await flushServer(kind, server.url);
  }
  const processes = scenario.processes === 'many' ? options.processes : 1;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // Lock waits only where they tell something (one hot session): a subscriber costs every acquire a little.
    BENCH_LOCK_WAITS: scenario.recordsLockWaits ? '1' : '0',
    ...(servers.urls.redis ? { BENCH_REDIS_URL: servers.urls.redis } : {}),
    ...(servers.urls.memcached ? { BENCH_MEMCACHED_URL: servers.urls.memcached } : {}),
    ...(servers.urls.mongo ? { BENCH_MONGO_URL: servers.urls.mongo } : {}),
    ...(servers.urls.postgres ? { BENCH_PG_URL: servers.urls.postgres } : {}),
  };
  debug('flush');
  const app = await AppChild.start({ nodeArgv: ctx.appArgv, variant: variant.id, processes, cores: ctx.pinning.app, env }).catch(
    (error: Error) => {
      throw new StartError(error.message);
    },
  );
  debug('app start');
  try {
    const url = app.url;
    let cookies: CookieMode = { kind: 'none' };
    if (scenario.sessions !== 'none') {
      const count = scenario.sessions === 'users' ? options.users : 1;
      const login = variant.seed === 'login';
      const path = login ? '/login' : '/fresh';
      const made = await loadgen.run({ kind: 'sessions', url, path, login, count, concurrency: Math.min(16, count) });
      if (made.failures) m.setupFailures = made.failures;
      cookies = scenario.cookies === 'jar' ? { kind: 'jar', cookie: made.cookies[0] ?? '' } : { kind: 'pool', cookies: made.cookies };
    }
    debug('sessions');
    // wrk cannot keep a cookie jar: a client-side session shared by every connection needs autocannon.
    const followCookies = cookies.kind === 'jar' && variant.clientSide === true;
    const job = { kind: 'load' as const, url, path: scenario.path, connections: options.connections, followCookies };
    if (options.warmupS > 0) {
      const warm = await loadgen.run({ ...job, durationS: options.warmupS, cookies });
      if (cookies.kind === 'jar' && warm.cookie !== undefined) cookies = { kind: 'jar', cookie: warm.cookie };
    }
    debug('warm-up');
    await app.quiesce();
    debug('quiesce');
    const initial =
      scenario.countsLostUpdates && cookies.kind === 'jar' ? await loadgen.run({ kind: 'read', url, cookie: cookies.cookie }) : undefined;
    const appBefore = await app.stats({ resetLockWaits: true });
    const serverBefore = await snapshot(variant.counting, servers.urls, variant.lockerCounting);
    const profile = options.cpuProf ? join(ctx.profileDir, `${variant.id}.${scenario.id}.r${round}.%p.cpuprofile`) : undefined;
    debug('read + snapshots');
    if (profile) app.profileStart();
    m.load = await loadgen.run({ ...job, durationS: options.durationS, cookies });
    if (profile) app.profileStop(profile);
    debug('load');
    const appAfter = await app.quiesce();
    const serverAfter = await snapshot(variant.counting, servers.urls, variant.lockerCounting);
    const calls = storeCalls(variant.counting, { before: serverBefore, after: serverAfter }, { before: appBefore, after: appAfter });
    if (calls) m.storeCalls = calls;
    m.appRequests = appAfter.requests - appBefore.requests;
    if (appAfter.cpuUs !== undefined && appBefore.cpuUs !== undefined && m.appRequests > 0)
      m.cpuUsPerRequest = (appAfter.cpuUs - appBefore.cpuUs) / m.appRequests;
    const statuses: Record<string, number> = {};
    for (const [status, n] of Object.entries(appAfter.non2xx ?? {})) {
      const d = n - (appBefore.non2xx?.[status] ?? 0);
      if (d > 0) statuses[status] = d;
    }
    if (Object.keys(statuses).length) m.non2xxByStatus = statuses;
    if (appAfter.lockWaits?.length) m.lockWaits = appAfter.lockWaits;
    if (profile) {
      const cpuUs =
        appAfter.cpuUs !== undefined && appBefore.cpuUs !== undefined ? (appAfter.cpuUs - appBefore.cpuUs) / app.pids.length : 0;
      for (const pid of app.pids) {
        ctx.profiles.push({
          scenario: scenario.id,
          variant: variant.id,
          file: profile.replace('%p', String(pid)),
          requests: m.appRequests / app.pids.length,
          cpuUs,
        });
      }
    }
    if (scenario.countsLostUpdates) {
      m.acked = appAfter.rmwOk - appBefore.rmwOk;
      const cookie = m.load.cookie ?? (cookies.kind === 'jar' ? cookies.cookie : '');
      const final = await loadgen.run({ kind: 'read', url, cookie });
      if (initial?.count !== undefined && final.count !== undefined) {
        m.counterDelta = final.count - initial.count;
        m.lost = m.acked - m.counterDelta;
      }
    }
    if (profile) await new Promise((r) => setTimeout(r, 300)); // let the profile file land before the app stops
  } finally {
    debug('after');
    await app.stop();
    debug('stop');
  }
  return m;
}

async function main(): Promise<number> {
  const options = parseBenchArgs(process.argv.slice(2));
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (options.list) {
    process.stdout.write('Variants:\n');
    for (const v of VARIANTS) process.stdout.write(`  ${v.id.padEnd(26)} ${v.group.padEnd(9)} ${v.description}\n`);
    process.stdout.write('Scenarios:\n');
    for (const s of SCENARIOS) process.stdout.write(`  ${s.id.padEnd(26)} ${s.title}\n`);
    return 0;
  }
  const started = Date.now();
  const { scenarios, variants, pairs } = select(options);
  // A preset (`--only targets`, `--only hot-targets`) compares with the committed "before" run unless told otherwise.
  const beforeFile = options.before ?? (pairs && existsSync(join(root, DEFAULT_BEFORE)) ? join(root, DEFAULT_BEFORE) : undefined);
  const before = beforeFile ? await loadRun(beforeFile) : undefined;
  const env = collectEnvironment(root);
  const pinning = choosePinning(options.pin);
  // The harness itself sits with the load generator, off the app's core.
  if (pinning.enabled) pinPid(process.pid, pinning.loadgen);

  const needs = new Set(variants.flatMap((v) => v.needs));
  if (needs.size) process.stderr.write(`bench: starting ${[...needs].join(', ')}…\n`);
  const servers = await startServers(needs, pinning);
  const skipped: Record<string, string> = {};
  for (const v of variants) {
    const missing = v.needs.filter((k) => servers.missing.has(k));
    if (missing.length) skipped[v.id] = missing.map((k) => servers.missing.get(k)).join('; ');
  }
  await skipRejectedOptions(variants, skipped);

  const entry = await buildEntrypoints(root);
  const loadgen = await LoadGenerator.start(entry.loadgen, pinning.loadgen, {
    ...process.env,
    BENCH_WRK_SCRIPT: join(root, 'benchmarks/lib/wrk.lua'),
  });
  if (!loadgen.wrk) {
    process.stderr.write(
      '\nbench: ***** wrk is NOT installed: falling back to autocannon, which saturates its own core near 10k req/s *****\n' +
        'bench: ***** and so caps bare Koa and squeezes every ratio toward 1. Install it (Debian: apt-get install wrk). *****\n\n',
    );
  }
  const outDir = resolve(process.cwd(), options.outDir);
  // Flat in the results dir: .gitignore already ignores benchmarks/results/*.cpuprofile.
  const profileDir = outDir;
  if (options.cpuProf) await mkdir(profileDir, { recursive: true });

  let interrupted = false;
  const cleanup = async (): Promise<void> => {
    await loadgen.stop().catch(() => {});
    await servers.stop();
    await entry.cleanup();
  };
  onFailure = cleanup;
  process.once('SIGINT', () => {
    interrupted = true;
    process.stderr.write('\nbench: interrupted, stopping children and servers…\n');
    void cleanup().finally(() => process.exit(130));
  });

  const steps = plan(options, scenarios, variants, pairs).filter((s) => !skipped[s.variant.id]);
  const progress = new Progress(
    steps.length,
    steps.reduce((n, s) => n + s.weight, 0),
  );
  // Profiled apps run unbundled (tsx), so each frame keeps its file: src/…, node_modules/koa/…
  const appArgv = options.cpuProf ? ['--import', 'tsx', join(root, 'benchmarks/app.ts')] : entry.app;
  const ctx: Context = { options, servers, pinning, appArgv, loadgen, profileDir, profiles: [] };
  const measurements: Measurement[] = [];
  for (const step of steps) {
    if (interrupted) break;
    const label = `round ${step.round}/${options.rounds} · ${step.scenario.id} · ${step.variant.id}`;
    if (skipped[step.variant.id]) {
      measurements.push({ round: step.round, scenario: step.scenario.id, variant: step.variant.id, error: skipped[step.variant.id]! });
      continue;
    }
    progress.begin(label, step.weight);
    const t0 = Date.now();
    try {
      const m = await measure(ctx, step);
      if (m.setupFailures) progress.log(`bench: ${label}: ${m.setupFailures} session(s) could not be created`);
      measurements.push({ ...m, wallMs: Date.now() - t0 });
    } catch (error) {
      const message = (error as Error).message.split('\n')[0] ?? String(error);
      measurements.push({ round: step.round, scenario: step.scenario.id, variant: step.variant.id, error: message });
      progress.log(`bench: ${label}: ${message}`);
      // A variant that cannot start (e.g. an export not there yet) is dropped for the rest of the run.
      if (error instanceof StartError) skipped[step.variant.id] ??= message;
    }
    progress.end();
  }
  progress.finish();

  await cleanup();

  env.loadAvgEnd = (await import('node:os')).loadavg().map((x) => Math.round(x * 100) / 100);
  const data: RunData = {
    env,
    options,
    pinning: pinning.note,
    childrenVia: entry.how,
    servers: Object.fromEntries(servers.versions),
    missingServers: Object.fromEntries(servers.missing),
    skipped,
    scenarios,
    variants,
    measurements,
    wallSeconds: (Date.now() - started) / 1000,
    generator: loadgen.wrk ? 'wrk' : 'autocannon (wrk missing)',
  };
  if (options.cpuProf) data.profiles = await profileSections(ctx.profiles);
  if (before && beforeFile) data.comparison = renderComparison(before, { measurements, env, options }, relative(root, beforeFile));
  const rows = buildRows(data);
  const partial = options.only.length ? '-partial' : '';
  const base = `${localDate()}-${hostname()}${options.quick ? '-quick' : partial}`;
  await mkdir(outDir, { recursive: true });
  const svgName = `${base}.svg`;
  await writeFile(
    join(outDir, svgName),
    renderChart(rows, `koa-locked-session — req/s, ${env.date.slice(0, 10)}, ${env.host}${options.quick ? ' (quick)' : ''}`),
  );
  await writeFile(join(outDir, `${base}.md`), renderMarkdown(data, rows, svgName));
  await writeFile(
    join(outDir, `${base}.json`),
    `${JSON.stringify({ ...data, scenarios: scenarios.map((s) => s.id), variants: variants.map((v) => v.id) }, null, 2)}\n`,
  );
  process.stdout.write(`${renderConsole(rows)}\n\n`);
  if (data.profiles) process.stdout.write(`${data.profiles}\n\n`);
  if (data.comparison) process.stdout.write(`Before / after (targets):\n\n${data.comparison}\n\n`);
  if (!loadgen.wrk) process.stdout.write('WARNING: wrk was not installed; autocannon drove the load and capped the fast variants.\n');
  const rel = (f: string) => {
    const path = relative(process.cwd(), join(outDir, f));
    return path.startsWith('..') ? join(outDir, f) : path;
  };
  process.stdout.write(`Report: ${rel(`${base}.md`)}\nChart:  ${rel(svgName)}\nData:   ${rel(`${base}.json`)}\n`);
  if (Object.keys(skipped).length) {
    process.stdout.write(
      `Not measured: ${Object.entries(skipped)
        .map(([k, v]) => `${k} (${v})`)
        .join('; ')}\n`,
    );
  }
  return interrupted ? 130 : 0;
}

/**
 * Variants passing session() options the code under test does not take yet
 * (e.g. `groupCommit: false` before group commit lands) are skipped, with
 * session()'s own message as the reason, printed now and listed in the report.
 */
async function skipRejectedOptions(variants: readonly VariantInfo[], skipped: Record<string, string>): Promise<void> {
  const probed = variants.filter((v) => v.sessionOptions && !skipped[v.id]);
  if (!probed.length) return;
  const { rejectedOptions } = await import('./variants/probe.js');
  for (const v of probed) {
    const reason = await rejectedOptions(v.sessionOptions!);
    if (reason === undefined) continue;
    skipped[v.id] = `session() of this code rejects ${JSON.stringify(v.sessionOptions)}: ${reason}`;
    process.stderr.write(`bench: skipping ${v.id}: ${skipped[v.id]}\n`);
  }
}

/** The committed "before" run that the presets (`--only targets`, `--only hot-targets`) compare with by default. */
const DEFAULT_BEFORE = 'benchmarks/results/2026-11-26-after.json';

/** Markdown of the CPU profiles: the many-users RMW and fresh-session routes of every profiled variant, merged over rounds. */
async function profileSections(profiles: Context['profiles']): Promise<string> {
  const parts: string[] = [];
  const keys = [...new Set(profiles.map((p) => `${p.scenario}\u0000${p.variant}`))];
  const order = (scenario: string) => (scenario === 'rmw' ? 0 : scenario === 'fresh' ? 1 : 2);
  keys.splice(0, keys.length, ...keys.filter((k) => order(k.split('\u0000')[0]!) < 2));
  keys.sort((a, b) => order(a.split('\u0000')[0]!) - order(b.split('\u0000')[0]!));
  for (const key of keys) {
    const [scenario, variant] = key.split('\u0000') as [string, string];
    const summary = await summarizeProfiles(profiles.filter((p) => p.scenario === scenario && p.variant === variant));
    const s = SCENARIOS.find((x) => x.id === scenario);
    if (summary)
      parts.push(
        renderProfile(
          `${s?.path ?? scenario} (${s?.title.replace(/^\d+\.\s*/, '').toLowerCase() ?? scenario}) · ${VARIANTS.find((v) => v.id === variant)?.label ?? variant}`,
          summary,
        ),
      );
  }
  return parts.join('\n\n');
}

/** Stops children and servers and removes the bundle if main() throws half-way. */
let onFailure: () => Promise<void> = async () => {};

main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    // Usage errors (TypeError) speak for themselves; anything else gets its stack.
    const text = error instanceof TypeError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(`${text.startsWith('bench:') ? '' : 'bench: '}${text}\n`);
    await onFailure().catch(() => {});
    process.exit(1);
  },
);
