/**
 * How the harness starts its TypeScript children. Node plus `--import tsx`
 * costs ~0.4 s more per start than plain Node, and the harness starts a child
 * per measurement, so it bundles `app.ts` and `lib/loadgen.ts` once with
 * esbuild (what tsx and tsup run on; packages stay external, imports of the
 * variants stay lazy through code splitting) into `.bench-tmp/` (git-ignored).
 * Without esbuild it falls back to `node --import tsx`.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

export interface Entrypoints {
  /** Node argv (before script arguments) that runs the app child. */
  app: string[];
  /** Node argv that runs the load generator. */
  loadgen: string[];
  /** `esbuild bundle` or `tsx`. */
  how: string;
  cleanup(): Promise<void>;
}

export async function buildEntrypoints(root: string): Promise<Entrypoints> {
  const src = { app: join(root, 'benchmarks/app.ts'), loadgen: join(root, 'benchmarks/lib/loadgen.ts') };
  // Inside the repo so that bare imports resolve to its node_modules.
  const outdir = join(root, '.bench-tmp', `run-${process.pid}`);
  try {
    const esbuild = await import('esbuild');
    await mkdir(outdir, { recursive: true });
    await esbuild.build({
      entryPoints: src,
      outdir,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      outExtension: { '.js': '.mjs' },
      sourcemap: 'linked',
      logLevel: 'error',
    });
    return {
      app: ['--enable-source-maps', join(outdir, 'app.mjs')],
      loadgen: [join(outdir, 'loadgen.mjs')],
      how: 'esbuild bundle',
      cleanup: () => rm(outdir, { recursive: true, force: true }),
    };
  } catch (error) {
    await rm(outdir, { recursive: true, force: true }).catch(() => {});
    process.stderr.write(`bench: esbuild bundle failed (${(error as Error).message.split('\n')[0]}); using node --import tsx\n`);
    return {
      app: ['--import', 'tsx', src.app],
      loadgen: ['--import', 'tsx', src.loadgen],
      how: 'node --import tsx',
      cleanup: async () => {},
    };
  }
}
