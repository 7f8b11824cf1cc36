/**
 * The README and every docs/*.md page are the user's guide: every ```ts block in
 * them compiles against the real API (one program, each block its own module),
 * and every relative link between them points at a file that exists and, for a
 * `#anchor`, at a heading GitHub gives that anchor (the CHANGELOG's and
 * benchmarks/README.md's links too).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';

const root = resolve(import.meta.dirname, '..');
const dir = join(root, '.test-tmp', 'readme');

/** README.md and every page of docs/ (docs/api is typedoc's output, not a page). */
async function pages(): Promise<string[]> {
  const docs = (await readdir(join(root, 'docs')))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

// Free names snippets use without defining them, with the type a reader would have.
const PRELUDE: Record<string, string> = {
  Koa: "import Koa from 'koa';",
  app: "declare const app: import('koa');",
  ctx: "declare const ctx: import('koa').Context;",
  item: 'declare const item: string;',
  user: "declare const user: import('./src.js').UserOf<import('./src.js').SessionData>;",
  server: "declare const server: import('node:http').Server;",
  master: "declare const master: import('./src.js').Store;",
  mirrors: "declare const mirrors: import('./src.js').Store[];",
  locker: "declare const locker: import('./src.js').Locker;",
  redisStore: "declare const redisStore: import('./src.js').Store;",
  mongoStore: "declare const mongoStore: import('./src.js').Store;",
  redis: 'declare const redis: any;',
  db: "declare const db: import('mongodb').Db;",
  router: "declare const router: { get(path: string, ...m: import('koa').Middleware[]): void };",
  showAccount: "declare const showAccount: import('koa').Middleware;",
  histogram: 'declare const histogram: { record(...args: unknown[]): void };',
};
// Library exports a snippet may use without repeating the import line.
for (const name of [
  'session',
  'requireLogin',
  'CHANNELS',
  'MemoryStore',
  'MemoryLocker',
  'RedisStore',
  'RedisLocker',
  'MemcachedStore',
  'MongoStore',
  'CookieStore',
]) {
  PRELUDE[name] = `import { ${name} } from './src.js';`;
}

// Session fields snippets use; a reader declares their own (README "TypeScript").
const DATA = `import './src.js';
declare module './src.js' {
  interface SessionData {
    count?: number;
    cart?: string[];
    visits?: number;
    views?: number;
  }
}
`;

function blocks(markdown: string): string[] {
  return [...markdown.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

function moduleFor(code: string): string {
  const body = code.replaceAll("'koa-locked-session'", "'./src.js'").replaceAll("'koa-locked-session/testing'", "'./testing.js'");
  const defined = (name: string) =>
    new RegExp(`(import[^;]*\\b${name}\\b[^;]*from|(const|let|var|function|class|interface)\\s+${name}\\b)`).test(body);
  const used = (name: string) => new RegExp(`\\b${name}\\b`).test(body);
  const prelude = Object.entries(PRELUDE)
    .filter(([name]) => used(name) && !defined(name))
    .map(([, decl]) => decl);
  return [...prelude, body, 'export {};'].join('\n');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens, `-N` for repeats. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, text] of withoutFences(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const plain = text!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*~]/g, ''); // GitHub keeps `_`
    const slug = plain
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

/** The markdown without its fenced code blocks (a `#` line in a shell block is no heading). */
function withoutFences(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '');
}

/** The markdown with fenced code blocks and inline code blanked out (their text is not links). */
function withoutCode(markdown: string): string {
  return withoutFences(markdown).replace(/`[^`\n]*`/g, '``');
}

describe('the guide (README.md and docs/*.md)', () => {
  it('every ts block in README.md and every docs page type-checks', async () => {
    const files = await pages();
    const found: Array<{ page: string; code: string }> = [];
    for (const page of files) {
      for (const code of blocks(await readFile(join(root, page), 'utf8'))) found.push({ page, code });
    }
    assert.ok(found.filter((b) => b.page === 'README.md').length >= 5, 'the README has code blocks');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'src.ts'), "export * from '../../src/index.js';\n");
    await writeFile(join(dir, 'testing.ts'), "export * from '../../src/testing/index.js';\n");
    await writeFile(join(dir, 'data.ts'), DATA);
    const origin = new Map<string, string>();
    const written = await Promise.all(
      found.map(async ({ page, code }, i) => {
        const file = join(dir, `${page.replace(/[/.]/g, '-')}-block-${i + 1}.ts`);
        origin.set(file, page);
        await writeFile(file, moduleFor(code));
        return file;
      }),
    );
    const config = ts.getParsedCommandLineOfConfigFile(
      join(root, 'tsconfig.json'),
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined },
    )!;
    // koa-redis and koa-generic-session ship no types (docs/migrating.md uses them): the tests' minimal declarations.
    const program = ts.createProgram(
      [join(dir, 'data.ts'), join(root, 'test/adapters/peer-modules.d.ts'), join(root, 'examples/types/auth-stack.d.ts'), ...written],
      { ...config.options, noEmit: true },
    );
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file && d.file.fileName.startsWith(dir))
      .map((d) => {
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        return `${d.file!.fileName.slice(dir.length + 1)}:${line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
    assert.deepEqual(
      problems,
      [],
      `blocks that do not compile (files in .test-tmp/readme, named after their page):\n${problems.join('\n')}`,
    );
  });

  it('every relative link points at an existing file and heading', async () => {
    const broken: string[] = [];
    const headings = new Map<string, Set<string>>();
    const headingsOf = async (file: string) => {
      if (!headings.has(file)) headings.set(file, anchors(await readFile(file, 'utf8')));
      return headings.get(file)!;
    };
    // The CHANGELOG and the benchmarks' README link the guide and benchmarks/results/ too.
    for (const page of [...(await pages()), 'CHANGELOG.md', 'benchmarks/README.md']) {
      const file = join(root, page);
      const text = withoutCode(await readFile(file, 'utf8'));
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        if (/^[a-z]+:/i.test(target!)) continue; // https:, mailto:
        const [path, anchor] = target!.split('#') as [string, string | undefined];
        const linked = path === '' ? file : resolve(dirname(file), path);
        if (!existsSync(linked)) {
          broken.push(`${page}: ${target} (no file ${relative(root, linked)})`);
          continue;
        }
        if (anchor !== undefined && linked.endsWith('.md') && !(await headingsOf(linked)).has(anchor)) {
          broken.push(`${page}: ${target} (no heading with anchor #${anchor} in ${relative(root, linked)})`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });

  it('every docs page is linked from the README', async () => {
    const readme = withoutCode(await readFile(join(root, 'README.md'), 'utf8'));
    const linked = new Set([...readme.matchAll(/\]\((docs\/[^)#\s]+)/g)].map((m) => m[1]));
    assert.deepEqual(
      (await pages()).filter((page) => page !== 'README.md' && !linked.has(page)),
      [],
      'pages a README reader cannot reach',
    );
  });
});
