/**
 * PostgresLocker: the lock is the session's row, held by a transaction.
 *
 * In one process: a key without a row is locked too (advisory lock); a wait
 * past lockTimeout is a LockTimeoutError; a holder silent past `leaseMs` loses
 * its transaction to the server, and its later write is refused
 * (LockLostError) without touching the next holder's record.
 *
 * Many processes, one session (test/helpers/pg-worker-app.ts, 4 processes):
 * 400 overlapping increments end at exactly 400; a holder SIGKILLed mid-scope
 * frees the lock at once (its connection closes; no lease to wait out) and
 * wrote nothing; a holder SIGSTOPped makes the waiters time out (503), and
 * nothing is lost when it resumes.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { LockLostError, LockTimeoutError, PostgresLocker, PostgresStore, type Lease, type VersionedStore } from '../src/index.js';
import { freshDatabase, postgresServer } from './helpers/postgres-server.js';
import { skipReason, waitUntil } from './helpers/servers.js';

/** The lease's view of the master (a PostgresStore on the locker's pool: always there). */
const fenced = (lease: Lease): VersionedStore => lease.store as VersionedStore;

const WORKER = resolve(import.meta.dirname, 'helpers/pg-worker-app.ts');

const server = await postgresServer();
const skip = server ? false : skipReason('postgres');
const db = server ? await freshDatabase(server, 'locker') : undefined;
const pool = db ? new pg.Pool({ connectionString: db.url, max: 10 }) : undefined;
pool?.on('error', () => {});
const children = new Set<ChildProcess>();
const extraPools: pg.Pool[] = [];
/** A pool of its own: "another process" as far as PostgreSQL is concerned. */
function extraPool(): pg.Pool {
  const p = new pg.Pool({ connectionString: db!.url, max: 2 });
  p.on('error', () => {});
  extraPools.push(p);
  return p;
}
after(async () => {
  await Promise.all([...children].map(stopWorker));
  await Promise.all(extraPools.map((p) => p.end()));
  await pool?.end();
  await db?.drop();
  await server?.stop();
});

let tables = 0;
const freshTable = (): string => `locks_${process.pid}_${++tables}`;

/** Connections of this database waiting on a lock (the in-process queue lets one per process through). */
async function waitingOnLocks(): Promise<number> {
  const { rows } = await pool!.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
  );
  return rows[0].n as number;
}

describe('PostgresLocker in one process', { skip }, () => {
  it('locks a key that has no row yet: a second acquire waits until the first is released', async () => {
    const store = new PostgresStore({ pool: pool!, table: freshTable() });
    const a = new PostgresLocker({ store });
    const b = new PostgresLocker({ pool: extraPool() });
    const first = await a.acquire('no-row-yet', { timeoutMs: 5000, store });
    let second: Lease | undefined;
    const waiting = b.acquire('no-row-yet', { timeoutMs: 30_000 }).then((lease) => (second = lease));
    await waitUntil(async () => (await waitingOnLocks()) >= 1, { what: 'the second acquire waiting in PostgreSQL' });
    assert.equal(second, undefined, 'not granted while the first holds the lock');
    await first.release();
    await waiting;
    await second!.release();
  });

  it('lockTimeout maps to lock_timeout: LockTimeoutError (503), and the lock is free again for others', async () => {
    const store = new PostgresStore({ pool: pool!, table: freshTable() });
    const locker = new PostgresLocker({ store });
    const other = new PostgresLocker({ pool: extraPool() });
    const held = await other.acquire('busy', { timeoutMs: 5000 });
    await assert.rejects(
      locker.acquire('busy', { timeoutMs: 200, store }),
      (error: unknown) => error instanceof LockTimeoutError && error.status === 503,
    );
    await held.release();
    const lease = await locker.acquire('busy', { timeoutMs: 5000, store });
    await lease.release();
  });

  it('a slow but live scope keeps its lock past leaseMs (its process sends heartbeats in the transaction), and its save lands', async () => {
    const store = new PostgresStore({ pool: pool!, table: freshTable() });
    await store.write('slow', 'v1', 1, 60_000, null);
    const lease = await new PostgresLocker({ store, leaseMs: 300 }).acquire('slow', { timeoutMs: 5000, store });
    await sleep(1200); // the passing of time is what is under test: 4 x leaseMs without a statement of the scope
    assert.equal(lease.lost, false);
    assert.ok(await fenced(lease).write('slow', 'v2', 2, 60_000, 1));
    await lease.release();
    assert.deepEqual(await store.read('slow'), { value: 'v2', version: 2 });
  });

  it('a holder silent past leaseMs (a paused process: no heartbeat) loses its transaction: the next holder gets the lock, and the late write is refused (LockLostError) without touching its record', async () => {
    const store = new PostgresStore({ pool: pool!, table: freshTable() });
    await store.write('k', 'v1', 1, 60_000, null);
    // maxHoldMs = leaseMs: heartbeats stop at once, as if the process were paused.
    const slow = new PostgresLocker({ store, leaseMs: 300, maxHoldMs: 300 });
    const next = new PostgresLocker({ store, leaseMs: 60_000 });
    const paused = await slow.acquire('k', { timeoutMs: 5000, store });
    assert.deepEqual(await fenced(paused).read('k'), { value: 'v1', version: 1 }, 'the acquire read the row');
    // The server ends the silent holder's connection after leaseMs; the waiter is granted then.
    const lease = await next.acquire('k', { timeoutMs: 30_000, store });
    const record = await fenced(lease).read('k');
    assert.ok(await fenced(lease).write('k', 'v2', 2, 60_000, record!.version));
    await lease.release();
    await waitUntil(async () => paused.lost, { what: 'the silent holder learning its transaction is gone' });
    await assert.rejects(fenced(paused).write('k', 'late', 2, 60_000, 1), LockLostError);
    await paused.release();
    assert.deepEqual(await store.read('k'), { value: 'v2', version: 2 });
  });

  it('rejects bad options, naming the fix', () => {
    assert.throws(() => new PostgresLocker({} as never), /exactly one of `pool`.*or `store`/);
    assert.throws(() => new PostgresLocker({ pool: pool!, leaseMs: 0 }), /`leaseMs`/);
    assert.throws(() => new PostgresLocker({ pool: pool!, leaseMs: 1000, maxHoldMs: 10 }), /`maxHoldMs`/);
  });
});

// ---- many processes --------------------------------------------------------

interface Worker {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly url: string;
}

async function startWorker(env: Record<string, string>): Promise<Worker> {
  const child = fork(WORKER, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, PG_URL: db!.url, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const port = await new Promise<number>((ok, fail) => {
    child.on('message', (m: { type?: string; port?: number }) => m?.type === 'listening' && ok(m.port!));
    child.once('exit', (code, signal) => fail(new Error(`worker exited (${code ?? signal}) before listening`)));
  });
  return { child, pid: child.pid!, url: `http://127.0.0.1:${port}` };
}

async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  if (child.connected) child.disconnect();
  else child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function get(url: string, cookie?: string): Promise<{ status: number; body: { pid?: number; count?: number }; cookie: string }> {
  const res = await fetch(url, { headers: cookie ? { cookie } : {} });
  const text = await res.text();
  let body = {};
  try {
    body = JSON.parse(text) as object;
  } catch {
    // an error page
  }
  const set = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .filter((c) => !c.endsWith('='));
  return { status: res.status, body, cookie: set.length ? set.join('; ') : (cookie ?? '') };
}

async function newSession(worker: Worker): Promise<string> {
  const first = await get(`${worker.url}/incr`);
  assert.equal(first.status, 200);
  assert.equal(first.body.count, 1);
  return first.cookie;
}

const increments = (workers: Worker[], cookie: string, n: number) =>
  Promise.all(Array.from({ length: n }, (_, i) => get(`${workers[i % workers.length]!.url}/incr`, cookie)));

describe('many processes sharing one session through PostgreSQL', { skip }, () => {
  const table = freshTable();
  let workers: Worker[] = [];
  before(async () => {
    // Four processes creating the table at once, too.
    workers = await Promise.all(Array.from({ length: 4 }, () => startWorker({ PG_TABLE: table })));
  });

  it('4 processes x 100 overlapping increments on one sid end at exactly 400', async () => {
    const cookie = await newSession(workers[0]!);
    const responses = await increments(workers, cookie, 399);
    assert.deepEqual([...new Set(responses.map((r) => r.status))], [200]);
    assert.equal(new Set(responses.map((r) => r.body.pid)).size, 4, 'all four processes served');
    assert.deepEqual(
      responses.map((r) => r.body.count!).sort((a, b) => a - b),
      Array.from({ length: 399 }, (_, i) => i + 2),
      'none lost, none applied twice',
    );
    assert.equal((await get(`${workers[1]!.url}/count`, cookie)).body.count, 400);
  });

  it('a holder SIGKILLed mid-scope: the others continue at once (no lease to wait out: leaseMs and lockTimeout are a minute), and it wrote nothing', async () => {
    const [victim, ...others] = workers;
    const cookie = await newSession(others[0]!);
    const holding = once(victim!.child, 'message');
    const held = get(`${victim!.url}/hold`, cookie).catch((error: unknown) => error);
    assert.deepEqual((await holding)[0], { type: 'holding' });
    let killed = false;
    const waiting = increments(others, cookie, 30).then((responses) => {
      assert.ok(killed, 'nobody got the lock while the holder was alive');
      return responses;
    });
    await waitUntil(async () => (await waitingOnLocks()) >= others.length, { what: 'the other processes waiting on the row lock' });
    killed = true;
    const exited = once(victim!.child, 'exit');
    process.kill(victim!.pid, 'SIGKILL');
    await exited;
    const responses = await waiting;
    assert.deepEqual([...new Set(responses.map((r) => r.status))], [200]);
    assert.deepEqual(
      responses.map((r) => r.body.count!).sort((a, b) => a - b),
      Array.from({ length: 30 }, (_, i) => i + 2),
    );
    assert.equal((await get(`${others[0]!.url}/count`, cookie)).body.count, 31, "the killed holder's increment never landed");
    assert.ok((await held) instanceof Error, 'the killed holder never answered');
    workers = [...others, await startWorker({ PG_TABLE: table })];
  });

  it('a holder SIGSTOPped: the waiters time out with 503; when it resumes, its save lands and nothing is lost', async () => {
    const [paused, ...rest] = workers;
    const impatient = await Promise.all([
      startWorker({ PG_TABLE: table, LOCK_TIMEOUT: '500' }),
      startWorker({ PG_TABLE: table, LOCK_TIMEOUT: '500' }),
    ]);
    try {
      const cookie = await newSession(rest[0]!);
      const holding = once(paused!.child, 'message');
      const held = get(`${paused!.url}/hold`, cookie);
      await holding;
      process.kill(paused!.pid, 'SIGSTOP');
      let waiters: Awaited<ReturnType<typeof increments>>;
      try {
        waiters = await increments(impatient, cookie, 6);
      } finally {
        process.kill(paused!.pid, 'SIGCONT');
      }
      assert.deepEqual([...new Set(waiters.map((r) => r.status))], [503]);
      paused!.child.send({ type: 'finish' });
      const late = await held;
      assert.equal(late.status, 200, 'the resumed holder still held the lock (leaseMs is a minute): its save lands');
      assert.equal(late.body.count, 2);
      assert.equal((await get(`${rest[0]!.url}/count`, cookie)).body.count, 2, 'nothing lost, nothing applied by the timed-out waiters');
    } finally {
      await Promise.all(impatient.map((w) => stopWorker(w.child)));
    }
  });
});
