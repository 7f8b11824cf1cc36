/**
 * The load generator child: runs wrk (or autocannon, see below), and a few
 * plain HTTP requests for set-up and read-back, on jobs the harness sends over
 * IPC. It runs in its own process, pinned to a different core than the app, so
 * the app's numbers do not include the cost of generating load.
 *
 * wrk is used whenever it is installed, except for a run that must follow
 * `Set-Cookie` (a client-side session shared by all connections), which wrk's
 * Lua cannot do; autocannon drives those, and every run when wrk is missing
 * (the report then says so loudly: autocannon caps near 10k req/s on one core).
 */
import { Agent, request } from 'node:http';
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { wrkAvailable, wrkLoad } from './wrk.js';
import type { LoadCommand, LoadJob, LoadMessage, LoadResult, ReadResult, SessionsResult } from './types.js';

const send = (message: LoadMessage): void => void process.send?.(message);

/** `name=value` pairs of a response's Set-Cookie headers, merged into a jar. */
export function mergeCookies(jar: string, setCookie: string | string[] | undefined): string {
  if (!setCookie) return jar;
  const pairs = new Map<string, string>();
  for (const part of jar.split(/;\s*/)) {
    const eq = part.indexOf('=');
    if (eq > 0) pairs.set(part.slice(0, eq), part.slice(eq + 1));
  }
  for (const header of Array.isArray(setCookie) ? setCookie : [setCookie]) {
    const first = header.split(';', 1)[0] ?? '';
    const eq = first.indexOf('=');
    if (eq <= 0) continue;
    const name = first.slice(0, eq).trim();
    const value = first.slice(eq + 1).trim();
    // An expired/cleared cookie leaves the jar.
    if (value === '' || /;\s*expires=Thu, 01 Jan 1970/i.test(header)) pairs.delete(name);
    else pairs.set(name, value);
  }
  return [...pairs].map(([k, v]) => `${k}=${v}`).join('; ');
}

/** `GET path`, or `POST path` with `json` as its body (the login of the passport workload). */
function get(
  agent: Agent,
  url: string,
  path: string,
  cookie?: string,
  json?: unknown,
): Promise<{ status: number; body: string; setCookie: string[] | undefined }> {
  const payload = json === undefined ? undefined : JSON.stringify(json);
  const method = payload === undefined ? 'GET' : 'POST';
  const headers: Record<string, string> = cookie ? { cookie } : {};
  if (payload !== undefined) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), { agent, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, setCookie: res.headers['set-cookie'] }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Create `count` sessions with `GET path` (or log `count` users in with `POST path`); their cookies. A variant without sessions gets look-alike dummies. */
async function sessions(job: Extract<LoadJob, { kind: 'sessions' }>): Promise<SessionsResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency });
  const cookies: string[] = [];
  let failures = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < job.count) {
      const n = next++;
      try {
        // A login (passport workload): one user per session, u0, u1, …
        const res = await get(agent, job.url, job.path, undefined, job.login ? { username: `u${n}`, password: 'secret' } : undefined);
        if (res.status < 200 || res.status >= 300) failures++;
        const cookie = mergeCookies('', res.setCookie);
        cookies.push(cookie || `sid=${randomBytes(32).toString('base64url')}`);
      } catch {
        failures++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(job.concurrency, job.count) }, worker));
  agent.destroy();
  return { cookies, failures };
}

async function read(job: Extract<LoadJob, { kind: 'read' }>): Promise<ReadResult> {
  const agent = new Agent({ keepAlive: false });
  try {
    const res = await get(agent, job.url, '/read', job.cookie);
    let count: number | undefined;
    try {
      const parsed = JSON.parse(res.body) as { count?: unknown };
      if (typeof parsed.count === 'number') count = parsed.count;
    } catch {
      // not JSON: count stays undefined
    }
    return { status: res.status, count };
  } finally {
    agent.destroy();
  }
}

type AutocannonRequest = NonNullable<autocannon.Options['requests']>[number];

const hasWrk = wrkAvailable();
const wrkScript = process.env.BENCH_WRK_SCRIPT;

async function load(job: Extract<LoadJob, { kind: 'load' }>): Promise<LoadResult> {
  if (hasWrk && wrkScript && !job.followCookies) return wrkLoad(job, wrkScript);
  return autocannonLoad(job);
}

async function autocannonLoad(job: Extract<LoadJob, { kind: 'load' }>): Promise<LoadResult> {
  const base = new URL(job.url);
  let jar = job.cookies.kind === 'jar' ? job.cookies.cookie : '';
  let requests: AutocannonRequest[];
  const mode = job.cookies;
  if (mode.kind === 'none') {
    requests = [{ method: 'GET', path: job.path }];
  } else if (mode.kind === 'pool' && mode.cookies.length === 1) {
    requests = [{ method: 'GET', path: job.path, headers: { cookie: mode.cookies[0]! } }];
  } else if (mode.kind === 'pool') {
    const pool = mode.cookies;
    requests = [
      {
        method: 'GET',
        path: job.path,
        setupRequest: (req) => {
          req.headers = { ...req.headers, cookie: pool[Math.floor(Math.random() * pool.length)]! };
          return req;
        },
      },
    ];
  } else {
    requests = [
      {
        method: 'GET',
        path: job.path,
        setupRequest: (req) => {
          req.headers = { ...req.headers, cookie: jar };
          return req;
        },
        onResponse: (_status, _body, _context, headers) => {
          const h = headers as Record<string, string | string[]> | undefined;
          if (!h) return;
          for (const key of Object.keys(h)) {
            if (key.toLowerCase() === 'set-cookie') jar = mergeCookies(jar, h[key]);
          }
        },
      },
    ];
  }
  const result = await autocannon({
    url: `${base.protocol}//${base.host}`,
    connections: job.connections,
    duration: job.durationS,
    // Check the stop flag every 100 ms instead of every second: short runs end on time.
    sampleInt: 100,
    requests,
    timeout: 10,
  });
  const ok = result['2xx'];
  const responses = result['1xx'] + ok + result['3xx'] + result['4xx'] + result['5xx'];
  return {
    rps: result.duration > 0 ? ok / result.duration : 0,
    p50: result.latency.p50,
    p99: result.latency.p99,
    responses,
    ok2xx: ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationS: result.duration,
    generator: 'autocannon',
    ...(mode.kind === 'jar' ? { cookie: jar } : {}),
  };
}

async function run(job: LoadJob): Promise<LoadResult | SessionsResult | ReadResult> {
  switch (job.kind) {
    case 'sessions':
      return sessions(job);
    case 'read':
      return read(job);
    case 'load':
      return load(job);
  }
}

if (process.send) {
  process.on('message', (message: LoadCommand) => {
    if (message.type === 'stop') process.exit(0);
    run(message.job).then(
      (result) => send({ type: 'done', id: message.id, result }),
      (error: unknown) => send({ type: 'failed', id: message.id, message: error instanceof Error ? error.message : String(error) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', wrk: hasWrk });
}
