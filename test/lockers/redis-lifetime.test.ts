/**
 * Process lifetime: RedisLocker's own connection (the pub/sub subscriber it
 * opens with `client.duplicate()` on contended acquires) never keeps a process
 * alive. A child process does contended requests, then quits its client —
 * without `sessions.close()`, or with it before or after — and must exit by
 * itself: the test awaits its 'exit' event (the test runner's own timeout is
 * the only bound).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { redisServer, skipReason } from '../helpers/servers.js';

const CHILD = resolve(import.meta.dirname, 'fixtures/redis-lifetime-child.ts');
const server = await redisServer();
const skip = server ? false : skipReason('redis');
const running = new Set<ChildProcess>();

after(async () => {
  // Only if a test failed: never leave a child of ours behind.
  for (const child of running) child.kill('SIGKILL');
  await server?.stop();
});

async function runChild(shutdown: string): Promise<{ code: number | null; result: { count: number; subscribers: number } }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, REDIS_URL: server!.url, SHUTDOWN: shutdown },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  running.add(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  running.delete(child);
  return { code, result: JSON.parse(out.trim() || '{}') as { count: number; subscribers: number } };
}

describe('RedisLocker never keeps the process alive', { skip }, () => {
  for (const shutdown of ['quit-client', 'close-then-quit', 'quit-then-close']) {
    test(`after contended requests, ${shutdown}: the process exits by itself`, async () => {
      const { code, result } = await runChild(shutdown);
      assert.equal(code, 0);
      assert.equal(result.count, 42, 'the first request, 40 overlapping ones and the last: no update lost');
      assert.ok(result.subscribers >= 1, 'the contended requests opened a subscriber connection');
    });
  }
});
