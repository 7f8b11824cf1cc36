/**
 * Group commit under a scope that blocks the event loop past its lease (issue 20
 * item 7), on a real Redis with RedisLocker, while another process increments
 * the same session.
 *
 * In this process: quick scopes 0..2, then scope 3, whose function busy-loops
 * (synchronous CPU work, no await) for longer than the lease, then quick
 * scopes 4..8, all queued in order (test/helpers/group-burst.ts). A child
 * process (test/helpers/worker-app.ts) sends increments of the same session
 * meanwhile: it takes the lock once the lease expired under the busy scope.
 *
 * The bound this pins (docs/group-commit.md, "A scope that blocks the event
 * loop"): the batch handed to a scope is written by a timer (`groupCommit.maxMs`)
 * or by that scope's write, and no timer fires while its function blocks the
 * loop. So members of a batch share the fate of a later scope in the batch that
 * blocks the loop past the lease: they fail with it (503 LOCK_LOST), never
 * answered 200 for a change that is not stored. With `groupCommit: false` each
 * scope writes before the next starts and only the busy scope fails.
 *
 * Whatever the configuration: every 200 saw its own count (no two 200s saw the
 * same value), and the final count is exactly the number of 200s of both processes.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import { RedisLocker, RedisStore, type SessionOptions } from '../src/index.js';
import { burstApp } from './helpers/group-burst.js';
import { redisServer, skipReason, type TestServer } from './helpers/servers.js';

const WORKER = resolve(import.meta.dirname, 'helpers/worker-app.ts');
/** The lease of both processes; the busy scope blocks the loop for BUSY_MS, well past it (a workload, not an asserted time). */
const LEASE_MS = 1000;
const BUSY_MS = 2500;
const N = 9;
const BUSY = 3;
const CHILD_INCREMENTS = 4;

const server: TestServer | undefined = await redisServer();
const skip = server ? false : skipReason('redis');
const client = server ? await createClient({ url: server.url }).connect() : undefined;

describe('group commit: a scope that blocks the event loop past its lease (RedisLocker, another process incrementing)', {
  skip,
  timeout: 120_000,
}, () => {
  let child: ChildProcess;
  let childUrl = '';

  before(async () => {
    child = fork(WORKER, [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, REDIS_URL: server!.url, LEASE_MS: String(LEASE_MS) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const port = await new Promise<number>((ok, fail) => {
      child.on('message', (m: { type?: string; port?: number }) => m?.type === 'listening' && ok(m.port!));
      child.once('exit', (code, signal) => fail(new Error(`worker exited (${code ?? signal}) before listening`)));
    });
    childUrl = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.disconnect(); // the worker stops serving and exits by itself
      await exited;
    }
    await client?.close();
    await server?.stop();
  });

  /** One round: the burst in this process, the child's increments meanwhile; returns the statuses of the burst and the tally checks. */
  async function round(groupCommit?: SessionOptions['groupCommit']): Promise<number[]> {
    // The worker's defaults (prefixes, cookie key): both processes share sessions and locks.
    const locker = new RedisLocker({ client: client!, leaseMs: LEASE_MS });
    try {
      const a = burstApp(
        { master: new RedisStore({ client: client! }), locker, lockTimeout: 60_000, ...(groupCommit === undefined ? {} : { groupCommit }) },
        (ctx, i, hold) =>
          ctx.session.withLock(async (s) => {
            await hold();
            if (i === BUSY) {
              const end = Date.now() + BUSY_MS;
              while (Date.now() < end); // CPU-bound work under the lock: nothing else in this process runs meanwhile
            }
            return (s.count = (s.count ?? 0) + 1);
          }),
      );
      a.app.keys = ['multi-process-test-key'];
      const { cookie } = await a.setup(); // count 0

      const childResponses: Array<Promise<{ status: number; count?: number }>> = [];
      const responses = await a.burst(cookie, N, (i) => {
        // While request 0 holds the lock: the child's increments go out and wait for the lock in Redis.
        if (i === 0) {
          for (let k = 0; k < CHILD_INCREMENTS; k++) {
            childResponses.push(
              fetch(`${childUrl}/incr`, { headers: { cookie } }).then(async (r) => ({
                status: r.status,
                ...(r.status === 200 ? ((await r.json()) as { count: number }) : {}),
              })),
            );
          }
        }
      });
      const others = await Promise.all(childResponses);

      for (const r of responses) assert.ok([200, 503].includes(r.status), `answered ${r.status}: ${r.text}`);
      for (const r of others) assert.ok([200, 503].includes(r.status), `the child answered ${r.status}`);
      const acknowledged = [
        ...responses.filter((r) => r.status === 200).map((r) => r.body.result as number),
        ...others.filter((r) => r.status === 200).map((r) => r.count!),
      ];
      assert.deepEqual(
        [...acknowledged].sort((x, y) => x - y),
        acknowledged.map((_, k) => k + 1),
        `every 200 saw its own count, 1..n with no gap: ${acknowledged}`,
      );
      assert.equal(
        await a.count(cookie),
        acknowledged.length,
        'the final count is exactly the number of 200s: no 200 for a change that is not stored',
      );
      assert.notEqual(responses[BUSY]!.status, 200, 'the busy scope outlived its lease: its write is refused');
      return responses.map((r) => r.status);
    } finally {
      await locker.close();
    }
  }

  it('groupCommit: false: only the busy scope fails; the quick scopes before it were saved before it ran', async () => {
    const statuses = await round(false);
    assert.deepEqual(statuses.slice(0, BUSY), [200, 200, 200]);
    assert.equal(statuses[BUSY], 503);
  });

  it('group commit, a batch that cannot expire on its own: the quick scopes handed to the busy one share its fate (503, nothing of theirs stored)', async () => {
    const statuses = await round({ maxMs: 600_000 });
    assert.deepEqual(statuses.slice(0, BUSY + 1), [503, 503, 503, 503]);
  });

  it('group commit with its defaults: the same bound (the maxMs timer cannot fire while the loop is blocked); no 200 for a change that is not stored', async () => {
    const statuses = await round();
    assert.equal(statuses[BUSY], 503);
  });
});
