/**
 * issue 20 item 2 over two real processes: express-session + connect-redis →
 * RedisStore + RedisLocker, retire: true; per round a user logged in on the
 * real express-session sends 6 overlapping first requests (2 ms apart, the
 * shape seen in the field) alternating between two worker processes
 * (test/helpers/migrate-worker.ts). Every request ends on ONE session, the
 * increments count exactly, nobody is answered as anonymous.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { after, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { RedisStore as ConnectRedis } from 'connect-redis';
import express from 'express';
import expressSessionMiddleware from 'express-session';
import { createClient } from 'redis';
import request from 'supertest';
import { redisServer, skipReason } from '../helpers/servers.js';

const redis = await redisServer();
const skip = redis ? false : skipReason('redis');
const client = redis ? await createClient({ url: redis.url }).connect() : undefined;
client?.on('error', () => {});
const SECRET = 'old express secret';
const OLD_PREFIX = `sess:${randomUUID().slice(0, 8)}:`;
const children: ChildProcess[] = [];
after(async () => {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = once(child, 'exit');
    child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  await client?.quit().catch(() => {});
  await redis?.stop();
});

async function startWorker(masterPrefix: string): Promise<string> {
  const child = fork(resolve(import.meta.dirname, '../helpers/migrate-worker.ts'), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, REDIS_URL: redis!.url, OLD_PREFIX, MASTER_PREFIX: masterPrefix, SECRET },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(child);
  const port = await new Promise<number>((ok, fail) => {
    child.on('message', (m: { type?: string; port?: number }) => m?.type === 'listening' && ok(m.port!));
    child.once('exit', (code) => fail(new Error(`worker exited (${code}) before listening`)));
  });
  return `http://127.0.0.1:${port}`;
}

it('6 overlapping first requests over two processes, 10 rounds: one session each, counts exact', { skip }, async () => {
  const masterPrefix = `kls${randomUUID().slice(0, 8)}:`;
  const workers = await Promise.all([startWorker(masterPrefix), startWorker(masterPrefix)]);
  const old = express();
  old.use(
    expressSessionMiddleware({
      store: new ConnectRedis({ client: client!, prefix: OLD_PREFIX }),
      secret: SECRET,
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: 86_400_000 },
    }),
  );
  old.get('/login', (req, res) => void (Object.assign(req.session, { views: 7, account: { id: 'u42' } }), res.send('ok')));
  for (let round = 0; round < 10; round++) {
    const oldCookie = String((await request(old).get('/login')).headers['set-cookie']).split(';')[0]!;
    const results = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        await delay(2 * i);
        const res = await fetch(`${workers[i % 2]}/`, { headers: { cookie: oldCookie } });
        return (await res.json()) as { views: number; user: { id: string } | null; id: string | null };
      }),
    );
    assert.equal(new Set(results.map((r) => r.id)).size, 1, `round ${round}: one session`);
    assert.deepEqual(
      results.map((r) => r.views).sort((a, b) => a - b),
      [8, 9, 10, 11, 12, 13],
      `round ${round}: every increment on it`,
    );
    assert.ok(
      results.every((r) => r.user?.id === 'u42'),
      `round ${round}: nobody anonymous`,
    );
  }
});
