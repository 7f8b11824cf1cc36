/**
 * SECURITY.md: no error message or stack, diagnostics message or debug line
 * contains a session id or a key derived from it (`sess:{…}`, `lock:{…}`).
 * The fault scenarios run in a child process with NODE_DEBUG=koa-locked-session
 * (debuglog writes to stderr, which is collected whole, together with Koa's
 * default error log); the child reports every error (message, stack, causes),
 * every diagnostics-channel message and every sid it saw.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const script = fileURLToPath(new URL('./helpers/no-sid-scenarios.ts', import.meta.url));

interface Report {
  texts: string[];
  sids: string[];
  outcomes: Record<string, number[] | string>;
  servers: Record<string, boolean>;
}

const run = () =>
  new Promise<{ report: Report; stderr: string }>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', script],
      { env: { ...process.env, NODE_DEBUG: 'koa-locked-session' }, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (error, stdout, stderr) => {
        const last = stdout.trim().split('\n').at(-1) ?? '';
        try {
          resolve({ report: JSON.parse(last) as Report, stderr });
        } catch {
          reject(error ?? new Error(`no report from the scenario process:\n${stdout}\n${stderr}`));
        }
      },
    );
  });

describe('no sid in any message, stack, debug line or diagnostics message', () => {
  it('fault scenarios on real servers: black-holed Redis (lock, save), dead mirror, dead Memcached/Mongo master, tampered cookies, lock timeout', async () => {
    const { report, stderr } = await run();
    const { texts, sids, outcomes, servers } = report;
    // Each scenario produced its fault (a 503 where a store or the lock failed), so there was something to leak.
    const expected: Record<string, number[]> = {
      'tampered cookies': [200, 200, 200, 200],
      'lock timeout': [200, 503, 200],
      'driver errors quoting the key': [200, 503],
      ...(servers.redis ? { 'redis black-holed during the lock': [200, 503], 'redis black-holed during the save': [200, 503] } : {}),
      ...(servers.memcached ? { 'dead memcached master': [200, 503, 503], 'dead mirror': [200, 200] } : {}),
      ...(servers.mongo ? { 'dead mongo master': [200, 503] } : {}),
    };
    assert.deepEqual(outcomes, expected);
    assert.ok(sids.length >= 8, `sids seen: ${sids.length}`);
    assert.ok(
      texts.some((t) => t.startsWith('app error')),
      'errors were collected',
    );
    assert.match(stderr, /KOA-LOCKED-SESSION/, 'debug lines were collected');
    const leaks: string[] = [];
    for (const sid of sids) {
      for (const text of [...texts, stderr]) {
        const at = text.indexOf(sid);
        if (at >= 0) leaks.push(`${sid.slice(0, 6)}… in: ${text.slice(Math.max(0, at - 160), at + 60).replaceAll(sid, '<SID>')}`);
      }
    }
    assert.deepEqual(leaks, [], 'no sid in any collected text');
  });
});

describe('redactSids', () => {
  it('removes hash-tagged keys, default-shaped sids and known ids; leaves ordinary words, constants and paths alone', async () => {
    const { redactSids } = await import('../src/util/format.js');
    const sid = 'Zx3_kP9-qLm2VbN8cDe4FgH6jKl0MnOpQrStUvWxYz1';
    assert.equal(sid.length, 43);
    assert.equal(redactSids(`GET failed for sess:{${sid}} and lock:{custom-id-0123456789}`), 'GET failed for sess:{…} and lock:{…}');
    assert.equal(redactSids(`dup key: { _id: "sess:${sid}" }`), 'dup key: { _id: "sess:…" }');
    assert.equal(redactSids('key short-custom-id-42 gone', ['short-custom-id-42']), 'key … gone');
    const plain =
      'koa-locked-session: ERR_SESSION_LOCK_TIMEOUT_AND_SOME_MORE_WORDS_X raise `maxPendingMirrorWrites` at /work/node_modules/.pnpm/x/index.js:1:2';
    assert.equal(redactSids(plain), plain);
  });
});
