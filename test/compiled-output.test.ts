import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import ts from 'typescript';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');

// A user's TypeScript app using `await using`, as tsc lowers it for Node 20
// (which has Symbol.asyncDispose but neither the syntax nor SuppressedError).
const userCode = (entry: string) => `
import Koa from 'koa';
import http from 'node:http';
import { session, MemoryStore } from ${JSON.stringify(entry)};
class FailingOnSet extends MemoryStore { fail = false; async set(k: string, v: string, t: number) { if (this.fail) throw new Error('down'); return super.set(k, v, t); } async write(k: string, v: string | undefined, n: number, t: number, c: number | null | 'newer') { if (this.fail) throw new Error('down'); return super.write(k, v, n, t, c); } }
const master = new FailingOnSet();
const app = new Koa();
app.keys = ['k'];
app.silent = true;
app.use(session({ master }));
app.use(async (ctx: any) => {
  if (ctx.path === '/both-fail') {
    master.fail = true;
    try {
      await using s = await ctx.session.lock();
      s.count = 1;
      throw new Error('block');
    } catch (e: any) {
      ctx.body = { name: e.name, error: e.error?.message, suppressed: e.suppressed?.message };
      return;
    }
  }
  {
    await using s = await ctx.session.lock();
    s.count = (s.count ?? 0) + 1;
  }
  ctx.body = await ctx.session.get();
});
const server = http.createServer(app.callback()).listen(0, '127.0.0.1', async () => {
  const port = (server.address() as any).port;
  const a = await fetch('http://127.0.0.1:' + port + '/');
  const cookie = a.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const b = await fetch('http://127.0.0.1:' + port + '/', { headers: { cookie } });
  const c = await fetch('http://127.0.0.1:' + port + '/both-fail', { headers: { cookie } });
  console.log(JSON.stringify({ first: await a.json(), second: await b.json(), both: await c.json(), hasSuppressedError: typeof (globalThis as any).SuppressedError }));
  server.close();
});
`;

describe('compiled output runs on this Node', { timeout: 180_000 }, () => {
  let dir: string;
  before(async () => {
    await run(process.execPath, [join(root, 'node_modules/tsup/dist/cli-default.js')], { cwd: root });
    // Inside the repo so the compiled app resolves koa from our node_modules.
    await mkdir(join(root, '.test-tmp'), { recursive: true });
    dir = await mkdtemp(join(root, '.test-tmp', 'compiled-'));
  });
  // A teardown, not a test: it runs even when a case above fails.
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const [format, entry, ext] of [
    ['ESM', join(root, 'dist/index.js'), 'mjs'],
    ['CommonJS', join(root, 'dist/index.cjs'), 'cjs'],
  ] as const) {
    it(`${format}: \`await using\` lowered by tsc works with the built package`, async () => {
      const out = ts.transpileModule(userCode(entry), {
        compilerOptions: {
          target: ts.ScriptTarget.ES2022,
          module: format === 'ESM' ? ts.ModuleKind.ESNext : ts.ModuleKind.CommonJS,
          esModuleInterop: true,
          lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'],
        },
      });
      const file = join(dir, `app.${ext}`);
      await writeFile(file, out.outputText);
      const { stdout } = await run(process.execPath, [file], { cwd: root });
      const result = JSON.parse(stdout.trim().split('\n').pop()!);
      assert.deepEqual(result.first, { count: 1 });
      assert.deepEqual(result.second, { count: 2 });
      // Block threw AND the save on dispose failed: the lowered helper builds a SuppressedError even where Node has none.
      assert.equal(result.both.name, 'SuppressedError');
      assert.match(result.both.error, /\[memory\] SET failed: down/);
      assert.equal(result.both.suppressed, 'block');
    });
  }

  // A store author's test file on the built `koa-locked-session/testing` subpath (package
  // self-reference, so the exports map is what resolves it), with the built main entry's stores.
  for (const [format, ext, code] of [
    [
      'ESM',
      'mjs',
      "import { MemoryLocker, MemoryStore } from 'koa-locked-session';\nimport { lockerConformance, storeConformance } from 'koa-locked-session/testing';\n",
    ],
    [
      'CommonJS',
      'cjs',
      "const { MemoryLocker, MemoryStore } = require('koa-locked-session');\nconst { lockerConformance, storeConformance } = require('koa-locked-session/testing');\n",
    ],
  ] as const) {
    it(`${format}: koa-locked-session/testing runs the conformance suites on the built stores`, async () => {
      const file = join(dir, `conformance.test.${ext}`);
      await writeFile(
        file,
        `${code}storeConformance('MemoryStore', () => new MemoryStore());\nlockerConformance('MemoryLocker', () => new MemoryLocker());\n`,
      );
      // Without the parent runner's NODE_TEST_CONTEXT, the child reports and exits as a top-level `node --test`.
      const { NODE_TEST_CONTEXT: _, ...env } = process.env;
      const { stdout } = await run(process.execPath, ['--test', '--test-reporter=tap', file], { cwd: root, env });
      assert.match(stdout, /# fail 0\b/);
      assert.ok(Number(/# pass (\d+)/.exec(stdout)?.[1]) >= 20, stdout.slice(-500));
    });
  }
});
