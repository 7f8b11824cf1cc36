import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';

const root = resolve(import.meta.dirname, '..');
const dir = join(root, '.test-tmp', 'readme');

// Free names README snippets use without defining them, with the type a reader would have.
const PRELUDE: Record<string, string> = {
  Koa: "import Koa from 'koa';",
  app: "declare const app: import('koa');",
  ctx: "declare const ctx: import('koa').Context;",
  item: 'declare const item: string;',
  user: "declare const user: import('./src.js').UserOf<import('./src.js').SessionData>;",
  server: "declare const server: import('node:http').Server;",
  master: "declare const master: import('./src.js').Store;",
  mirrors: "declare const mirrors: import('./src.js').Store[];",
  redisStore: "declare const redisStore: import('./src.js').Store;",
  mongoStore: "declare const mongoStore: import('./src.js').Store;",
  redis: "declare const redis: any;",
  db: "declare const db: import('mongodb').Db;",
  router: "declare const router: { get(path: string, ...m: import('koa').Middleware[]): void };",
  showAccount: "declare const showAccount: import('koa').Middleware;",
  histogram: 'declare const histogram: { record(...args: unknown[]): void };',
};
// Library exports a snippet may use without repeating the import line.
for (const name of ['session', 'requireLogin', 'CHANNELS', 'MemoryStore', 'MemoryLocker', 'RedisStore', 'RedisLocker', 'MemcachedStore', 'MongoStore', 'CookieStore']) {
  PRELUDE[name] = `import { ${name} } from './src.js';`;
}

// Session fields README snippets use; a reader declares their own (README "TypeScript").
const DATA = `import './src.js';
declare module './src.js' {
  interface SessionData {
    count?: number;
    cart?: string[];
    visits?: number;
  }
}
`;

function blocks(markdown: string): string[] {
  return [...markdown.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

function moduleFor(code: string): string {
  const body = code.replaceAll("'koa-locked-session'", "'./src.js'").replaceAll("'koa-locked-session/testing'", "'./testing.js'");
  const defined = (name: string) => new RegExp(`(import[^;]*\\b${name}\\b[^;]*from|(const|let|var|function|class|interface)\\s+${name}\\b)`).test(body);
  const used = (name: string) => new RegExp(`\\b${name}\\b`).test(body);
  const prelude = Object.entries(PRELUDE).filter(([name]) => used(name) && !defined(name)).map(([, decl]) => decl);
  return [...prelude, body, 'export {};'].join('\n');
}

describe('README code blocks compile against the real API', () => {
  it('every ts block in README.md type-checks', async () => {
    const markdown = await readFile(join(root, 'README.md'), 'utf8');
    const found = blocks(markdown);
    assert.ok(found.length >= 5, 'the README has code blocks');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'src.ts'), "export * from '../../src/index.js';\n");
    await writeFile(join(dir, 'testing.ts'), "export * from '../../src/testing/index.js';\n");
    await writeFile(join(dir, 'data.ts'), DATA);
    const files = await Promise.all(
      found.map(async (code, i) => {
        const file = join(dir, `block-${i + 1}.ts`);
        await writeFile(file, moduleFor(code));
        return file;
      }),
    );
    const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined })!;
    const program = ts.createProgram([join(dir, 'data.ts'), ...files], { ...config.options, noEmit: true });
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file && d.file.fileName.startsWith(dir))
      .map((d) => {
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        return `${d.file!.fileName.slice(dir.length + 1)}:${line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
    assert.deepEqual(problems, [], `README blocks that do not compile (files in .test-tmp/readme):\n${problems.join('\n')}`);
  });
});
