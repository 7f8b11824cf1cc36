/**
 * Command-line flags of `npm run bench`. `--quick` changes defaults (any
 * explicit flag wins over it) and trims the many-processes scenario.
 */
import { parseArgs } from 'node:util';

export interface BenchOptions {
  quick: boolean;
  /** Interleaved rounds; medians are taken over them. */
  rounds: number;
  /** Seconds of load per measurement. */
  durationS: number;
  /** Seconds of load before each measurement (results discarded). */
  warmupS: number;
  /** Concurrent connections (the hot scenarios always use this many on one session). */
  connections: number;
  /** Pre-created sessions in the many-users scenarios. */
  users: number;
  /** Processes in the many-processes scenario. */
  processes: number;
  /** Filter terms (variant or scenario ids, substrings), or empty for everything. */
  only: string[];
  /** Directory of the report, chart and JSON. */
  outDir: string;
  /** Pin app and load generator to different cores with taskset. */
  pin: boolean;
  /** Always include bare Koa (and the raw-Redis floor when Redis is used) so ratios exist. */
  baselines: boolean;
  /** Flush servers found through REDIS_URL/MEMCACHED_URL/MONGO_URL too (ours are always flushed). */
  flushExternal: boolean;
  /** Write a CPU profile of each measured window (app side) next to the report. */
  cpuProf: boolean;
  /** A saved run's JSON to compare the targets with (before/after table). */
  before?: string;
  /** Print variants and scenarios, then exit. */
  list: boolean;
  help: boolean;
}

export const USAGE = `Usage: npm run bench -- [flags]

  --quick              smoke run (under 2 minutes): 1 round, short warm-up and runs, 100 users;
                       the many-processes scenario only for the floor and ours on Redis
  --only <terms>       comma-separated variant or scenario ids (substrings), e.g.
                       --only ours-redis,rmw   or   --only ours,peer   or   --only hot
                       or the preset --only targets: exactly the pairs the targets of issues
                       12 and 13 are stated on, compared with benchmarks/results/2026-11-26-after.json;
                       --only hot-targets: just the hot-session pairs of it (1 and 4 processes, the
                       handoff / group-commit ladder, Memcached and MongoDB with RedisLocker);
                       --only plain: the plainSession() view (lock 'request' and 'merge') beside
                       the handle and koa-session + koa-redis (rmw, read, hot session);
                       --only passport: koa-passport + passport-local (log in, then the protected
                       page) on koa-session + koa-redis and on the view, beside the handle (rmw, hot)
  --duration <s>       seconds of load per measurement      (default 5, quick 0.5; wrk rounds to
                       whole seconds, at least 1)
  --warmup <s>         seconds of warm-up per measurement   (default 2, quick 0.15; 0 = none)
  --rounds <n>         interleaved rounds, medians over them (default 3, quick 1)
  --connections <n>    concurrent connections                (default 50)
  --users <n>          sessions in the many-users scenarios  (default 1000, quick 100)
  --processes <n>      processes in the many-processes scenario (default 4)
  --out <dir>          where the report goes                 (default benchmarks/results)
  --no-pin             do not pin with taskset
  --no-baselines       do not add bare Koa / the raw Redis floor to a filtered run
  --flush-external     also flush servers given by REDIS_URL / MEMCACHED_URL / MONGO_URL
  --cpu-prof           write a .cpuprofile of the app during each measured window (app run
                       unbundled) and print its top self-time items, grouped (our code,
                       node-redis, koa, GC, ...), in µs per request
  --before <file.json> print the before/after table of the targets against a saved run
                       (a preset compares with benchmarks/results/2026-11-26-after.json by default)
  --list               list variants and scenarios
  -h, --help           this text
`;

function positive(name: string, raw: string | undefined, fallback: number, integer: boolean): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new TypeError(`bench: Expected --${name} to be a positive ${integer ? 'integer' : 'number'}, got \`${raw}\``);
  }
  return value;
}

export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    allowPositionals: false,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      connections: { type: 'string' },
      users: { type: 'string' },
      processes: { type: 'string' },
      out: { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      'no-baselines': { type: 'boolean', default: false },
      'flush-external': { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      before: { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const quick = values.quick ?? false;
  return {
    quick,
    rounds: positive('rounds', values.rounds, quick ? 1 : 3, true),
    durationS: positive('duration', values.duration, quick ? 0.5 : 5, false),
    warmupS: values.warmup === '0' ? 0 : positive('warmup', values.warmup, quick ? 0.15 : 2, false),
    connections: positive('connections', values.connections, 50, true),
    users: positive('users', values.users, quick ? 100 : 1000, true),
    processes: positive('processes', values.processes, 4, true),
    only: (values.only ?? [])
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter(Boolean),
    outDir: values.out ?? 'benchmarks/results',
    pin: !(values['no-pin'] ?? false),
    baselines: !(values['no-baselines'] ?? false),
    flushExternal: values['flush-external'] ?? false,
    cpuProf: values['cpu-prof'] ?? false,
    ...(values.before ? { before: values.before } : {}),
    list: values.list ?? false,
    help: values.help ?? false,
  };
}
