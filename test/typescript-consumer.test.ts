/**
 * TypeScript for every user (issue 14 item 6): a Redis-only app, compiled with
 * `skipLibCheck: false` against the packed tarball, with only koa, @types/koa,
 * redis and typescript installed (no memcached, mongodb, pg or ioredis types),
 * type-checks, as ESM (top-level await) and as CommonJS (`.cts`, the
 * `require` types). No network: the packages are linked from our node_modules.
 *
 * The control: the same app against the declarations without the optional-peer
 * marks of scripts/optional-peer-types.mjs fails with "Cannot find module
 * 'mongodb'", so this test fails if the build stops applying them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const tsc = join(root, 'node_modules/typescript/bin/tsc');

/** Where Node would find package `name` from `dir` (its own node_modules first, then up), or undefined. */
function resolveFrom(dir: string, name: string): string | undefined {
  for (let at = dir; ; at = dirname(at)) {
    const candidate = join(at, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (at === root || dirname(at) === at) return undefined;
  }
}

/**
 * `names` and everything they depend on (`dependencies`, required peers), each
 * at the copy its dependent would load (a nested copy wins: koa's own
 * content-disposition 1.x, not a hoisted 2.x that another dev dependency brought),
 * as a map from package name to its directory in our node_modules.
 */
async function closure(names: string[]): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const queue = names.map((name) => ({ name, from: root }));
  while (queue.length > 0) {
    const { name, from } = queue.shift()!;
    if (found.has(name)) continue;
    const dir = resolveFrom(from, name);
    if (!dir) continue; // an optional dependency not installed here
    found.set(name, dir);
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    const deps = [
      ...Object.keys(pkg.dependencies ?? {}),
      ...Object.keys(pkg.peerDependencies ?? {}).filter((p) => !pkg.peerDependenciesMeta?.[p]?.optional),
    ];
    queue.push(...deps.map((dep) => ({ name: dep, from: dir })));
  }
  return found;
}

const ESM_APP = `
import Koa from 'koa';
import { createClient } from 'redis';
import { session, RedisStore, RedisLocker, StoreError, type SessionOptions } from 'koa-locked-session';

declare module 'koa-locked-session' {
  interface SessionData {
    views?: number;
  }
}

const client = createClient({ url: process.env.REDIS_URL });
client.on('error', (error: unknown) => console.error(error));
await client.connect();

const options: SessionOptions = { master: new RedisStore({ client }), locker: new RedisLocker({ client }) };
const app = new Koa();
app.keys = ['a long random secret'];
app.use(session(options));
app.use(async (ctx) => {
  const views: number = await ctx.session.withLock((s) => (s.views = (s.views ?? 0) + 1));
  ctx.body = { views };
});
app.on('error', (error: unknown) => {
  if (error instanceof StoreError) console.error(error.store, error.code);
});
export default app;
`;

const CJS_APP = `
import Koa = require('koa');
import { session, MemoryStore } from 'koa-locked-session';
const app = new Koa();
app.use(session({ master: new MemoryStore() }));
export = app;
`;

describe('a Redis-only TypeScript app type-checks against the packed package (skipLibCheck: false)', { timeout: 300_000 }, () => {
  let dir: string;
  let app: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kls-ts-consumer-'));
    // npm pack runs `prepack` (tsup, then the optional-peer marks): exactly what is published.
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
    // prepack's build logs come first (tsup prints its own `[…]` tags): the JSON is the array that opens a line.
    const { filename } = (JSON.parse(stdout.slice(stdout.search(/^\[\s*$/m))) as Array<{ filename: string }>)[0]!;
    app = join(dir, 'app');
    const own = join(app, 'node_modules/koa-locked-session');
    await mkdir(own, { recursive: true });
    await run('tar', ['-xzf', join(dir, filename), '-C', own, '--strip-components=1']);
    for (const [name, source] of await closure(['koa', '@types/koa', '@types/node', 'redis', 'typescript'])) {
      const target = join(app, 'node_modules', name);
      await mkdir(dirname(target), { recursive: true });
      await symlink(source, target, 'dir');
    }
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    // preserveSymlinks: packages resolve their imports inside the app's node_modules (as
    // in a real install), not next to where the links point. One project per module
    // system: an app loads either the ESM or the CommonJS declarations, never both.
    const compilerOptions = {
      strict: true,
      skipLibCheck: false,
      noEmit: true,
      preserveSymlinks: true,
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      types: ['node'],
    };
    await writeFile(join(app, 'tsconfig.esm.json'), JSON.stringify({ compilerOptions, files: ['app.ts'] }));
    await writeFile(join(app, 'tsconfig.cjs.json'), JSON.stringify({ compilerOptions, files: ['app.cts'] }));
    await writeFile(join(app, 'app.ts'), ESM_APP);
    await writeFile(join(app, 'app.cts'), CJS_APP);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('only koa, redis and their types are installed: no memcached, mongodb, pg or ioredis', async () => {
    const installed = await readdir(join(app, 'node_modules'));
    for (const name of ['memcached', 'mongodb', 'pg', 'ioredis']) assert.ok(!installed.includes(name), `${name} is installed`);
    assert.ok(!existsSync(join(app, 'node_modules/@types/memcached')) && !existsSync(join(app, 'node_modules/@types/pg')));
  });

  for (const [kind, project] of [
    ['ESM app (top-level await)', 'tsconfig.esm.json'],
    ['CommonJS (.cts) app', 'tsconfig.cjs.json'],
  ] as const) {
    it(`tsc passes on the ${kind}`, async () => {
      const result = await run(process.execPath, [tsc, '-p', join(app, project)]).catch((error: { stdout: string }) => error);
      assert.equal(result.stdout, '', `tsc reported:\n${result.stdout}`);
    });
  }

  it('control: without the optional-peer marks, tsc fails on the missing mongodb types', async () => {
    const own = join(app, 'node_modules/koa-locked-session');
    const stripped = join(dir, 'stripped');
    await cp(own, stripped, { recursive: true });
    try {
      for (const file of ['dist/index.d.ts', 'dist/index.d.cts']) {
        const path = join(own, file);
        await writeFile(path, (await readFile(path, 'utf8')).replace(/^\s*\/\/ @ts-ignore -- optional peer.*\n/gm, ''));
      }
      const failed = await run(process.execPath, [tsc, '-p', join(app, 'tsconfig.esm.json')]).then(
        () => undefined,
        (error: { stdout: string }) => error.stdout,
      );
      assert.match(failed ?? 'tsc passed', /Cannot find module 'mongodb'/);
    } finally {
      await rm(own, { recursive: true, force: true });
      await cp(stripped, own, { recursive: true });
    }
  });
});
