import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, it } from 'node:test';
import { MemoryLocker, MemoryStore } from '../src/index.js';
import { listen, makeApp } from './helpers/app.js';

declare module '../src/index.js' {
  interface SessionData {
    n?: number;
  }
}

describe('MemoryLocker does not grow', () => {
  it('after 10,000 sessions created and locked again, it holds zero entries', async () => {
    const locker = new MemoryLocker();
    const master = new MemoryStore();
    const app = makeApp({ master, locker }, async (ctx) => {
      ctx.body = String(await ctx.session.withLock((s) => (s.n = (s.n ?? 0) + 1)));
    });
    const { url, close } = await listen(app);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
    const get = (cookie?: string) =>
      new Promise<{ body: string; cookie: string }>((resolve, reject) => {
        const req = http.get(url, { agent, headers: cookie ? { cookie } : {} }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ body, cookie: (res.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ') }));
        });
        req.on('error', reject);
      });
    const total = 10_000;
    let done = 0;
    const worker = async () => {
      while (done < total) {
        done++;
        const created = await get();
        const again = await get(created.cookie); // takes the lock on the existing sid
        assert.equal(again.body, '2');
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));
    agent.destroy();
    await close();
    assert.equal(master.size, total);
    assert.equal(locker.size, 0);
    await master.close();
  });
});
