/**
 * How close does a *locked* read-modify-write on Redis come to the unlocked
 * floor (one GET + one SET)? Many users (a pool of sessions, a random one per
 * request), `/rmw` increments a counter; autocannon drives each variant, served
 * by its own child process; the report gives req/s (median of the runs), Redis
 * commands (round trips) per request, counted in the app child, and the ratio
 * to the raw floor.
 *
 * | variant            | per request                                                        |
 * | ------------------ | ------------------------------------------------------------------ |
 * | `raw`              | `GET`, `SET PX` (no lock, unsigned cookie): the floor              |
 * | `lua-floor`        | hand-written: acquire+read script, write+release script (no lib)   |
 * | `ours-fast`        | session() + RedisStore + RedisLocker on one client: acquire+read script, fenced write script, release script |
 * | `ours-two-clients` | the same on two clients (no fast path): acquire, GET, SET, release |
 * | `ours-memory`      | session() + RedisStore + MemoryLocker (one process only): GET, SET |
 *
 * On loopback the run is CPU-bound (app, Redis and load generator share the
 * cores), so round trips barely show; `--latency <ms>` puts a delaying TCP proxy
 * between the apps and Redis (each direction delayed by half of it), which makes
 * the run round-trip-bound as over a real network.
 *
 * Standalone: `npx tsx benchmarks/probes/redis-fastpath.ts [--duration 5] [--runs 3] [--connections 32] [--sessions 500] [--latency 0] [--only raw,ours-fast]`
 * (uses `REDIS_URL`, else starts a redis-server). A one-off probe, not part of
 * `npm run bench`; importable as `runRedisFastpath` / `formatRedisFastpath`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export type FastpathVariant = 'raw' | 'lua-floor' | 'ours-fast' | 'ours-two-clients' | 'ours-memory';

export const FASTPATH_VARIANTS: Record<FastpathVariant, string> = {
  raw: 'raw GET + SET (no lock): the floor',
  'lua-floor': 'hand-written lock: acquire+read, write+release (2 scripts)',
  'ours-fast': 'RedisStore + RedisLocker, one client (fast path + fencing)',
  'ours-two-clients': 'RedisStore + RedisLocker, two clients (no fast path)',
  'ours-memory': 'RedisStore + MemoryLocker (one process only)',
};

export interface FastpathOptions {
  /** Redis to use (a fresh, otherwise idle server gives the cleanest numbers). */
  redisUrl: string;
  /** Seconds per measured run. @default 5 */
  durationSec?: number;
  /** Measured runs per variant (the median is reported). @default 3 */
  runs?: number;
  /** Concurrent HTTP connections. @default 32 */
  connections?: number;
  /** Sessions in the pool. @default 500 */
  sessions?: number;
  /** Variants to run. @default all */
  variants?: FastpathVariant[];
  /** Added round-trip latency between the apps and Redis, in ms (a delaying loopback proxy). @default 0 */
  latencyMs?: number;
}

export interface FastpathRow {
  variant: FastpathVariant;
  label: string;
  /** req/s of each run. */
  runs: number[];
  median: number;
  /** Redis commands sent per request (client side: a script is one command, one round trip). */
  commandsPerRequest: number;
  /** Non-2xx responses over all runs (should be 0). */
  errors: number;
}

export interface FastpathResult {
  rows: FastpathRow[];
  /** `ours-fast` median / `raw` median (undefined if either did not run). */
  ratio: number | undefined;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

// ---------------------------------------------------------------------------
// The app child: one variant, on a free loopback port.

/** Commands sent by this app child (round trips: pipelining aside, one each). */
let sent = 0;
const COMMANDS = new Set(['get', 'set', 'del', 'pExpire', 'evalSha', 'eval', 'sendCommand']);

/** The node-redis client seen through a proxy that counts commands, also through `withCommandOptions` views. */
function counted<T extends object>(target: T): T {
  return new Proxy(target, {
    get(obj, prop) {
      const value = Reflect.get(obj, prop, obj) as unknown;
      if (typeof value !== 'function') return value;
      const fn = value as (...a: unknown[]) => unknown;
      if (typeof prop === 'string' && COMMANDS.has(prop)) return (...args: unknown[]) => (sent++, fn.apply(obj, args));
      if (prop === 'withCommandOptions') return (...args: unknown[]) => counted(fn.apply(obj, args) as object);
      return fn.bind(obj);
    },
  });
}

async function serve(variant: FastpathVariant, redisUrl: string): Promise<void> {
  const [{ default: Koa }, { createClient }] = await Promise.all([import('koa'), import('redis')]);
  const plain = createClient({ url: redisUrl });
  plain.on('error', () => {});
  await plain.connect();
  const client = counted(plain);
  process.on('message', (m: { type?: string }) => m?.type === 'count' && process.send!({ type: 'count', sent }));
  const ttl = 3_600_000;
  const app = new Koa();
  app.keys = ['benchmark key, not a secret'];
  app.silent = true;

  if (variant === 'raw' || variant === 'lua-floor') {
    const ACQUIRE_READ = `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, redis.call('GET', KEYS[2])} end return {0}`;
    const WRITE_RELEASE = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) redis.call('DEL', KEYS[1]) return 1`;
    const shas = new Map([ACQUIRE_READ, WRITE_RELEASE].map((src) => [src, createHash('sha1').update(src).digest('hex')]));
    const run = async (script: string, keys: string[], args: string[]): Promise<unknown> => {
      try {
        return await client.evalSha(shas.get(script)!, { keys, arguments: args });
      } catch (error) {
        if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
        return client.eval(script, { keys, arguments: args });
      }
    };
    app.use(async (ctx) => {
      const cookie = ctx.cookies.get('sid', { signed: false });
      const sid = cookie && /^[A-Za-z0-9_-]{43}$/.test(cookie) ? cookie : undefined;
      const key = `bench:{${sid ?? ''}}`;
      let count = 1;
      if (!sid) {
        const id = randomBytes(32).toString('base64url');
        await client.set(`bench:{${id}}`, JSON.stringify({ count }), { expiration: { type: 'PX', value: ttl } });
        ctx.cookies.set('sid', id, { signed: false, httpOnly: true });
      } else if (variant === 'raw') {
        const raw = await client.get(key);
        count = ((raw ? (JSON.parse(raw) as { count?: number }).count : 0) ?? 0) + 1;
        await client.set(key, JSON.stringify({ count }), { expiration: { type: 'PX', value: ttl } });
      } else {
        const token = randomBytes(16).toString('base64url');
        // Uncontended pool: a busy lock is simply retried (never happens with a random pool this size).
        let reply: unknown[];
        do reply = (await run(ACQUIRE_READ, [`bench-lock:{${sid}}`, key], [token, '10000'])) as unknown[];
        while (Number(reply[0]) !== 1);
        const raw = reply[1] as string | null;
        count = ((raw ? (JSON.parse(raw) as { count?: number }).count : 0) ?? 0) + 1;
        await run(WRITE_RELEASE, [`bench-lock:{${sid}}`, key], [token, JSON.stringify({ count }), String(ttl)]);
      }
      ctx.body = { count };
    });
  } else {
    const { session, MemoryLocker } = await import('../../src/index.js');
    const { RedisStore } = await import('../../src/redis/store.js');
    const { RedisLocker } = await import('../../src/redis/locker.js');
    let lockClient = client;
    if (variant === 'ours-two-clients') {
      const second = createClient({ url: redisUrl });
      second.on('error', () => {});
      await second.connect();
      lockClient = counted(second);
    }
    const locker = variant === 'ours-memory' ? new MemoryLocker() : new RedisLocker({ client: lockClient });
    app.use(session({ master: new RedisStore({ client }), locker, ttl }));
    app.use(async (ctx) => {
      const count = await ctx.session.withLock((s: { count?: number }) => (s.count = (s.count ?? 0) + 1));
      ctx.body = { count };
    });
  }

  const server = http.createServer(app.callback());
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------
// The driver.

async function startApp(variant: FastpathVariant, redisUrl: string): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', variant, '--redis', redisUrl], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [message] = (await once(child, 'message')) as [{ port: number }];
  return { child, url: `http://127.0.0.1:${message.port}` };
}

/** Commands the app child has sent so far. */
async function sentBy(child: ChildProcess): Promise<number> {
  const reply = new Promise<number>((resolve) => {
    const onMessage = (m: { type?: string; sent?: number }) => {
      if (m?.type !== 'count') return;
      child.off('message', onMessage);
      resolve(m.sent!);
    };
    child.on('message', onMessage);
  });
  child.send({ type: 'count' });
  return reply;
}

async function stopApp(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.disconnect();
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * A loopback TCP proxy to `target` that delays every chunk by `oneWayMs` in each
 * direction (order kept: equal delays fire in order). Returns its URL and a close function.
 */
async function delayingProxy(targetUrl: string, oneWayMs: number): Promise<{ url: string; close(): Promise<void> }> {
  const net = await import('node:net');
  const target = new URL(targetUrl);
  const sockets = new Set<import('node:net').Socket>();
  const pipeDelayed = (from: import('node:net').Socket, to: import('node:net').Socket) => {
    from.on('data', (chunk) => setTimeout(() => to.writable && to.write(chunk), oneWayMs));
    from.on('close', () => setTimeout(() => to.destroy(), oneWayMs));
    from.on('error', () => {});
  };
  const server = net.createServer((client) => {
    client.setNoDelay(true);
    const upstream = net.connect({ host: target.hostname, port: Number(target.port) });
    upstream.setNoDelay(true);
    sockets.add(client).add(upstream);
    pipeDelayed(client, upstream);
    pipeDelayed(upstream, client);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((ok) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => ok());
      }),
  };
}

/** Run the scenario; progress goes to `log`. */
export async function runRedisFastpath(options: FastpathOptions, log: (line: string) => void = () => {}): Promise<FastpathResult> {
  const { durationSec = 5, runs = 3, connections = 32, sessions = 500, latencyMs = 0 } = options;
  const proxy = latencyMs > 0 ? await delayingProxy(options.redisUrl, latencyMs / 2) : undefined;
  const redisUrl = proxy?.url ?? options.redisUrl;
  try {
    return await measure({ ...options, redisUrl, durationSec, runs, connections, sessions }, log);
  } finally {
    await proxy?.close();
  }
}

async function measure(
  options: FastpathOptions & Required<Pick<FastpathOptions, 'durationSec' | 'runs' | 'connections' | 'sessions'>>,
  log: (line: string) => void,
): Promise<FastpathResult> {
  const { redisUrl, durationSec, runs, connections, sessions } = options;
  const variants = options.variants ?? (Object.keys(FASTPATH_VARIANTS) as FastpathVariant[]);
  const { default: autocannon } = await import('autocannon');
  // Every app runs side by side and the runs are interleaved (run 1 of each
  // variant, then run 2 of each…), so drift on a shared machine hits all alike.
  const apps = new Map<FastpathVariant, { child: ChildProcess; url: string; pool: string[] }>();
  const rows = new Map<FastpathVariant, FastpathRow & { commands: number; requests: number }>();
  try {
    for (const variant of variants) {
      const app = await startApp(variant, redisUrl);
      // The session pool: one request without a cookie creates each session.
      const pool: string[] = [];
      apps.set(variant, { ...app, pool });
      for (let i = 0; i < sessions; i += 50) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(50, sessions - i) }, async () => {
            const res = await fetch(`${app.url}/rmw`);
            await res.arrayBuffer();
            return res.headers
              .getSetCookie()
              .map((c) => c.split(';')[0])
              .join('; ');
          }),
        );
        pool.push(...batch);
      }
      rows.set(variant, {
        variant,
        label: FASTPATH_VARIANTS[variant],
        runs: [],
        median: 0,
        commandsPerRequest: 0,
        errors: 0,
        commands: 0,
        requests: 0,
      });
    }
    const load = (variant: FastpathVariant, duration: number) => {
      const { url, pool } = apps.get(variant)!;
      return autocannon({
        url,
        connections,
        duration,
        requests: [
          {
            method: 'GET',
            path: '/rmw',
            setupRequest: (req) => ({
              ...req,
              headers: { ...req.headers, cookie: pool[Math.floor(Math.random() * pool.length)]! },
            }),
          },
        ],
      });
    };
    for (const variant of variants) await load(variant, 1); // warm-up (JIT, connections, script cache)
    for (let r = 0; r < runs; r++) {
      for (const variant of variants) {
        const { child } = apps.get(variant)!;
        const row = rows.get(variant)!;
        const before = await sentBy(child);
        const result = await load(variant, durationSec);
        row.commands += (await sentBy(child)) - before;
        row.requests += result.requests.total;
        row.errors += result.non2xx + result.errors + result.timeouts;
        row.runs.push(result.requests.average);
        log(`  ${variant} run ${r + 1}/${runs}: ${Math.round(result.requests.average)} req/s`);
      }
    }
  } finally {
    await Promise.all([...apps.values()].map((app) => stopApp(app.child)));
  }
  const list: FastpathRow[] = [...rows.values()].map(({ commands, requests, ...row }) => ({
    ...row,
    median: median(row.runs),
    commandsPerRequest: requests ? commands / requests : NaN,
  }));
  const raw = list.find((r) => r.variant === 'raw');
  const fast = list.find((r) => r.variant === 'ours-fast');
  return { rows: list, ratio: raw && fast ? fast.median / raw.median : undefined };
}

/** A Markdown table of the result. */
export function formatRedisFastpath(result: FastpathResult): string {
  const raw = result.rows.find((r) => r.variant === 'raw');
  const lines = [
    '| variant | req/s (median) | runs | Redis cmds/req | vs raw GET+SET | non-2xx |',
    '| --- | ---: | --- | ---: | ---: | ---: |',
    ...result.rows.map(
      (r) =>
        `| ${r.label} | ${Math.round(r.median)} | ${r.runs.map((x) => Math.round(x)).join(' / ')} | ${r.commandsPerRequest.toFixed(2)} | ${raw ? `${(r.median / raw.median).toFixed(2)}×` : '–'} | ${r.errors} |`,
    ),
  ];
  if (result.ratio !== undefined)
    lines.push('', `Locked read-modify-write (fast path) runs at ${(result.ratio * 100).toFixed(0)}% of the raw GET+SET floor.`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      redis: { type: 'string' },
      duration: { type: 'string', default: '5' },
      runs: { type: 'string', default: '3' },
      connections: { type: 'string', default: '32' },
      sessions: { type: 'string', default: '500' },
      latency: { type: 'string', default: '0' },
      only: { type: 'string' },
    },
  });
  if (values.serve) {
    await serve(values.serve as FastpathVariant, values.redis!);
  } else {
    const { redisServer } = await import('../../test/helpers/servers.js');
    const server = await redisServer();
    if (!server) process.exit(1);
    try {
      const result = await runRedisFastpath(
        {
          redisUrl: server.url,
          durationSec: Number(values.duration),
          runs: Number(values.runs),
          connections: Number(values.connections),
          sessions: Number(values.sessions),
          latencyMs: Number(values.latency),
          ...(values.only ? { variants: values.only.split(',') as FastpathVariant[] } : {}),
        },
        (line) => console.error(line),
      );
      console.log(formatRedisFastpath(result));
    } finally {
      await server.stop();
    }
  }
}
