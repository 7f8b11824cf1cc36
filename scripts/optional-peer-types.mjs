#!/usr/bin/env node
/**
 * Run after `tsup` (see the `build` and `prepack` scripts): marks every import
 * of an optional peer dependency in the emitted declaration files with
 * `// @ts-ignore`, so that an app with only `koa` + `redis` installed compiles
 * with `skipLibCheck: false` (the declarations import `memcached` and
 * `mongodb` types for MemcachedStore and MongoStore). When the peer is
 * installed its types apply as usual; when it is not, they are `any` in
 * declarations the app does not use. Checked by test/typescript-consumer.test.ts.
 *
 * Usage: node scripts/optional-peer-types.mjs [distDir]
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const dist = resolve(process.argv[2] ?? join(root, 'dist'));
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
const optional = Object.entries(pkg.peerDependenciesMeta ?? {})
  .filter(([, meta]) => meta?.optional)
  .map(([name]) => name);
const MARK = '// @ts-ignore -- optional peer dependency: its types apply only when it is installed';

/** The package name an import specifier refers to (`@scope/name/sub` → `@scope/name`). */
function packageOf(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

let marked = 0;
for (const file of (await readdir(dist)).filter((f) => /\.d\.(c|m)?ts$/.test(f))) {
  const path = join(dist, file);
  const lines = (await readFile(path, 'utf8')).split('\n');
  const out = [];
  for (const line of lines) {
    // The error of a missing module is reported on the line of its specifier, so
    // that is the line to mark: `… from 'x'` (also the last line of a multi-line
    // import), `import 'x'`, and inline `import('x').T` types.
    const specifiers = [...line.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)['"]([^'"]+)['"]/g)].map((m) => m[1]);
    if (specifiers.some((s) => optional.includes(packageOf(s))) && out.at(-1)?.trim() !== MARK) {
      out.push(line.match(/^\s*/)[0] + MARK);
      marked++;
    }
    out.push(line);
  }
  await writeFile(path, out.join('\n'));
}
console.log(`optional-peer-types: marked ${marked} import(s) of ${optional.join(', ')} in ${dist}`);
