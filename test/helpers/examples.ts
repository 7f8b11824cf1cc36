import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { cookieHeader } from './cookies.js';
import { freePort } from './ports.js';

const root = resolve(import.meta.dirname, '../..');

/**
 * Start `examples/<name>.ts` exactly as the README says (tsx, PORT), wait for its
 * "on http://localhost:<port>" line, and return its base URL and a stop function.
 */
export async function startExample(
  name: string,
  env: Record<string, string> = {},
): Promise<{ url: string; stop(): Promise<void>; output(): string; waitFor(pattern: RegExp): Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', `examples/${name}.ts`], {
    cwd: root,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c) => (output += c));
  child.stderr!.on('data', (c) => (output += c));
  await new Promise<void>((ready, fail) => {
    const onData = () => output.includes(`localhost:${port}`) && ready();
    child.stdout!.on('data', onData);
    child.once('exit', (code) => fail(new Error(`examples/${name}.ts exited with ${code} before listening:\n${output}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    // Resolves once the example has printed a line matching `pattern` (its stdout arrives asynchronously).
    waitFor: (pattern: RegExp) =>
      new Promise<void>((found, fail) => {
        if (pattern.test(output)) return found();
        const check = () => {
          if (!pattern.test(output)) return;
          child.stdout!.off('data', check);
          found();
        };
        child.stdout!.on('data', check);
        child.once('exit', () => fail(new Error(`examples/${name}.ts exited before printing ${pattern}:\n${output}`)));
      }),
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}

/** `name=value` pairs from a fetch Response's Set-Cookie headers, ready for a Cookie header. */
export function cookiesOf(res: Response): string {
  return cookieHeader(res);
}
