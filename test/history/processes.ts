/**
 * The app processes of a history run: forks of ./worker.ts, each behind its
 * own loopback TCP fault proxy (so the driver's HTTP connections can be delayed
 * and cut too), kept in numbered slots so a killed process is replaced in
 * place. Every process is stopped by its PID only.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { tcpProxy, type TcpProxy } from '../helpers/servers.js';
import type { WorkerConfig } from './worker.js';

const WORKER = resolve(import.meta.dirname, 'worker.ts');

export interface AppProcess {
  readonly slot: number;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Through the HTTP proxy: what the clients use. */
  readonly url: string;
  /** Straight to the app (the final read). */
  readonly directUrl: string;
  readonly proxy: TcpProxy;
}

/** Fork one app process and wait until it listens. */
export async function startApp(slot: number, config: WorkerConfig): Promise<AppProcess> {
  const child = fork(WORKER, [], {
    execArgv: ['--import', 'tsx'],
    // NODE_NO_WARNINGS: FerretDB's missing TTL index warns once per process; it is expected here.
    env: { ...process.env, HISTORY_WORKER: JSON.stringify(config), NODE_NO_WARNINGS: '1' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const port = await new Promise<number>((ok, fail) => {
      child.on('message', (m: { type?: string; port?: number }) => m?.type === 'listening' && ok(m.port!));
      child.once('exit', (code, signal) => fail(new Error(`history worker exited (${code ?? signal}) before listening`)));
      child.once('error', fail);
    });
    const proxy = await tcpProxy(port);
    return { slot, child, pid: child.pid!, url: `http://127.0.0.1:${proxy.port}`, directUrl: `http://127.0.0.1:${port}`, proxy };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

/** Stop an app process we started: disconnect (it exits by itself), SIGCONT in case it is paused, SIGKILL if it lingers. */
export async function stopApp(app: AppProcess): Promise<void> {
  await app.proxy.close();
  const { child } = app;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGCONT');
  if (child.connected) child.disconnect();
  else child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** SIGKILL an app process and wait until it is gone. */
export async function killApp(app: AppProcess): Promise<void> {
  const { child } = app;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
  await app.proxy.close();
}

/** Ask `app` how many requests it is still processing (undefined if it does not answer within `ms`). */
export function inflight(app: AppProcess, ms = 1000): Promise<number | undefined> {
  const { child } = app;
  if (!child.connected) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const onMessage = (m: { type?: string; count?: number }) => {
      if (m?.type !== 'inflight') return;
      done(m.count);
    };
    const timer = setTimeout(() => done(undefined), ms);
    const done = (count: number | undefined) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(count);
    };
    child.on('message', onMessage);
    child.send({ type: 'inflight?' });
  });
}

/** Arm `app` to report its next append scope (`holding`), then resolve true when it does or false after `ms`. */
export function armHolder(app: AppProcess, ms: number): Promise<boolean> {
  const { child } = app;
  if (!child.connected) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onMessage = (m: { type?: string }) => m?.type === 'holding' && done(true);
    const timer = setTimeout(() => done(false), ms);
    const done = (holding: boolean) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(holding);
    };
    child.on('message', onMessage);
    child.send({ type: 'arm', ms });
  });
}
