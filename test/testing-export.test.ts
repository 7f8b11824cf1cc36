/**
 * `koa-locked-session/testing` (source entry): what a store or locker author
 * runs. Our MemoryStore and MemoryLocker pass through the public entry, and a
 * store that breaks the contract fails the suite. The built subpath (ESM and
 * CommonJS) is run by test/compiled-output.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { MemoryLocker, MemoryStore } from '../src/index.js';
import { lockerConformance, storeConformance } from '../src/testing/index.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');

storeConformance('MemoryStore through koa-locked-session/testing', () => new MemoryStore());
lockerConformance('MemoryLocker through koa-locked-session/testing', () => new MemoryLocker());

test('the store suite fails a store whose destroy keeps the record', { timeout: 120_000 }, async () => {
  const fixture = resolve(root, 'test/fixtures/forgetful-store-conformance.ts');
  // Without the parent runner's NODE_TEST_CONTEXT, the child reports and exits as a top-level `node --test`.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const failed = await run(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', fixture], { cwd: root, env }).then(
    () => undefined,
    (error: { code?: number; stdout?: string }) => error,
  );
  assert.ok(failed, 'the suite passed a store that breaks destroy');
  assert.equal(failed.code, 1);
  assert.match(failed.stdout ?? '', /not ok \d+ - destroy removes the record/);
  // The suite ran to the end: the tests of the contract it keeps still pass on it.
  assert.match(failed.stdout ?? '', /# pass [1-9]\d*/);
});
