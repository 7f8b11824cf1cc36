import { defineConfig } from 'tsup';

export default defineConfig({
  // `testing`: the conformance suites for store and locker authors (`koa-locked-session/testing`).
  entry: { index: 'src/index.ts', testing: 'src/testing/index.ts' },
  format: ['esm', 'cjs'],
  // stripInternal: members marked `@internal` (the handle's constructor, the request-end
  // hook, …) are wiring between our own modules, not API: they stay out of the .d.ts.
  dts: { compilerOptions: { stripInternal: true } },
  clean: true,
  sourcemap: true,
  // One self-contained file per entry and format (no shared chunks): the testing
  // entry recognises our errors by `code`, not by class identity.
  splitting: false,
  // Keep `node:test`: it has no bare-name alias (`require('test')` fails).
  removeNodeProtocol: false,
  // Node 20 has Symbol.asyncDispose but not `await using` syntax: esbuild lowers it.
  target: 'node20',
});
