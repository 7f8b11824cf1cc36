/**
 * Shared shapes of the benchmark harness: what a variant (a server setup) and a
 * scenario (a question asked of every variant) are, and the messages the three
 * kinds of process exchange (harness ↔ app child, harness ↔ load generator).
 *
 * Nothing here imports a library under test, so the harness (parent) can load
 * it without loading Koa, Redis clients or our own `src/`.
 */
import type { RequestListener } from 'node:http';

/** Servers a variant may need; the harness starts only those some selected variant needs. */
export type ServerKind = 'redis' | 'memcached' | 'mongo' | 'postgres';

/** Where to find the servers, handed to app children through the environment. */
export interface ServerUrls {
  redis?: string;
  memcached?: string;
  mongo?: string;
  postgres?: string;
}

/** How store calls are counted for a variant (see `lib/counters.ts`). */
export type CountingMode =
  /** Server side, `INFO commandstats` deltas (includes locker commands). */
  | 'redis'
  /** Server side, memcached `stats` deltas. */
  | 'memcached'
  /** Inside the app child (a counting subclass, or driver command monitoring). */
  | 'app'
  /** No external store (bare Koa, cookie sessions). */
  | 'none';

/** A server setup under test, as the harness sees it (no code of the library under test). */
export interface VariantInfo {
  /** Stable id used in `--only`, file names and the app child's argv, e.g. `ours-redis`. */
  readonly id: string;
  /** Row label in the report. */
  readonly label: string;
  /** `ours` (this package), `peer` (what a user would pick instead), `baseline` (ceiling and floor). */
  readonly group: 'ours' | 'peer' | 'baseline';
  /** Servers it needs (started by the harness). */
  readonly needs: readonly ServerKind[];
  /** Session state lives outside the process, so several processes can share it (scenario 6). */
  readonly shared: boolean;
  /** Only measured in these scenarios (e.g. the load generator's ceiling: one scenario is enough). */
  readonly onlyScenarios?: readonly ScenarioId[];
  /** Only measured in the many-processes scenario (e.g. RedisStore + MemoryLocker, to show the loss). */
  readonly processesOnly?: boolean;
  /** Not measured in the many-processes scenario even though it is shared. */
  readonly singleOnly?: boolean;
  /** How its store calls are counted. */
  readonly counting: CountingMode;
  /**
   * How the scenario's sessions are created: `GET /fresh` (the default), or `login`:
   * `POST /login` with a JSON body `{ username, password }`, one user per session (the passport workload).
   */
  readonly seed?: 'fresh' | 'login';
  /** Its locker has a Redis of its own: count those commands too (as `locker:<cmd>`, class "other"). */
  readonly lockerCounting?: 'redis';
  /** Session state travels in the cookie (the harness keeps a shared cookie jar in the hot scenarios). */
  readonly clientSide?: boolean;
  /**
   * The raw floor of its backend, when that is not the raw Redis floor (e.g.
   * `raw-pg` for the PostgreSQL rows): the report's "× floor" divides by it.
   */
  readonly floor?: string;
  /** One line for the report: what exactly runs. */
  readonly description: string;
  /**
   * Options of session() this variant passes beyond its store and locker (e.g.
   * `{ handoff: false }`). The harness first checks that session() of the
   * code under test accepts them, and skips the variant with the reason when
   * it does not (an option not there yet).
   */
  readonly sessionOptions?: Readonly<Record<string, unknown>>;
}

/** The part of a variant that runs in the app child. */
export interface AppInstance {
  /** The request listener (a Koa `app.callback()` or an Express app). */
  readonly listener: RequestListener;
  /** Store calls counted inside the process (counting mode `app`), by operation. */
  storeCalls?(): Record<string, number>;
  /** Lock waits of this process since the last reset (our variants, when `AppEnv.recordLockWaits`). */
  lockWaits?: { snapshot(): LockWaits; reset(): void };
  /** Release clients and timers. */
  close(): Promise<void>;
}

/** Builds the app of one variant, in the app child. */
export type VariantFactory = (env: AppEnv) => Promise<AppInstance>;

/** What an app child knows about its surroundings. */
export interface AppEnv {
  readonly servers: ServerUrls;
  /** Number of processes serving the port (1, or the worker count in scenario 6). */
  readonly processes: number;
  /** Session TTL in ms. */
  readonly ttlMs: number;
  /** Record the lock waits published on the library's diagnostics channel (hot-session scenarios). */
  readonly recordLockWaits: boolean;
}

/** Lock waits of one serving process in a window (see `lib/lock-waits.ts`). */
export interface LockWaits {
  pid: number;
  /** Lock acquisitions in the window. */
  count: number;
  timeouts: number;
  errors: number;
  /** Longest wait for the lock, ms (in-process queue + locker). */
  maxMs: number;
  /** 99th percentile of the waits, ms. */
  p99Ms: number;
  /** Leases this process took from the locker in the window (`lib/lock-turns.ts`); absent when not counted. */
  turns?: number;
}

/** How the requests of a load run carry cookies. */
export type CookieMode =
  /** No cookie: every request is a new visitor. */
  | { kind: 'none' }
  /** A random cookie out of a pool for each request (many users). */
  | { kind: 'pool'; cookies: string[] }
  /**
   * One shared jar, the way many tabs of one browser share cookies: every
   * request sends the jar, every `Set-Cookie` updates it (hot session).
   */
  | { kind: 'jar'; cookie: string };

/** Scenario ids, in report order. */
export type ScenarioId = 'fresh' | 'rmw' | 'read' | 'hot' | 'untouched' | 'processes';

/** A question asked of every variant. */
export interface Scenario {
  readonly id: ScenarioId;
  /** Report heading, e.g. `2. Many users, read-modify-write`. */
  readonly title: string;
  /** What it measures and what to look for (report text). */
  readonly description: string;
  /** Route every variant serves for it (see `lib/routes.ts`). */
  readonly path: string;
  /** Sessions created before the run: 0 (none), 1 (one hot session) or `users`. */
  readonly sessions: 'none' | 'one' | 'users';
  /** Cookies: none, a pool of pre-created sessions, or one shared jar. */
  readonly cookies: 'none' | 'pool' | 'jar';
  /** Processes serving the port. */
  readonly processes: 'one' | 'many';
  /** Read the counter back and report lost updates. */
  readonly countsLostUpdates: boolean;
  /**
   * Record the lock waits of our variants (every connection on one session):
   * the app subscribes to the library's lock channel, and the report shows
   * the longest wait of each process.
   */
  readonly recordsLockWaits?: boolean;
  /** What our variants must do per request, checked in the report (not a failure). */
  readonly expectStoreCalls?: { reads: number; writes: number; label: string };
  /** Which variants it runs. */
  accepts(variant: VariantInfo): boolean;
}

/** Per-process counters every app keeps (see `lib/routes.ts`). */
export interface AppStats {
  /** Requests that went through the app (any route), by the time of the snapshot. */
  requests: number;
  /** Read-modify-write requests whose response was committed with a 2xx after all saves. */
  rmwOk: number;
  /** Requests still running. */
  inflight: number;
  /** CPU time of the serving process(es) so far, user + system, µs (`process.cpuUsage()`). */
  cpuUs?: number;
  /** Store calls counted inside the app, when the variant counts that way. */
  store?: Record<string, number>;
  /** Responses that were not 2xx, by status (Koa variants), e.g. `{ "503": 12 }`. */
  non2xx?: Record<string, number>;
  /** Lock waits since the last reset, one entry per serving process (when recorded). */
  lockWaits?: LockWaits[];
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/** App child → harness. */
export type AppMessage =
  | { type: 'ready'; port: number; pids: number[] }
  | { type: 'stats'; id: number; stats: AppStats }
  | { type: 'fatal'; message: string };

/** Harness → app child. */
export type AppCommand =
  /** `resetLockWaits`: start a new lock-wait window before answering (so the reply confirms it). */
  { type: 'stats'; id: number; resetLockWaits?: boolean } | { type: 'stop' };

/** A job for the load generator. */
export type LoadJob =
  | {
      kind: 'sessions';
      url: string;
      path: string;
      /** `POST path` with a JSON login body (user `u<n>`, password `secret`) instead of `GET path`. */
      login?: boolean;
      count: number;
      concurrency: number;
    }
  | {
      kind: 'load';
      url: string;
      path: string;
      connections: number;
      durationS: number;
      cookies: CookieMode;
      /** Follow `Set-Cookie` into the jar (client-side sessions, jar mode): needs autocannon. */
      followCookies?: boolean;
    }
  | { kind: 'read'; url: string; cookie: string };

/** Outcome of a `load` job. */
export interface LoadResult {
  /** 2xx responses per second. */
  rps: number;
  /** Latency percentiles of 2xx responses, ms. */
  p50: number;
  p99: number;
  /** Responses seen by the client. */
  responses: number;
  ok2xx: number;
  non2xx: number;
  /** Connection errors and timeouts. */
  errors: number;
  timeouts: number;
  /** Measured seconds. */
  durationS: number;
  /** The jar after the run (jar mode). */
  cookie?: string;
  /** CPU the load generator itself spent per response, µs (wrk on Linux). */
  generatorCpuUs?: number;
  /** Which tool generated the load. */
  generator: 'wrk' | 'autocannon';
}

/** Outcome of a `sessions` job: the `Cookie` header of each created session. */
export interface SessionsResult {
  cookies: string[];
  failures: number;
}

/** Outcome of a `read` job. */
export interface ReadResult {
  status: number;
  count: number | undefined;
}

/** Load generator ↔ harness. */
export type LoadCommand = { type: 'job'; id: number; job: LoadJob } | { type: 'stop' };
export type LoadMessage =
  | { type: 'ready'; wrk: boolean }
  | { type: 'done'; id: number; result: LoadResult | SessionsResult | ReadResult }
  | { type: 'failed'; id: number; message: string };
