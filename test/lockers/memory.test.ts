import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryLocker } from '../../src/memory/locker.js';
import { lockerConformance } from './conformance.js';

lockerConformance('memory', () => new MemoryLocker());

test("a lock timeout past setTimeout's limit never fires (Node would fire it after 1 ms)", async () => {
  const locker = new MemoryLocker();
  const holder = await locker.acquire('k', { timeoutMs: 1000 });
  let settled = false;
  const waiter = locker.acquire('k', { timeoutMs: 2 ** 32 }).finally(() => (settled = true));
  // Timers fire in order of their due time: a clamped 1 ms timer would have fired before this one.
  await sleep(20);
  assert.equal(settled, false, 'still waiting');
  await holder.release();
  await (await waiter).release();
  assert.equal(locker.size, 0);
});
