/**
 * Summaries of the app's CPU profiles (`--cpu-prof`): self time per function
 * and per group ("our code", node-redis, Koa, GC, …), in µs per request, so a
 * reader sees where a request's CPU goes without opening DevTools.
 *
 * Self time: each sample is charged to the function on top of the stack.
 * Samples are counted, not their time deltas: V8 samples by wall clock, and
 * on a busy machine a delta also holds the time the process was descheduled,
 * which would land on whatever frame happened to run next. Each group's share
 * of the (non-idle) samples is then applied to the CPU time the process really
 * used in the window (`process.cpuUsage()`), which gives µs per request.
 * "(program)" is V8/native time no JS frame owns; "(idle)" is the event loop
 * waiting (left out).
 */
import { readFile } from 'node:fs/promises';

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

export type Group =
  | 'our code'
  | 'node-redis'
  | 'koa'
  | 'peer library'
  | 'other package'
  | 'benchmark harness'
  | 'node internals'
  | 'GC'
  | 'V8/native (program)'
  | 'idle';

/** The group a frame belongs to, by its script URL (the app runs unbundled under tsx when profiling). */
export function groupOf(url: string, functionName: string): Group {
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)' || functionName === '(root)') return 'V8/native (program)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
  if (pkg) {
    if (pkg === 'redis' || pkg.startsWith('@redis/') || pkg === 'cluster-key-slot') return 'node-redis';
    if (
      /^(koa|koa-compose|koa-convert|cookies|keygrip|tsscmp|delegates|on-finished|ee-first|statuses|http-errors|http-assert|content-type|content-disposition|cache-content-type|type-is|mime-types|mime-db|accepts|negotiator|vary|fresh|encodeurl|escape-html|destroy|depd|only|parseurl)$/.test(
        pkg,
      )
    )
      return 'koa';
    if (/^(koa-session|koa-redis|koa-generic-session|ioredis|@ioredis\/.*|express|express-session|connect-redis)$/.test(pkg))
      return 'peer library';
    return 'other package';
  }
  if (/\/src\/[^/]+/.test(url)) return 'our code';
  if (/\/benchmarks\//.test(url)) return 'benchmark harness';
  return 'node internals';
}

/** A URL made short and machine-independent: the part from `src/`, `node_modules/…` or `node:` on. */
export function shortUrl(url: string): string {
  if (!url) return '';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const m = /\/((?:src|benchmarks|test)\/.*)$/.exec(url);
  if (m) return m[1]!;
  return url.replace(/^file:\/\/.*\//, '');
}

export interface ProfileSummary {
  /** Profiles merged. */
  profiles: number;
  /** Requests the app served while profiling (the measured windows). */
  requests: number;
  /** CPU time of the app in the profiled windows (`process.cpuUsage()`), µs. */
  busyUs: number;
  /** Non-idle samples. */
  samples: number;
  groups: { group: Group; us: number }[];
  top: { name: string; group: Group; us: number }[];
}

export async function summarizeProfiles(
  files: readonly { file: string; requests: number; cpuUs: number }[],
  topN = 15,
): Promise<ProfileSummary | undefined> {
  const byGroup = new Map<Group, number>();
  const byFunction = new Map<string, { group: Group; us: number }>();
  let requests = 0;
  let profiles = 0;
  let cpuUs = 0;
  for (const { file, requests: n, cpuUs: used } of files) {
    let profile: CpuProfile;
    try {
      profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
    } catch {
      continue; // a profile that did not land is left out, not guessed
    }
    profiles++;
    requests += n;
    cpuUs += used;
    const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
    const self = new Map<number, number>();
    for (let i = 0; i < profile.samples.length; i++) {
      const id = profile.samples[i]!;
      self.set(id, (self.get(id) ?? 0) + 1);
    }
    for (const [id, us] of self) {
      const frame = nodes.get(id)?.callFrame;
      if (!frame) continue;
      const group = groupOf(frame.url, frame.functionName);
      byGroup.set(group, (byGroup.get(group) ?? 0) + us);
      if (group === 'idle') continue;
      const where = shortUrl(frame.url);
      // tsx's transform does not keep our files' line numbers: name + file is what is reliable there.
      const line = where.startsWith('src/') ? '' : `:${frame.lineNumber + 1}`;
      const name = `${frame.functionName || '(anonymous)'}${where ? ` ${where}${line}` : ''}`;
      const entry = byFunction.get(name) ?? { group, us: 0 };
      entry.us += us;
      byFunction.set(name, entry);
    }
  }
  if (!profiles || requests <= 0) return undefined;
  // Counts so far; scaled to µs of measured CPU below.
  const samples = [...byGroup].filter(([g]) => g !== 'idle').reduce((n, [, c]) => n + c, 0);
  if (!samples) return undefined;
  const scale = cpuUs / samples;
  return {
    profiles,
    requests,
    busyUs: cpuUs,
    samples,
    groups: [...byGroup]
      .filter(([g]) => g !== 'idle')
      .map(([group, c]) => ({ group, us: c * scale }))
      .sort((a, b) => b.us - a.us),
    top: [...byFunction]
      .map(([name, v]) => ({ name, group: v.group, us: v.us * scale }))
      .sort((a, b) => b.us - a.us)
      .slice(0, topN),
  };
}

/** Markdown of one summary: CPU per request, the groups, the top functions by self time. */
export function renderProfile(title: string, s: ProfileSummary): string {
  const per = (us: number) => (us / s.requests).toFixed(1);
  const pct = (us: number) => `${((us / s.busyUs) * 100).toFixed(1)} %`;
  const lines = [
    `#### ${title}`,
    '',
    `${per(s.busyUs)} µs of CPU per request (process.cpuUsage, profiler included; ${s.requests.toLocaleString('en-US')} requests, ${s.samples.toLocaleString('en-US')} samples, ${s.profiles} profile${s.profiles === 1 ? '' : 's'}).`,
    '',
    '| group | µs / req | share |',
    '| --- | ---: | ---: |',
    ...s.groups.map((g) => `| ${g.group} | ${per(g.us)} | ${pct(g.us)} |`),
    '',
    '| function (self time) | group | µs / req | share |',
    '| --- | --- | ---: | ---: |',
    ...s.top.map((f) => `| \`${f.name.replace(/\|/g, '\\|')}\` | ${f.group} | ${per(f.us)} | ${pct(f.us)} |`),
  ];
  return lines.join('\n');
}
