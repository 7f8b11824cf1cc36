/**
 * "Why was my session reset?" (README): with NODE_DEBUG=koa-locked-session each
 * reset is logged with its reason, and never with the sid or session data.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const script = fileURLToPath(new URL('./helpers/reset-reasons-app.ts', import.meta.url));

describe('NODE_DEBUG=koa-locked-session says why a session was reset', () => {
  it('logs bad signature, bad format, a record gone and a bad record, each with its reason and without the sid', async () => {
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', script],
        { env: { ...process.env, NODE_DEBUG: 'koa-locked-session' }, timeout: 60_000 },
        (error, out, err) => (error ? reject(Object.assign(error, { stderr: err })) : resolve({ stdout: out, stderr: err })),
      );
    });
    const { sids } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { sids: string[] };
    const section = (label: string): string => stderr.split(`--- ${label}\n`)[1]?.split('\n--- ')[0] ?? '';
    assert.match(section('bad-signature'), /session session reset: the sid cookie is unsigned or its signature does not match app\.keys/);
    assert.match(section('bad-format'), /session session reset: the sid cookie is not a sid this library issued/);
    assert.match(section('gone'), /session session reset: its record is gone from the master/);
    assert.match(section('bad-record'), /session session reset: the stored record could not be decoded/);
    assert.equal(sids.length, 3);
    for (const sid of sids) assert.ok(!stderr.includes(sid), 'no sid in the debug output');
  });
});
