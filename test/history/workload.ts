/**
 * The history workload (issue 13, item 4): client loops append unique elements
 * to one list in ONE session (one cookie) under the lock and read it with
 * `get()`, spread over several app processes, while faults from a seeded
 * schedule are injected; every operation is recorded with the driver's
 * monotonic clock (`performance.now()` around the HTTP request), then the run
 * stops the faults, waits until everything recovered and has settled, reads
 * the final list, and checks the history (./checker.ts).
 *
 * Statuses: 200 → `ok`; an answer saying nothing was written (lock timeout,
 * conflict, lost lease, a store error with outcome `none`) → `failed`; anything
 * else (a timeout, a cut connection, a store error whose write may have
 * happened) → `unknown`.
 *
 * Faults (each only where it makes sense for the configuration):
 * - `pause`: a process that holds the session's lock (caught in its scope) is
 *   SIGSTOPped for 1.5–2.5 leases, then resumed; with MemoryStore, the single
 *   process is paused with requests in flight.
 * - `kill`: a process is SIGKILLed and a new one started in its place.
 * - `restart`: the server holding the locks is stopped and started again on
 *   the same port: Redis (AOF, `appendfsync always`; it also holds the
 *   sessions for `redis`), or PostgreSQL (immediate shutdown, then WAL
 *   recovery; it holds both).
 * - `delay`, `partition`, `cut`: one process's connections to its servers, or
 *   the driver's to it, are delayed, black-holed for a while (half of the
 *   server partitions catch it holding the lock and outlast its lease: a late
 *   write), or cut.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { seeded } from '../helpers/stall.js';
import { startBackend, type ConfigName, type Timings } from './backends.js';
import { checkHistory, describeSmallest, type CheckResult, type Op, type Status } from './checker.js';
import { armHolder, inflight, killApp, startApp, stopApp, type AppProcess } from './processes.js';
import type { WorkerConfig } from './worker.js';

export const FAULTS = ['pause', 'kill', 'restart', 'delay', 'partition', 'cut'] as const;
export type FaultKind = (typeof FAULTS)[number];

export interface RunOptions {
  readonly config: ConfigName;
  /** How long the clients run, with faults. */
  readonly seconds: number;
  readonly seed: number;
  /** App processes (ignored for `memory`, which is one process). @default 4 */
  readonly processes?: number;
  /** Client loops. @default 2 per process (8 for `memory`) */
  readonly clients?: number;
  /** Mean time between faults. @default 700 */
  readonly faultEveryMs?: number;
  /**
   * Keep running past `seconds` until every fault kind that applies to the
   * configuration was injected at least once (a short run then still covers
   * them all). @default false
   */
  readonly everyFault?: boolean;
  /** @default { leaseMs: 1000, storeTimeout: 500, lockTimeout: 3000 } */
  readonly timings?: Partial<Timings>;
  /** Run the broken append of {@link WorkerConfig.unsafeAppend} (the checker must find lost appends). @default false */
  readonly unsafeAppend?: boolean;
  /** Progress lines (faults as they happen). */
  readonly log?: ((line: string) => void) | undefined;
}

export interface RunReport {
  readonly config: ConfigName;
  readonly seed: number;
  readonly processes: number;
  readonly clients: number;
  readonly result: CheckResult;
  readonly faults: Readonly<Record<FaultKind, number>>;
  /** Pauses that caught a process inside its scope (holding the lock). */
  readonly pausedHolders: number;
  /** Acknowledged appends whose scope got the lease handed over by the scope before it in its process (not from the locker). */
  readonly handoffs: number;
  /** Master writes made by the requests of acknowledged appends (fewer than the acknowledged appends: group commit batched them). */
  readonly masterWrites: number;
  /** Acknowledged appends whose request wrote nothing to the master: a later scope's write carried the change (group commit). */
  readonly carried: number;
  /** Wall time of the run in s: starting the processes, the clients with faults, recovery, the final read. */
  readonly durationS: number;
  readonly faultLog: readonly string[];
  readonly history: readonly Op[];
  readonly final: readonly string[];
  /** The smallest counterexample, or '' when the history is valid. */
  readonly counterexample: string;
}

/** Outcome of one HTTP request: a status for the history, plus the parsed body. */
interface Reply {
  status: Status;
  body?: { list?: string[]; code?: string; outcome?: string; handedOver?: boolean; masterWrites?: number };
  note?: string;
  cookie?: string;
}

const NOTHING_WRITTEN = new Set(['ERR_SESSION_LOCK_TIMEOUT', 'ERR_SESSION_CONFLICT', 'ERR_SESSION_LOCK_LOST']);

async function call(url: string, cookie: string | undefined, timeoutMs: number): Promise<Reply> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { headers: cookie ? { cookie } : {}, signal: AbortSignal.timeout(timeoutMs) });
    text = await res.text();
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    return { status: 'unknown', note: cause?.code ?? (error as Error).name };
  }
  let body: NonNullable<Reply['body']> = {};
  try {
    body = (JSON.parse(text) as Reply['body']) ?? {};
  } catch {
    // not ours: treat as unknown below
  }
  const set = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .filter((c) => !c.endsWith('='));
  const reply = { body, ...(set.length ? { cookie: set.join('; ') } : {}) };
  if (res.status === 200) return { status: 'ok', ...reply };
  const code = body?.code;
  const failed = code !== undefined && (NOTHING_WRITTEN.has(code) || (code === 'ERR_SESSION_STORE' && body?.outcome === 'none'));
  return {
    status: failed ? 'failed' : 'unknown',
    note: `${res.status} ${code ?? ''}${body?.outcome ? `/${body.outcome}` : ''}`.trim(),
    ...reply,
  };
}

/** Run one configuration; `{ skip }` when its servers are not available here (a loud skip, or a throw under `CI`). */
export async function runHistory(options: RunOptions): Promise<RunReport | { skip: string }> {
  const timings: Timings = { leaseMs: 1000, storeTimeout: 500, lockTimeout: 3000, ...options.timings };
  const log = options.log ?? (() => {});
  const runStart = performance.now();
  const random = seeded(options.seed);
  const backend = await startBackend(options.config, timings);
  if ('skip' in backend) return backend;
  const processes = backend.shared ? (options.processes ?? 4) : 1;
  const clients = options.clients ?? (backend.shared ? 2 * processes : 8);
  // Longest an operation may take when nothing is wrong with it: waiting for the lock, then a read and a write.
  const requestTimeoutMs = timings.lockTimeout + 3 * timings.storeTimeout + 500;
  const apps: AppProcess[] = [];
  /** Slots whose process is being replaced (killed): clients leave them alone meanwhile. */
  const down = new Set<number>();
  const history: Op[] = [];
  const faults = Object.fromEntries(FAULTS.map((f) => [f, 0])) as Record<FaultKind, number>;
  const faultLog: string[] = [];
  let pausedHolders = 0;
  let handoffs = 0;
  let masterWrites = 0;
  let carried = 0;
  /** Set when the run ends early (an error): the client and fault loops stop. */
  let aborted = false;
  let nextId = 0;
  let origin = performance.now();
  const stamp = () => `${(performance.now() - origin).toFixed(0).padStart(6)} ms`;

  try {
    const extra: Partial<WorkerConfig> = options.unsafeAppend ? { unsafeAppend: true } : {};
    for (let slot = 0; slot < processes; slot++) apps.push(await startApp(slot, backend, extra));

    origin = performance.now();
    // One session for everybody: the first append creates it and gives the cookie.
    let cookie: string | undefined;
    const perform = async (client: number, kind: 'append' | 'read', element: string, app: AppProcess) => {
      const start = performance.now();
      const reply = await call(kind === 'append' ? `${app.url}/append?el=${element}` : `${app.url}/read`, cookie, requestTimeoutMs);
      const end = performance.now();
      const base = {
        id: nextId++,
        client,
        worker: app.slot,
        start,
        end,
        status: reply.status,
        ...(reply.note ? { note: reply.note } : {}),
      };
      if (kind === 'append') history.push({ kind, ...base, element });
      else history.push({ kind, ...base, ...(reply.status === 'ok' ? { result: reply.body?.list ?? [] } : {}) });
      if (kind === 'append' && reply.status === 'ok' && reply.body?.handedOver === true) handoffs++;
      if (kind === 'append' && reply.status === 'ok') {
        const wrote = reply.body?.masterWrites ?? 0;
        masterWrites += wrote;
        if (wrote === 0) carried++;
      }
      return reply;
    };
    const first = await perform(-1, 'append', 'init', apps[0]!);
    if (first.status !== 'ok' || !first.cookie) throw new Error(`history: the first append failed (${first.note ?? 'no cookie'})`);
    cookie = first.cookie;

    // Faults: the process faults first (a seeded shuffle), then the network
    // ones, cycled, so a short run still gets the heavy ones.
    const applies = (kind: FaultKind) => (kind === 'kill' ? backend.shared : kind === 'restart' ? backend.restart !== undefined : true);
    const shuffle = (kinds: FaultKind[]) =>
      kinds
        .map((kind) => ({ kind, key: random() }))
        .sort((a, b) => a.key - b.key)
        .map((k) => k.kind);
    const order = [...shuffle(['pause', 'kill', 'restart']), ...shuffle(['delay', 'partition', 'cut'])].filter(applies);

    const stopAt = performance.now() + options.seconds * 1000;
    const running = () =>
      !aborted && (performance.now() < stopAt || (options.everyFault === true && order.some((kind) => faults[kind] === 0)));

    // Client loops: each op on a random live process; 1 in 3 is a read.
    const loops = Array.from({ length: clients }, async (_, client) => {
      const pick = seeded(options.seed * 1000 + client + 1);
      for (let n = 0; running(); n++) {
        const up = apps.filter((a) => !down.has(a.slot));
        const app = up[Math.floor(pick() * up.length)] ?? apps[0]!;
        const reply = pick() < 1 / 3 ? await perform(client, 'read', '', app) : await perform(client, 'append', `c${client}-${n}`, app);
        // A client backs off a little after an error, as a browser would (a down server answers at once).
        if (reply.status !== 'ok') await sleep(20);
      }
    });

    const faultEveryMs = options.faultEveryMs ?? 700;
    const inject = async (kind: FaultKind): Promise<string> => {
      if (kind === 'pause') {
        const app = apps[Math.floor(random() * apps.length)]!;
        const pauseMs = Math.round(timings.leaseMs * (1.5 + random()));
        const holding = await armHolder(app, 1000);
        if (holding) pausedHolders++;
        app.child.kill('SIGSTOP');
        await sleep(pauseMs);
        app.child.kill('SIGCONT');
        if (app.child.connected) app.child.send({ type: 'go' });
        return `pause process ${app.slot} ${holding ? '(holding the lock)' : '(not in a scope)'} for ${pauseMs} ms`;
      }
      if (kind === 'kill') {
        // The first kill and half of the others aim at a process inside its scope (holding the lock).
        const slot = Math.floor(random() * apps.length);
        const holding = (faults.kill === 0 || random() < 0.5) && (await armHolder(apps[slot]!, 1000));
        down.add(slot);
        await killApp(apps[slot]!);
        apps[slot] = await startApp(slot, backend, extra);
        down.delete(slot);
        return `SIGKILL process ${slot}${holding ? ' (holding the lock)' : ''}, restarted`;
      }
      if (kind === 'restart') {
        await backend.restart!.run();
        return `restart ${backend.restart!.server}`;
      }
      // Network faults hit one process: two in three its connections to the
      // servers (where late writes come from), the others its HTTP connection.
      const app = apps[Math.floor(random() * apps.length)]!;
      // The first partition of a run always hits the server connections of a lock holder.
      const first = kind === 'partition' && faults.partition === 0;
      const toServer = app.serverProxies.length > 0 && (first || random() < 2 / 3);
      const targets = toServer ? app.serverProxies : [app.proxy];
      const which = toServer ? `the server connections of process ${app.slot}` : `the HTTP connection to process ${app.slot}`;
      if (kind === 'cut') {
        for (const proxy of targets) proxy.cut();
        return `cut ${which}`;
      }
      if (kind === 'partition') {
        // Half of the server partitions catch the process inside its scope and
        // last past its lease: its save (and its renewals) are held in the
        // network and delivered after others have written: a late write.
        const holding = toServer && (first || random() < 0.5) && (await armHolder(app, 1000));
        const ms = Math.round(holding ? timings.leaseMs * (1.2 + random() * 0.8) : 200 + random() * 800);
        for (const proxy of targets) proxy.blackhole();
        if (app.child.connected) app.child.send({ type: 'go' });
        await sleep(ms);
        for (const proxy of targets) proxy.pass();
        return `black-hole ${which}${holding ? ' (holding the lock)' : ''} for ${ms} ms`;
      }
      const ms = Math.round(200 + random() * 800);
      const delayMs = Math.round(20 + random() * 200);
      for (const proxy of targets) proxy.delay(delayMs);
      await sleep(ms);
      // End the delay without reordering: hold new chunks until the delayed ones went out, then pass.
      for (const proxy of targets) proxy.blackhole();
      await sleep(delayMs + 20);
      for (const proxy of targets) proxy.pass();
      return `delay ${which} by ${delayMs} ms for ${ms} ms`;
    };
    const faulting = (async () => {
      for (let i = 0; ; i++) {
        await sleep(Math.round(faultEveryMs * (0.5 + random())));
        if (!running()) return;
        const kind = order[i % order.length]!;
        const at = stamp();
        const began = performance.now();
        const what = await inject(kind);
        const line = `${at} ${what} [${(performance.now() - began).toFixed(0)} ms]`;
        faults[kind]++;
        faultLog.push(line);
        log(line);
      }
    })();

    await Promise.all([faulting, ...loops]);
    log(`${stamp()} clients stopped; waiting for the processes to finish what they started`);

    // Recovery: every process has finished the requests it received (a
    // request the driver gave up on may still be running there).
    const settleUntil = performance.now() + 30_000;
    for (;;) {
      const counts = await Promise.all(apps.map((app) => inflight(app)));
      if (counts.every((c) => c === 0)) break;
      if (performance.now() > settleUntil) throw new Error(`history: processes still busy after 30 s: ${counts.join(', ')}`);
      await sleep(50);
    }
    // Final list: with shared servers, every app process is stopped first
    // (nothing of theirs can land any more) and a fresh one reads straight
    // from the servers; MemoryStore lives in its one process, read directly.
    let reader: AppProcess;
    if (backend.shared) {
      await Promise.all(apps.splice(0).map(stopApp));
      reader = await startApp(0, backend, {}, true);
      apps.push(reader);
    } else {
      reader = apps[0]!;
    }
    let final: string[] | undefined;
    for (let attempt = 0; attempt < 20 && !final; attempt++) {
      const reply = await call(`${reader.directUrl}/read`, cookie, requestTimeoutMs);
      if (reply.status === 'ok') final = reply.body?.list ?? [];
      else await sleep(250);
    }
    if (!final) throw new Error('history: the final read never succeeded');
    log(`${stamp()} final list: ${final.length} elements`);

    const result = checkHistory(history, final);
    return {
      config: options.config,
      seed: options.seed,
      processes,
      clients,
      result,
      faults,
      pausedHolders,
      handoffs,
      masterWrites,
      carried,
      durationS: (performance.now() - runStart) / 1000,
      faultLog,
      history,
      final,
      counterexample: describeSmallest(result, origin),
    };
  } finally {
    aborted = true;
    await Promise.all(apps.map((app) => stopApp(app).catch(() => {})));
    await backend.stop();
  }
}

/** Total faults of a report. */
export function faultCount(report: RunReport): number {
  return Object.values(report.faults).reduce((a, b) => a + b, 0);
}
