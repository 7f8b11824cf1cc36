/**
 * The harness's servers: found or started through the test suite's helper
 * (`test/helpers/servers.ts`, which honours REDIS_URL / MEMCACHED_URL /
 * MONGO_URL, and `test/helpers/postgres-server.ts`, which honours PG_URL), flushed between measurements, asked for their versions and for
 * the command counters that give store calls per request.
 */
import { connect } from 'node:net';
import { memcachedServer, mongoServer, redisServer, type TestServer } from '../../test/helpers/servers.js';
import { postgresServer } from '../../test/helpers/postgres-server.js';
import { pinPid, type Pinning } from './children.js';
import type { ServerKind, ServerUrls } from './types.js';

export interface BenchServers {
  readonly urls: ServerUrls;
  readonly started: Map<ServerKind, TestServer>;
  /** Kinds that could not be had, with the reason (variants needing them are skipped). */
  readonly missing: Map<ServerKind, string>;
  /** `redis 7.0.15`, … for the report. */
  readonly versions: Map<ServerKind, string>;
  stop(): Promise<void>;
}

const starters: Record<ServerKind, () => Promise<TestServer | undefined>> = {
  redis: () => redisServer(),
  memcached: () => memcachedServer(),
  mongo: () => mongoServer(),
  postgres: () => postgresServer(),
};

export async function startServers(kinds: Iterable<ServerKind>, pinning: Pinning): Promise<BenchServers> {
  const started = new Map<ServerKind, TestServer>();
  const missing = new Map<ServerKind, string>();
  const versions = new Map<ServerKind, string>();
  const urls: ServerUrls = {};
  await Promise.all(
    [...new Set(kinds)].map(async (kind) => {
      try {
        const server = await starters[kind]();
        if (!server) {
          missing.set(kind, `${kind} server unavailable (see the SKIPPING notice above)`);
          return;
        }
        started.set(kind, server);
        urls[kind] = server.url;
        const pid = (server as { pid?: number }).pid;
        if (pinning.enabled && !server.external && pid) pinPid(pid, pinning.servers);
        versions.set(kind, await serverVersion(kind, server.url).catch((e: Error) => `unknown (${e.message})`));
      } catch (error) {
        missing.set(kind, (error as Error).message.split('\n')[0] ?? String(error));
      }
    }),
  );
  return {
    urls,
    started,
    missing,
    versions,
    async stop() {
      await Promise.all([...started.values()].map((s) => s.stop().catch(() => {})));
    },
  };
}

// ---------------------------------------------------------------------------
// Tiny protocol clients (the harness loads no client library for these)
// ---------------------------------------------------------------------------

function hostPort(url: string, defaultPort: number): { host: string; port: number; password?: string; db?: number } {
  if (!url.includes('://')) {
    const [host = '127.0.0.1', port] = url.split(':');
    return { host, port: Number(port ?? defaultPort) };
  }
  const u = new URL(url);
  const db = u.pathname.replace('/', '');
  return {
    host: u.hostname || '127.0.0.1',
    port: Number(u.port || defaultPort),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(db ? { db: Number(db) } : {}),
  };
}

/** Send raw text, collect the reply until `done(reply)` says it is complete. */
function exchange(host: string, port: number, payload: string, done: (reply: string) => boolean, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let reply = '';
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      reject(new Error(`no complete reply from ${host}:${port} in ${timeoutMs} ms`));
    });
    socket.once('error', reject);
    socket.once('connect', () => socket.write(payload));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (done(reply)) {
        socket.destroy();
        resolve(reply);
      }
    });
  });
}

const resp = (args: string[]): string => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

/** Complete RESP replies in `text` (simple, error, integer, bulk; enough for INFO/FLUSHALL/AUTH/SELECT). */
function respReplies(text: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const eol = text.indexOf('\r\n', i);
    if (eol < 0) return undefined;
    const line = text.slice(i, eol);
    if (line[0] === '$') {
      const len = Number(line.slice(1));
      if (len < 0) {
        out.push('');
        i = eol + 2;
        continue;
      }
      const start = eol + 2;
      if (Buffer.byteLength(text.slice(start)) < len + 2) return undefined;
      const body = Buffer.from(text.slice(start)).subarray(0, len).toString('utf8');
      out.push(body);
      i = start + body.length + 2;
    } else {
      if (line[0] === '-') throw new Error(`redis: ${line.slice(1)}`);
      out.push(line.slice(1));
      i = eol + 2;
    }
  }
  return out;
}

/** Run one Redis command (after AUTH/SELECT from the URL) and return its reply. */
export async function redisCommand(url: string, args: string[]): Promise<string> {
  const { host, port, password, db } = hostPort(url, 6379);
  const pre: string[][] = [];
  if (password) pre.push(['AUTH', password]);
  if (db) pre.push(['SELECT', String(db)]);
  const wanted = pre.length + 1;
  const reply = await exchange(host, port, [...pre, args].map(resp).join(''), (text) => {
    try {
      return (respReplies(text)?.length ?? 0) >= wanted;
    } catch {
      return true;
    }
  });
  const replies = respReplies(reply)!;
  return replies[wanted - 1]!;
}

async function memcachedCommand(url: string, command: string, terminator: RegExp): Promise<string> {
  const { host, port } = hostPort(url, 11211);
  return exchange(host, port, `${command}\r\n`, (text) => terminator.test(text));
}

async function serverVersion(kind: ServerKind, url: string): Promise<string> {
  switch (kind) {
    case 'redis': {
      const info = await redisCommand(url, ['INFO', 'server']);
      return `Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? '?'}`;
    }
    case 'memcached': {
      const reply = await memcachedCommand(url, 'version', /\r\n$/);
      return `Memcached ${reply.replace(/^VERSION\s*/, '').trim()}`;
    }
    case 'mongo': {
      const { MongoClient } = await import('mongodb');
      const client = new MongoClient(url, { serverSelectionTimeoutMS: 3000 });
      try {
        const info = await client.db('admin').command({ buildInfo: 1 });
        const ferret =
          (info as { ferretdbVersion?: string; ferretdb?: { version?: string } }).ferretdbVersion ??
          (info as { ferretdb?: { version?: string } }).ferretdb?.version;
        return `MongoDB wire ${String(info.version)}${ferret ? ` (FerretDB ${ferret})` : ''}`;
      } finally {
        await client.close();
      }
    }
    case 'postgres':
      return withPg(
        url,
        async (client) => `PostgreSQL ${String((await client.query('SHOW server_version')).rows[0]?.server_version ?? '?')}`,
      );
  }
}

/** Run `fn` on a fresh `pg.Client` (loaded only when a PostgreSQL row runs). */
async function withPg<T>(url: string, fn: (client: import('pg').Client) => Promise<T>): Promise<T> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Empty a server between measurements. */
export async function flushServer(kind: ServerKind, url: string): Promise<void> {
  switch (kind) {
    case 'redis':
      await redisCommand(url, ['FLUSHALL']);
      return;
    case 'memcached':
      await memcachedCommand(url, 'flush_all', /\r\n$/);
      return;
    case 'mongo': {
      const { MongoClient } = await import('mongodb');
      const client = new MongoClient(url, { serverSelectionTimeoutMS: 3000 });
      try {
        await client.db('bench').dropDatabase();
      } finally {
        await client.close();
      }
      return;
    }
    case 'postgres':
      // Empty the tables but keep them: the variants create theirs once at start, and
      // four cluster workers racing to re-create a dropped table would fail.
      await withPg(url, async (client) => {
        const { rows } = await client.query<{ name: string }>(
          "SELECT quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = 'public'",
        );
        if (rows.length) await client.query(`TRUNCATE ${rows.map((r) => r.name).join(', ')}`);
      });
  }
}

/** Redis `INFO commandstats` as `{ get: calls, set: calls, … }`. */
export async function redisCommandStats(url: string): Promise<Record<string, number>> {
  const info = await redisCommand(url, ['INFO', 'commandstats']);
  const out: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[match[1]!] = Number(match[2]);
  return out;
}

/** Memcached `stats` counters as numbers. */
export async function memcachedStats(url: string): Promise<Record<string, number>> {
  const reply = await memcachedCommand(url, 'stats', /END\r\n$/);
  const out: Record<string, number> = {};
  for (const match of reply.matchAll(/^STAT (\S+) (\d+)\r?$/gm)) out[match[1]!] = Number(match[2]);
  return out;
}
