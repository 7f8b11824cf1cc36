/**
 * Memcached started with `-M` (no eviction: what an operator picks so that
 * sessions are never evicted) and little memory (issue 11, item 18). When
 * memcached cannot store a SET (out of memory, item too large) it unlinks the
 * item already under that key, so a save answered with an error used to log
 * the user out. MemcachedStore never sends SET: a failed `cas`/`add` leaves
 * the previous item in place, and the error says nothing was written.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { StoreError } from '../../src/errors.js';
import { MemcachedStore } from '../../src/memcached/store.js';
import { memcachedServer, skipReason } from '../helpers/servers.js';

// -m 2: 2 MB of item memory (the later -m wins over the helper's default); -M: never evict, answer "out of memory".
const server = await memcachedServer({ useEnv: false, extraArgs: ['-M', '-m', '2'] });
after(async () => {
  await server?.stop();
});

/** Fill the server with 50 KB items until it answers SERVER_ERROR (raw protocol; nothing else writes meanwhile). */
function fill(port: number, bytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const value = 'f'.repeat(bytes);
    let i = 0;
    let reply = '';
    const next = (): void => void socket.write(`set filler-${i++} 0 0 ${bytes}\r\n${value}\r\n`);
    socket.on('error', reject);
    socket.on('connect', next);
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (!reply.endsWith('\r\n')) return;
      const line = reply.trim();
      reply = '';
      if (line === 'STORED' && i < 10_000) return next();
      socket.destroy();
      resolve(line);
    });
  });
}

const BIG = 50_000;

describe('memcached -M (no eviction): a write the server cannot store', { skip: server ? false : skipReason('memcached') }, () => {
  it('keeps the previous record (versioned write and set()), and the error says nothing was written', async () => {
    const store = new MemcachedStore({ servers: server!.url });
    try {
      await store.write('user-session', '{"user":1,"n":1}', 1, 60_000, null);
      await store.set('other-session', '{"user":2}', 60_000);
      assert.match(await fill(Number(server!.url.split(':')[1]), BIG), /^SERVER_ERROR out of memory/);

      const refused = (error: unknown): boolean =>
        error instanceof StoreError &&
        error.status === 503 &&
        /failed: the server did not store the \d+-byte record \(SERVER_ERROR: out of memory, or over its item size limit\); nothing was written and the previous record, if any, is kept$/.test(
          error.message,
        );

      // A save whose new record does not fit: refused, the session is still there (the user stays logged in).
      await assert.rejects(store.write('user-session', `{"user":1,"blob":"${'b'.repeat(BIG)}"}`, 2, 60_000, 1), refused);
      assert.deepEqual(await store.read('user-session'), { value: '{"user":1,"n":1}', version: 1 });
      // The same through set() (the user index, plain writes): a SET here would have unlinked the item.
      await assert.rejects(store.set('other-session', `{"user":2,"blob":"${'b'.repeat(BIG)}"}`, 60_000), refused);
      assert.equal(await store.get('other-session'), '{"user":2}');

      // Small writes still fit (another slab class) and work as usual.
      assert.equal(await store.write('user-session', '{"user":1,"n":2}', 2, 60_000, 1), true);
      assert.deepEqual(await store.read('user-session'), { value: '{"user":1,"n":2}', version: 2 });
    } finally {
      await store.close();
    }
  });
});
