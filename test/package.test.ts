import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const bin = (name: string) => resolve(root, 'node_modules/.bin', name);

describe('the published package', { timeout: 300_000 }, () => {
  it('npm pack contains only what a user needs', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root });
    const { files } = (JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!;
    const paths = files.map((f) => f.path).sort();
    for (const path of paths)
      assert.match(
        path,
        /^(dist\/(index|testing)\.(c?js|d\.c?ts)(\.map)?|dist\/[a-z]+-[A-Za-z0-9_-]+\.d\.c?ts|README\.md|docs\/[a-z-]+\.md|CHANGELOG\.md|LICENSE|package\.json)$/,
        `unexpected file in the package: ${path}`,
      );
    assert.ok(paths.includes('package.json') && paths.includes('README.md') && paths.includes('LICENSE'));
    // The README links its docs/ pages relatively: they ship beside it, so the links work in node_modules too.
    const pages = (await readdir(resolve(root, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
    assert.ok(pages.length > 0);
    for (const page of pages) assert.ok(paths.includes(page), `${page} is not in the package`);
  });

  it('publint and @arethetypeswrong/cli pass for ESM, CommonJS and types', async () => {
    await run(bin('tsup'), [], { cwd: root });
    const publint = await run(bin('publint'), ['--strict'], { cwd: root });
    assert.match(publint.stdout, /All good/);
    const attw = await run(bin('attw'), ['--pack', '.', '--format', 'json'], { cwd: root });
    const report = JSON.parse(attw.stdout) as { analysis: { problems: unknown[] } };
    assert.deepEqual(report.analysis.problems, []);
  });

  it('engines says Node >= 20 and the version is 0.1.0 in package.json and CHANGELOG', async () => {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(resolve(root, 'package.json'), 'utf8')) as { engines: { node: string }; version: string };
    assert.match(pkg.engines.node, /^>=20/);
    assert.equal(pkg.version, '0.1.0');
    assert.match(await readFile(resolve(root, 'CHANGELOG.md'), 'utf8'), /^## 0\.1\.0/m);
  });
});
