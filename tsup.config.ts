import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  // Node 20 has Symbol.asyncDispose but not `await using` syntax: esbuild lowers it.
  target: 'node20',
});
