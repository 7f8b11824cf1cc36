/**
 * Smoke test of the benchmark harness (`npm run bench`): a tiny run on the
 * in-process variants only (MemoryStore and bare Koa, no server needed) must
 * produce a well-formed report, chart and data file. Checks the shape only,
 * never a timing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'benchmarks/run.ts'), ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      // A CI variable would make the progress bar print lines instead; either is fine here.
      env: { ...process.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', fail);
    child.once('exit', (code) => done({ code, stdout, stderr }));
  });
}

test('npm run bench produces a well-formed report (memory variants, tiny durations)', { timeout: 180_000 }, async () => {
  const out = await mkdtemp(join(tmpdir(), 'kls-bench-smoke-'));
  try {
    const { code, stdout, stderr } = await run([
      '--only',
      'ours-memory,bare-koa',
      '--rounds',
      '1',
      '--duration',
      '0.2',
      '--warmup',
      '0',
      '--users',
      '20',
      '--connections',
      '4',
      '--out',
      out,
    ]);
    assert.equal(code, 0, `harness failed:\n${stderr}\n${stdout}`);

    const files = await readdir(out);
    const md = files.find((f) => f.endsWith('.md'));
    const svg = files.find((f) => f.endsWith('.svg'));
    const json = files.find((f) => f.endsWith('.json'));
    assert.ok(md && svg && json, `expected .md, .svg and .json in ${out}, got ${files.join(', ')}`);

    const report = await readFile(join(out, md), 'utf8');
    assert.match(report, /^# koa-locked-session benchmarks — \d{4}-\d{2}-\d{2} on /);
    for (const heading of ['## Setup', '## Results', '## Targets (reported, not enforced)', '## How to read']) {
      assert.ok(report.includes(heading), `report lacks "${heading}"`);
    }
    assert.match(report, /\| Node \| v\d+\./);
    assert.ok(report.includes(`](${svg})`), 'report links its chart');
    // Scenarios 1-5 (6 needs a shared store, so memory variants skip it), each with both rows and a number.
    for (const title of [
      '1. Fresh sessions',
      '2. Many users, read-modify-write',
      '3. Many users, read-only',
      '4. Hot session',
      '5. Untouched route',
    ]) {
      const start = report.indexOf(`### ${title}`);
      assert.ok(start >= 0, `report lacks scenario "${title}"`);
      const next = report.indexOf('\n#', start + 4);
      const section = report.slice(start, next === -1 ? undefined : next);
      assert.match(section, /\| bare Koa \(ceiling\) \| [\d,]+ \|/, `${title}: bare Koa row without req/s`);
      assert.match(section, /\| \*\*ours · MemoryStore\*\* \| [\d,]+ \|/, `${title}: ours row without req/s`);
    }
    assert.ok(!report.includes('### 6.'), 'memory variants cannot run the many-processes scenario');

    const chart = await readFile(join(out, svg), 'utf8');
    assert.match(chart, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(chart.trimEnd(), /<\/svg>$/);
    assert.ok(chart.includes('ours · MemoryStore'));

    const data = JSON.parse(await readFile(join(out, json), 'utf8')) as {
      measurements: {
        variant: string;
        scenario: string;
        error?: string;
        load?: { rps: number };
        storeCalls?: { reads: number; writes: number; total: number };
      }[];
    };
    assert.equal(data.measurements.length, 10, 'one measurement per scenario and variant');
    for (const m of data.measurements) {
      assert.equal(m.error, undefined, `${m.variant}/${m.scenario}: ${m.error}`);
      assert.equal(typeof m.load?.rps, 'number');
    }
    // The MemoryStore's calls are counted (a counter that sees nothing would pass "0 store calls" on the untouched
    // route by itself): each read-only request reads the store once and writes nothing; each increment writes once.
    const calls = (scenario: string) => data.measurements.find((m) => m.variant === 'ours-memory' && m.scenario === scenario)?.storeCalls;
    const read = calls('read');
    assert.ok(read, 'the read-only row of ours · MemoryStore has store calls');
    assert.ok(Math.abs(read.reads - 1) < 0.01 && read.writes === 0, `read-only: ${JSON.stringify(read)}`);
    assert.ok((calls('rmw')?.writes ?? 0) >= 0.99, `read-modify-write: ${JSON.stringify(calls('rmw'))}`);
    assert.equal(calls('untouched')?.total, 0, 'untouched route: zero store calls');
    assert.match(report, /\| Many users, read-only: exactly 1 read, 0 writes, ours · MemoryStore \| [^|]+ \| [\d.]+ \| ✅ \|/);
    // The console table went to stdout.
    assert.match(stdout, /1\. Fresh sessions/);
    assert.match(stdout, /Report: /);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
