/** What the report records about the machine and the software under test. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, hostname, loadavg, release, type as osType, totalmem } from 'node:os';
import { join } from 'node:path';

export interface Environment {
  date: string;
  host: string;
  node: string;
  v8: string;
  os: string;
  cpu: string;
  cores: number;
  memoryGb: number;
  loadAvgStart: number[];
  loadAvgEnd?: number[];
  git: string;
  packages: Record<string, string>;
}

/** Packages whose version the report lists (ours first). */
const PACKAGES = [
  'koa',
  'koa-session',
  'koa-generic-session',
  'koa-redis',
  'koa-passport',
  'passport',
  'passport-local',
  'express',
  'express-session',
  'connect-redis',
  'redis',
  'ioredis',
  'memcached',
  'mongodb',
  'autocannon',
  'tsx',
  'esbuild',
];

function version(root: string, name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

function git(root: string): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return `${sha}${dirty ? ' + uncommitted changes in src/' : ''}`;
  } catch {
    return 'unknown';
  }
}

export function collectEnvironment(root: string): Environment {
  const own = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string };
  const packages: Record<string, string> = { [own.name]: `${own.version} (this checkout)` };
  for (const name of PACKAGES) {
    const v = version(root, name);
    if (v) packages[name] = v;
  }
  const now = new Date();
  return {
    date: now.toISOString(),
    host: hostname(),
    node: process.version,
    v8: process.versions.v8,
    os: `${osType()} ${release()}`,
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    // All cores of the machine (availableParallelism() would see our own taskset affinity).
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    loadAvgStart: loadavg().map((x) => Math.round(x * 100) / 100),
    git: git(root),
    packages,
  };
}

/** `YYYY-MM-DD` in local time, for the report's file name. */
export function localDate(date = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}
