/**
 * Many processes, one session: 4 worker processes (test/helpers/worker-app.ts),
 * each its own Koa app on its own loopback port, sharing sessions through one
 * real Redis.
 *
 * - RedisLocker: 400 overlapping increments spread over the 4 end at exactly 400.
 * - MemoryLocker (a lock per process) on the same setup, with every process made
 *   to read before any writes (a barrier): one save wins, the others are refused
 *   (503) by RedisStore's versioned writes, none is lost; the Redis lock is what
 *   lets them all succeed.
 * - A holder SIGKILLed mid-scope: once its lease expires the others continue, and
 *   its half-done scope wrote nothing.
 * - A holder SIGSTOPped past its lease: the others continue; when it resumes, its
 *   save is refused (503) and overwrote nothing.
 * - RedisLocker with `pubsub: false` (waiters only poll): processes still take
 *   turns. One process keeps the lock busy without a pause (its local queue
 *   never empties, so it would always win the lock back); the other two each
 *   get every one of their requests answered within `lockTimeout`.
 * - examples/cluster.ts (node:cluster workers behind one port) runs as documented.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { startExample } from './helpers/examples.js';
import { redisServer, skipReason, waitUntil, type TestServer } from './helpers/servers.js';
import { cookieHeader } from './helpers/cookies.js';

const WORKER = resolve(import.meta.dirname, 'helpers/worker-app.ts');
const LEASE_MS = 2000;

interface Worker {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly url: string;
}

const server: TestServer | undefined = await redisServer();
const skip = server ? false : skipReason('redis');
const redis = server ? await createClient({ url: server.url }).connect() : undefined;
const children = new Set<ChildProcess>();

after(async () => {
  await Promise.all([...children].map(stopWorker));
  await redis?.close();
  await server?.stop();
});

async function startWorker(env: Record<string, string>): Promise<Worker> {
  const child = fork(WORKER, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, REDIS_URL: server!.url, LEASE_MS: String(LEASE_MS), ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const listening = new Promise<number>((ok, fail) => {
    child.on('message', (m: { type?: string; port?: number }) => m?.type === 'listening' && ok(m.port!));
    child.once('exit', (code, signal) => fail(new Error(`worker exited (${code ?? signal}) before listening`)));
  });
  const port = await listening;
  return { child, pid: child.pid!, url: `http://127.0.0.1:${port}` };
}

/** Stop a worker we started, by its PID: disconnect (it exits by itself), SIGKILL if it does not. */
async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  if (child.connected) child.disconnect();
  else child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function startWorkers(n: number, env: Record<string, string> = {}): Promise<Worker[]> {
  return Promise.all(Array.from({ length: n }, () => startWorker(env)));
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
  const set = cookieHeader(res);
  return { status: res.status, body, cookie: set || (cookie ?? '') };
}

/** A fresh session on `worker` with count 1; returns its cookie and sid. */
async function newSession(worker: Worker): Promise<{ cookie: string; sid: string }> {
  const first = await get(`${worker.url}/incr`);
  assert.equal(first.status, 200);
  assert.equal(first.body.count, 1);
  const sid = decodeURIComponent(/(?:^|; )sid=([^;]+)/.exec(first.cookie)![1]!);
  return { cookie: first.cookie, sid };
}

/** `n` overlapping increments spread round-robin over `workers`. */
async function overlappingIncrements(workers: Worker[], cookie: string, n: number) {
  return Promise.all(Array.from({ length: n }, (_, i) => get(`${workers[i % workers.length]!.url}/incr`, cookie)));
}

describe('many processes sharing one session through Redis', { skip }, () => {
  let workers: Worker[] = [];
  before(async () => {
    workers = await startWorkers(4);
  });

  test('RedisLocker: 400 overlapping increments on one sid over 4 processes end at exactly 400', async () => {
    const { cookie } = await newSession(workers[0]!);
    const responses = await overlappingIncrements(workers, cookie, 399);
    assert.deepEqual([...new Set(responses.map((r) => r.status))], [200]);
    assert.equal(new Set(responses.map((r) => r.body.pid)).size, 4, 'all four processes served');
    const counts = responses.map((r) => r.body.count!).sort((a, b) => a - b);
    assert.deepEqual(
      counts,
      Array.from({ length: 399 }, (_, i) => i + 2),
      'each increment saw its own value: none lost, none applied twice',
    );
    assert.equal((await get(`${workers[1]!.url}/count`, cookie)).body.count, 400);
  });

  test('a holder SIGKILLed mid-scope: after its lease expires the others continue; its scope wrote nothing', async () => {
    const [victim, ...others] = workers;
    const { cookie, sid } = await newSession(others[0]!);
    const holding = once(victim!.child, 'message');
    const held = get(`${victim!.url}/hold`, cookie).catch((error: unknown) => error); // dies with the process
    assert.deepEqual((await holding)[0], { type: 'holding' });

    let killed = false;
    const waiting = overlappingIncrements(others, cookie, 30).then((responses) => {
      assert.ok(killed, 'nobody got the lock while the holder was alive (its lease was being renewed)');
      return responses;
    });
    // Every other process is waiting on the lock (subscribed to its release channel).
    const channel = `lock:{${sid}}:released`;
    await waitUntil(async () => ((await redis!.pubSubNumSub(channel))[channel] ?? 0) >= others.length, {
      what: 'the other processes waiting',
    });
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
    workers = [...others, await startWorker({})];
  });

  test('a holder paused (SIGSTOP) past its lease: the others continue; when it resumes, its save is refused', async () => {
    const [paused, ...others] = workers;
    const { cookie, sid } = await newSession(others[0]!);
    const holding = once(paused!.child, 'message');
    const held = get(`${paused!.url}/hold`, cookie);
    await holding;
    process.kill(paused!.pid, 'SIGSTOP');
    try {
      const channel = `lock:{${sid}}:released`;
      const waiting = overlappingIncrements(others, cookie, 10);
      await waitUntil(async () => ((await redis!.pubSubNumSub(channel))[channel] ?? 0) >= others.length, {
        what: 'the other processes waiting',
      });
      const responses = await waiting; // the paused holder's lease runs out; they proceed
      assert.deepEqual([...new Set(responses.map((r) => r.status))], [200]);
      assert.deepEqual(
        responses.map((r) => r.body.count!).sort((a, b) => a - b),
        Array.from({ length: 10 }, (_, i) => i + 2),
      );
    } finally {
      process.kill(paused!.pid, 'SIGCONT');
    }
    paused!.child.send({ type: 'finish' });
    const late = await held;
    assert.equal(late.status, 503, "the resumed holder's save is refused");
    assert.equal((await get(`${others[0]!.url}/count`, cookie)).body.count, 11, 'and it overwrote nothing');
  });

  test('MemoryLocker (a lock per process) on the same setup: when every process has read before any writes, one save wins and the others are refused (503); nothing acknowledged is lost', async () => {
    const memoryWorkers = await startWorkers(4, { LOCKER: 'memory' });
    try {
      const { cookie } = await newSession(memoryWorkers[0]!);
      // One increment per process, each held between its read and its write until
      // all four have read: the per-process locks cannot serialize them, so the
      // race is certain. (With RedisLocker the second reader would wait for the
      // first holder, and this barrier would never open.)
      const reads = memoryWorkers.map(
        (w) =>
          new Promise<{ count: number }>((ok) => {
            const onMessage = (m: { type?: string; count?: number }): void => {
              if (m?.type !== 'read') return;
              w.child.off('message', onMessage);
              ok({ count: m.count! });
            };
            w.child.on('message', onMessage);
          }),
      );
      const racing = Promise.all(memoryWorkers.map((w) => get(`${w.url}/incr-after-barrier`, cookie)));
      const seen = await Promise.all(reads);
      assert.deepEqual(
        seen.map((r) => r.count),
        [1, 1, 1, 1],
        'every process read the same saved count',
      );
      for (const w of memoryWorkers) w.child.send({ type: 'write' });
      const responses = await racing;
      // RedisStore's versioned writes: all four expect the version they read; the
      // first to land wins, the other three find it moved on and are refused.
      assert.deepEqual(responses.map((r) => r.status).sort(), [200, 503, 503, 503]);
      assert.deepEqual(
        responses.filter((r) => r.status === 200).map((r) => r.body.count),
        [2],
      );
      assert.equal(
        (await get(`${memoryWorkers[0]!.url}/count`, cookie)).body.count,
        2,
        'the one acknowledged increment is saved; the refused ones left no trace',
      );
    } finally {
      await Promise.all(memoryWorkers.map((w) => stopWorker(w.child)));
    }
  });
});

describe('RedisLocker with pubsub: false: processes take turns by polling', { skip }, () => {
  test('a process that keeps the lock busy does not starve the others: no lock timeout, every increment counted', async () => {
    // lockTimeout 5 s: taking turns, a request waits for at most two other
    // processes' runs (handoff.maxMs, 250 ms, each) and their polls; without
    // turns, the busy process takes the lock straight back at every release
    // and the others time out.
    const polling = await startWorkers(3, { PUBSUB: 'false', LOCK_TIMEOUT: '5000' });
    try {
      const [busy, ...others] = polling;
      const { cookie } = await newSession(busy!);
      type Reply = Awaited<ReturnType<typeof get>>;
      const replies = new Map<Worker, Reply[]>(polling.map((w) => [w, []]));
      let othersDone = false;
      // The busy process: 6 connections, each sending its next increment as
      // soon as the last one is answered, until the other two are done.
      let running!: () => void;
      const busyRunning = new Promise<void>((resolve) => (running = resolve));
      const busyLoops = Array.from({ length: 6 }, async () => {
        while (!othersDone) {
          replies.get(busy!)!.push(await get(`${busy!.url}/incr-slow`, cookie));
          if (replies.get(busy!)!.length >= 20) running();
        }
      });
      // The others start once the busy process holds the lock and serves a run.
      await busyRunning;
      // The other two: 3 connections each, 10 increments per connection
      // (/incr-slow holds the lock 20 ms: every process' queue keeps it busy).
      const PER_CONNECTION = 10;
      await Promise.all(
        others.flatMap((w) =>
          Array.from({ length: 3 }, async () => {
            for (let i = 0; i < PER_CONNECTION; i++) replies.get(w)!.push(await get(`${w.url}/incr-slow`, cookie));
          }),
        ),
      );
      othersDone = true;
      await Promise.all(busyLoops);

      const all = [...replies.values()].flat();
      console.log(polling.map((w) => `${replies.get(w)!.length}:${replies.get(w)!.filter((r) => r.status !== 200).length}`).join(' '));
      const statuses = polling.map((w) =>
        replies
          .get(w)!
          .map((r) => r.status)
          .filter((s) => s !== 200),
      );
      assert.deepEqual(statuses, [[], [], []], 'no request failed (a 503 is a lock timeout): every process got its turns');
      for (const w of others) assert.equal(replies.get(w)!.length, 3 * PER_CONNECTION);
      assert.ok(replies.get(busy!)!.length > 0);
      assert.deepEqual(
        all.map((r) => r.body.count!).sort((a, b) => a - b),
        Array.from({ length: all.length }, (_, i) => i + 2),
        'each increment saw its own value',
      );
      assert.equal(
        (await get(`${others[0]!.url}/count`, cookie)).body.count,
        all.length + 1,
        'the final count is the number of 200s (+ the first)',
      );
    } finally {
      await Promise.all(polling.map((w) => stopWorker(w.child)));
    }
  });
});

describe('examples/cluster.ts', { skip }, () => {
  test('workers behind node:cluster share one session: 100 overlapping increments end at 100', async () => {
    const ex = await startExample('cluster', { REDIS_URL: server!.url, WORKERS: '3' });
    try {
      const { cookie } = await get(`${ex.url}/`);
      const responses = await Promise.all(Array.from({ length: 99 }, () => get(`${ex.url}/`, cookie)));
      assert.deepEqual([...new Set(responses.map((r) => r.status))], [200]);
      assert.deepEqual(
        responses.map((r) => r.body.count!).sort((a, b) => a - b),
        Array.from({ length: 99 }, (_, i) => i + 2),
      );
      const pids = new Set(responses.map((r) => (r.body as { worker?: number }).worker));
      assert.ok(pids.size > 1, `served by ${pids.size} worker(s)`);
    } finally {
      await ex.stop();
    }
  });
});
