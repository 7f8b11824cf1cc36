/**
 * Process lifetime with an ioredis client: after contended locks (the locker
 * opened its subscriber connection), an app that quits its own ioredis client
 * exits by itself, without calling `locker.close()`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { after, it } from 'node:test';
import { redisServer, skipReason } from '../helpers/servers.js';

const server = await redisServer();
after(async () => {
  await server?.stop();
});

const root = resolve(import.meta.dirname, '../..');
const SCRIPT = `
import { Redis } from 'ioredis';
import { RedisLocker, fromIoredis } from './src/index.ts';
const io = new Redis(process.env.URL, { lazyConnect: true });
await io.connect();
const locker = new RedisLocker({ client: fromIoredis(io), pollMaxMs: 60_000 });
const first = await locker.acquire('exit-test', { timeoutMs: 10_000 });
const second = locker.acquire('exit-test', { timeoutMs: 10_000 });   // contended: opens the subscriber
setImmediate(() => void first.release());
await (await second).release();
await io.quit();
console.log('quit');
`;

it('a process that quits its ioredis client after contended locks exits by itself', {
  skip: server ? false : skipReason('redis'),
  timeout: 60_000,
}, async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], {
    cwd: root,
    env: { ...process.env, URL: server!.url },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(out.trim(), 'quit');
  assert.equal(code, 0);
});
