/**
 * MemcachedStore against a real memcached (MEMCACHED_URL, or one started here
 * with `-I 1m`): the conformance suite, then Memcached specifics (30-day rule,
 * key length, item size) and faults (server down, black-holed, restarted).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Memcached from 'memcached';
import { StoreError } from '../../src/errors.js';
import { MEMCACHED_MAX_RELATIVE_TTL_S, MemcachedStore, memcachedLifetime } from '../../src/memcached/store.js';
import { memcachedServer, skipReason, tcpProxy, type StartedServer } from '../helpers/servers.js';
import { storeConformance } from './conformance.js';

const server = await memcachedServer({ extraArgs: ['-I', '1m'] });
after(async () => {
  await server?.stop();
});
const skip = server ? false : skipReason('memcached');

/**
 * Send one raw text-protocol command and return the reply up to `until`
 * (reads what the library cannot: remaining TTLs via the meta command `mg`).
 */
function raw(command: string, until: RegExp): Promise<string> {
  const [host = '127.0.0.1', port = '11211'] = server!.url.split(':');
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: Number(port) });
    let reply = '';
    socket.setTimeout(2000, () => {
      socket.destroy();
      reject(new Error(`no reply to ${JSON.stringify(command)}: ${JSON.stringify(reply)}`));
    });
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (until.test(reply)) {
        socket.destroy();
        resolve(reply);
      }
    });
    socket.write(`${command}\r\n`);
  });
}

/** Remaining server-side TTL of `fullKey` in seconds (`mg <key> t`), `undefined` when absent. */
async function serverTtl(fullKey: string): Promise<number | undefined> {
  const reply = await raw(`mg ${fullKey} t`, /\r\n$/);
  if (reply.startsWith('EN')) return undefined;
  const match = /^HD t(-?\d+)/.exec(reply);
  assert.ok(match, `unexpected mg reply ${JSON.stringify(reply)}`);
  return Number(match[1]);
}

describe('memcachedLifetime (TTL ms → memcached exptime)', () => {
  it('rounds up to whole seconds plus one (memcached may drop an item during its last second)', () => {
    assert.equal(memcachedLifetime(1), 2);
    assert.equal(memcachedLifetime(1000), 2);
    assert.equal(memcachedLifetime(1001), 3);
    assert.equal(memcachedLifetime(86_400_000), 86_401);
  });
  it('sends up to 30 days as relative seconds, and beyond as an absolute Unix time', () => {
    const now = Date.UTC(2030, 0, 1);
    assert.equal(memcachedLifetime((MEMCACHED_MAX_RELATIVE_TTL_S - 1) * 1000, now), MEMCACHED_MAX_RELATIVE_TTL_S);
    assert.equal(
      memcachedLifetime(MEMCACHED_MAX_RELATIVE_TTL_S * 1000, now),
      Math.ceil((now + MEMCACHED_MAX_RELATIVE_TTL_S * 1000) / 1000) + 1,
    );
    assert.equal(memcachedLifetime(31 * 86_400_000, now), now / 1000 + 31 * 86_400 + 1);
  });
});

storeConformance('memcached', () => new MemcachedStore({ servers: server!.url }), {
  skip,
  // Memcached counts lifetimes on a one-second clock: the store sends one second
  // more than the TTL (and checks the exact expiry on read), so a record is
  // never lost before its TTL.
  readableTtlMs: 2000,
  extraTests: (ctx) => {
    const { key } = ctx;
    const store = (): MemcachedStore => ctx.store as MemcachedStore;

    it('server-side TTL is the TTL in whole seconds, rounded up, plus one', async () => {
      await store().set(key('rounded'), '{"r":1}', 1500);
      assert.equal(await serverTtl(store().keyFor(key('rounded'))), 3);
    });

    it('a 31-day TTL is sent as an absolute time: the server keeps the record for 31 days', async () => {
      await store().set(key('31d'), '{"d":31}', 31 * 86_400_000);
      assert.equal(await store().get(key('31d')), '{"d":31}');
      const ttl = await serverTtl(store().keyFor(key('31d')));
      assert.ok(ttl !== undefined && Math.abs(ttl - (31 * 86_400 + 1)) <= 2, `server TTL ${ttl}`);
    });

    it('touch resets the server-side TTL too', async () => {
      await store().set(key('touch-ttl'), '{"t":1}', 1000);
      await store().touch(key('touch-ttl'), 3_600_000);
      const ttl = await serverTtl(store().keyFor(key('touch-ttl')));
      assert.ok(ttl !== undefined && ttl > 3590, `server TTL ${ttl}`);
      assert.equal(await store().get(key('touch-ttl')), '{"t":1}');
    });

    it('a full key over 250 bytes fails with a StoreError before anything is sent', async () => {
      const long = new MemcachedStore({ servers: server!.url, prefix: 'p'.repeat(240) });
      try {
        await assert.rejects(
          long.set('0123456789a', '{}', 60_000),
          (error: unknown) =>
            error instanceof StoreError &&
            error.status === 500 &&
            /^\[memcached\] SET failed: the key is 251 bytes, over memcached's 250-byte limit/.test(error.message),
        );
        // Multi-byte prefixes count in bytes, not characters: 'é' is 2 bytes.
        const wide = new MemcachedStore({ servers: server!.url, prefix: 'é'.repeat(120) });
        await assert.rejects(wide.get('abcdefghijk'), /the key is 251 bytes/);
        await wide.close();
        // Exactly 250 bytes is fine.
        await long.set('0123456789', '{"k":250}', 60_000);
        assert.equal(await long.get('0123456789'), '{"k":250}');
        // The library would have md5-hashed the long key silently: nothing under that name.
        const hashed = createHash('md5')
          .update(`${'p'.repeat(240)}0123456789a`)
          .digest('hex');
        assert.match(await raw(`mg ${hashed} v`, /\r\n$/), /^EN/);
      } finally {
        await long.close();
      }
    });

    it('a 2 MB value fails with a clear StoreError, and the store keeps working', async () => {
      const value = 'x'.repeat(2 * 1024 * 1024);
      await assert.rejects(
        store().set(key('2mb'), value, 60_000),
        (error: unknown) =>
          error instanceof StoreError &&
          error.status === 500 &&
          /^\[memcached\] SET failed: the session record is 2097152 bytes, over the server's item size limit/.test(error.message),
      );
      assert.equal(await store().get(key('2mb')), undefined);
      await store().set(key('after-2mb'), '{"ok":1}', 60_000);
      assert.equal(await store().get(key('after-2mb')), '{"ok":1}');
    });

    it("a value just over the item size limit (under the library's own 1 MiB check) fails clearly too", async () => {
      const value = 'y'.repeat(1024 * 1024 - 60);
      await assert.rejects(store().set(key('just-over'), value, 60_000), /over the server's item size limit/);
    });

    it('if the server refuses a value anyway, SET fails with a StoreError (not a silent miss) and the store keeps working', async () => {
      // maxValueBytes above the server's real limit: the value reaches the server, which answers SERVER_ERROR.
      const optimistic = new MemcachedStore({ servers: server!.url, maxValueBytes: 4 * 1024 * 1024 });
      try {
        await assert.rejects(
          optimistic.set(key('refused'), 'z'.repeat(1024 * 1024 - 60), 60_000),
          (error: unknown) => error instanceof StoreError && /^\[memcached\] SET failed: the server did not store/.test(error.message),
        );
        await optimistic.set(key('after-refused'), '{"ok":2}', 60_000);
        assert.equal(await optimistic.get(key('after-refused')), '{"ok":2}');
      } finally {
        await optimistic.close();
      }
    });

    it('works with a memcached client it was given, and close() leaves that client usable', async () => {
      const client = new Memcached(server!.url, { retries: 0 });
      const given = new MemcachedStore({ client });
      try {
        await given.set(key('given'), '{"g":1}', 60_000);
        assert.equal(await given.get(key('given')), '{"g":1}');
        await given.close();
        const value = await new Promise((resolve, reject) => client.get(`sess:${key('given')}`, (e, v) => (e ? reject(e) : resolve(v))));
        assert.match(String(value), /^\d+:\{"g":1\}$/);
      } finally {
        client.end();
      }
    });

    it('a value written without the expiry prefix is returned as it is (the session layer judges it)', async () => {
      await raw(`set ${store().keyFor(key('foreign'))} 0 60 8\r\nnot-json`, /\r\n$/);
      assert.equal(await store().get(key('foreign')), 'not-json');
    });

    it('a key memcached cannot take fails without printing the key (it holds the sid)', async () => {
      const client = new Memcached(server!.url, { retries: 0, namespace: 'my app:' } as Memcached.options);
      const spaced = new MemcachedStore({ client });
      const sid = 'Zm9vYmFyLWJhei1xdXV4LTEyMzQ1Njc4OTAtX19fX18';
      try {
        for (const call of [spaced.get(sid), spaced.write(sid, '{}', 1, 60_000, null)]) {
          const error = await call.then(
            () => undefined,
            (e: unknown) => e,
          );
          assert.ok(error instanceof StoreError && /cannot be empty or contain whitespace/.test(error.message), String(error));
          assert.ok(!error.message.includes(sid) && !String(error.stack).includes(sid), error.message);
        }
      } finally {
        client.end();
      }
    });

    it('rejects bad options with a TypeError naming the option', () => {
      // @ts-expect-error neither client nor servers
      assert.throws(() => new MemcachedStore({}), /exactly one of `client`/);
      assert.throws(() => new MemcachedStore({ servers: server!.url, prefix: 'a b' }), /`prefix`/);
      assert.throws(() => new MemcachedStore({ servers: server!.url, timeoutMs: 0 }), /`timeoutMs`/);
    });
  },
});

describe('MemcachedStore faults', {
  skip:
    server && !server.external ? false : skip || 'MEMCACHED_URL is set: fault tests need a server started here (they stop and restart it)',
}, () => {
  const started = server as StartedServer;

  it('server down: operations reject with a StoreError at once, even 100 at a time; the same store works once memcached is back', async () => {
    // "At once": a refused connection ends each call, not the deadline, so the
    // deadline is set far beyond anything a refusal takes.
    const timeoutMs = 30_000;
    const store = new MemcachedStore({ servers: started.url, timeoutMs });
    try {
      await store.set('fault', '{"before":1}', 60_000);
      await started.halt();
      const t0 = Date.now();
      const results = await Promise.allSettled(
        Array.from({ length: 100 }, (_, i) => (i % 2 ? store.get('fault') : store.set(`fault-${i}`, '{}', 60_000))),
      );
      const took = Date.now() - t0;
      const wrong = results.flatMap((r) =>
        r.status === 'rejected' &&
        r.reason instanceof StoreError &&
        r.reason.status === 503 &&
        /^\[memcached\] (GET|SET) failed/.test(r.reason.message) &&
        !/no reply within/.test(r.reason.message)
          ? []
          : [r.status === 'rejected' ? String(r.reason) : 'resolved'],
      );
      assert.deepEqual(wrong, [], 'every operation rejects with a StoreError for the refused connection');
      assert.ok(took < timeoutMs, `took ${took} ms: the refusals, not the ${timeoutMs} ms deadline, ended the calls`);

      await started.resume();
      // The library's own bookkeeping would mark the server dead for 30 s (and
      // later spawn `ping`); the store's client reconnects on the next call.
      await store.set('fault', '{"after":1}', 60_000);
      assert.equal(await store.get('fault'), '{"after":1}');
    } finally {
      await started.resume();
      await store.close();
    }
  });

  it('a black-holed server fails each operation with a StoreError within timeoutMs', async () => {
    const proxy = await tcpProxy(started.port);
    const store = new MemcachedStore({ servers: `127.0.0.1:${proxy.port}`, timeoutMs: 300 });
    try {
      await store.set('blackhole', '{"b":1}', 60_000);
      proxy.blackhole();
      const t0 = Date.now();
      await assert.rejects(
        store.get('blackhole'),
        (error: unknown) => error instanceof StoreError && /^\[memcached\] GET failed: no reply within 300 ms/.test(error.message),
      );
      // The message names the deadline; it cannot have fired before it.
      assert.ok(Date.now() - t0 >= 300 - 1, `rejected ${Date.now() - t0} ms after the call, before the 300 ms deadline`);
      // The partition heals: the same store answers again.
      proxy.pass();
      assert.equal(await store.get('blackhole'), '{"b":1}');
    } finally {
      await store.close();
      await proxy.close();
    }
  });

  it('server-side expiry follows the rounded-up TTL (1 s granularity)', async () => {
    const store = new MemcachedStore({ servers: started.url });
    try {
      const itemKey = store.keyFor('server-expiry');
      const writeStarted = Date.now();
      // 1.5 s is sent as a 2 s lifetime, which memcached's one-second clock keeps
      // for at least 1 s: the item is on the server right after the write. Then
      // memcached itself must drop it (not only our read check): polled, bounded
      // by a multiple of the lifetime.
      await store.set('server-expiry', '{"s":1}', 1500);
      assert.match(await raw(`mg ${itemKey} v`, /\r\n$/), /^VA/);
      for (;;) {
        const reply = await raw(`mg ${itemKey} v`, /\r\n$/);
        if (/^EN/.test(reply)) break;
        assert.ok(
          Date.now() - writeStarted < 3 * 2000,
          `memcached still holds the item ${Date.now() - writeStarted} ms after a 2 s lifetime`,
        );
        await sleep(50);
      }
    } finally {
      await store.close();
    }
  });
});
