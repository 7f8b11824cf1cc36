/**
 * API docs (issue 14 item 8), from one typedoc run: every public export and
 * member of the modules listed below has a doc comment, and everything they
 * reference is exported (typedoc `--validation`); and the pages' "On This
 * Page" navigation names every heading of the README (headings that are all
 * inline code, like `session(options?)`, used to come out blank). A ratchet:
 * the whole public API is checked except the files in PENDING (now none, and
 * typedoc.config.mjs has `treatWarningsAsErrors`); a file may go back in only
 * while it is being reworked.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');

/** Files whose public API still lacks doc comments (being reworked elsewhere when this was written). */
const PENDING: string[] = [];

describe('API docs (typedoc)', { timeout: 300_000 }, () => {
  let out = '';
  let output = '';
  before(async () => {
    out = await mkdtemp(join(tmpdir(), 'kls-api-docs-'));
    const args = [
      resolve(root, 'node_modules/typedoc/bin/typedoc'),
      '--out',
      out,
      '--validation.notDocumented',
      'true',
      '--validation.notExported',
      'true',
      '--validation.invalidLink',
      'true',
    ];
    // treatWarningsAsErrors (typedoc.config.mjs) makes any warning a non-zero exit: keep its output for the assertions.
    const { stdout, stderr } = await run(process.execPath, args, {
      cwd: root,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    }).catch((error: { stdout?: string; stderr?: string }) => ({ stdout: error.stdout ?? '', stderr: error.stderr ?? String(error) }));
    output = `${stdout}\n${stderr}`;
  });
  after(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  it(`finds no undocumented or unexported public API${PENDING.length > 0 ? ` outside ${PENDING.join(', ')}` : ''}`, () => {
    // A clean run prints only "html generated"; one with findings ends with "Found N errors and M warnings".
    assert.ok(/html generated at|Found \d+ errors/.test(output), `typedoc ran and reported:\n${output}`);
    const warnings = output
      .split('\n')
      .filter((line) => /\[warning\]|\[error\]/.test(line) && !/Found \d+ errors and \d+ warnings/.test(line));
    const ours = warnings.filter((line) => !PENDING.some((file) => line.includes(`koa-locked-session/${file},`)));
    assert.deepEqual(ours, []);
  });

  it('"On This Page" names every README heading, inline-code headings included', async () => {
    const html = await readFile(join(out, 'index.html'), 'utf8');
    const nav = html.slice(html.indexOf('On This Page'), html.indexOf('class="site-menu"'));
    assert.ok(nav.length > 0, 'the landing page has its "On This Page" navigation');
    const entries = [...nav.matchAll(/<a href="#([^"]*)"><span>(.*?)<\/span><\/a>/g)].map(([, link, text]) => ({
      link,
      text: text!.replace(/<wbr\/>/g, ''),
    }));
    assert.ok(entries.length > 20, `the README's headings are listed (${entries.length})`);
    assert.deepEqual(
      entries.filter((e) => !/[A-Za-z]/.test(e.text) || /^_(-\d+)?$/.test(e.link!)),
      [],
      'no blank heading or `#_` anchor',
    );
    // GitHub's anchor for the heading, so links written against the README on GitHub work here too.
    assert.ok(entries.some((e) => e.link === 'sessionoptions' && e.text === 'session(options?)'));
  });
});
