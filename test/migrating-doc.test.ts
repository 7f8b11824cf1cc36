/**
 * Every ```ts block of docs/migrating.md compiles against the real API (the
 * "after" apps a migrating user copies). Blocks are whole modules.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { it } from 'node:test';
import ts from 'typescript';

const root = resolve(import.meta.dirname, '..');
const dir = join(root, '.test-tmp', 'migrating-doc');

it('every ts block in docs/migrating.md type-checks', async () => {
  const markdown = await readFile(join(root, 'docs/migrating.md'), 'utf8');
  const blocks = [...markdown.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length >= 3, 'the guide has an "after" app per library');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'src.ts'), "export * from '../../src/index.js';\n");
  await writeFile(
    join(dir, 'data.ts'),
    `declare module './src.js' {
  interface SessionData { views?: number; count?: number }
}
export {};
`,
  );
  const files = await Promise.all(
    blocks.map(async (code, i) => {
      const file = join(dir, `block-${i + 1}.ts`);
      await writeFile(file, `${code.replaceAll("'koa-locked-session'", "'./src.js'")}\nexport {};\n`);
      return file;
    }),
  );
  const config = ts.getParsedCommandLineOfConfigFile(
    join(root, 'tsconfig.json'),
    {},
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined },
  )!;
  // koa-redis ships no types: the tests' minimal declaration of it.
  const program = ts.createProgram(
    [join(dir, 'data.ts'), join(root, 'test/adapters/peer-modules.d.ts'), join(root, 'examples/types/auth-stack.d.ts'), ...files],
    {
      ...config.options,
      noEmit: true,
    },
  );
  const problems = ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file && d.file.fileName.startsWith(dir))
    .map(
      (d) =>
        `${d.file!.fileName.slice(dir.length + 1)}:${d.file!.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
    );
  assert.deepEqual(
    problems,
    [],
    `docs/migrating.md blocks that do not compile (files in .test-tmp/migrating-doc):\n${problems.join('\n')}`,
  );
});
