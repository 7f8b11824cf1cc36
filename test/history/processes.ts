/**
 * The app processes of a history run: forks of ./worker.ts, each with loopback
 * TCP fault proxies of its own, one in front of each server it uses and one in
 * front of its HTTP port (so one process's connections can be delayed,
 * black-holed or cut while the others carry on), kept in numbered slots so a
 * killed process is replaced in place. Every process is stopped by its PID only.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { tcpProxy, type TcpProxy } from '../helpers/servers.js';
import type { Backend } from './backends.js';
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
  /** In front of the HTTP port. */
  readonly proxy: TcpProxy;
  /** In front of each server this process uses (none for a direct process). */
  readonly serverProxies: readonly TcpProxy[];
}

/**
 * Fork one app process of `backend` and wait until it listens; `direct`: no
 * proxies in front of its servers (the final read).
 */
export async function startApp(slot: number, backend: Backend, extra: Partial<WorkerConfig> = {}, direct = false): Promise<AppProcess> {
  const serverProxies = direct ? [] : await Promise.all(backend.ports.map((port) => tcpProxy(port)));
  const route = new Map(backend.ports.map((port, i) => [port, serverProxies[i]?.port ?? port]));
  const config: WorkerConfig = { ...backend.workerConfig((port) => route.get(port) ?? port), ...extra };
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
    return {
      slot,
      child,
      pid: child.pid!,
      url: `http://127.0.0.1:${proxy.port}`,
      directUrl: `http://127.0.0.1:${port}`,
      proxy,
      serverProxies,
    };
  } catch (error) {
    child.kill('SIGKILL');
    await Promise.all(serverProxies.map((p) => p.close()));
    throw error;
  }
}

async function closeProxies(app: AppProcess): Promise<void> {
  await Promise.all([app.proxy, ...app.serverProxies].map((p) => p.close()));
}

/** Stop an app process we started: disconnect (it exits by itself), SIGCONT in case it is paused, SIGKILL if it lingers. */
export async function stopApp(app: AppProcess): Promise<void> {
  const { child } = app;
  if (child.exitCode !== null || child.signalCode !== null) {
    await closeProxies(app);
    return;
  }
  const exited = once(child, 'exit');
  child.kill('SIGCONT');
  if (child.connected) child.disconnect();
  else child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
  // After the exit: whatever the process sent is through (or dropped) before the proxies go.
  await closeProxies(app);
}

/** SIGKILL an app process and wait until it is gone. */
export async function killApp(app: AppProcess): Promise<void> {
  const { child } = app;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
  await closeProxies(app);
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
