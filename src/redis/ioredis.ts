/**
 * An ioredis client (`new Redis()` or `new Cluster()`) seen through the slice of
 * node-redis that RedisStore and RedisLocker call, so that apps (and koa-redis
 * users) keep the Redis client they already have:
 *
 *   const client = fromIoredis(new Redis(url));
 *   new RedisStore({ client }); new RedisLocker({ client });
 *
 * One adapter per ioredis client (memoised): the store and the locker given the
 * same ioredis client get the same adapter, which is what turns RedisLocker's
 * fast path (lock + read, fenced write + release, one script each) on.
 *
 * Mapping (node-redis → ioredis): `get`, `del` as is; `set(k, v, { expiration,
 * condition })` → `SET k v PX ms [NX]`; `pExpire` → `pexpire`; `evalSha(sha,
 * { keys, arguments })` → `evalsha(sha, keys.length, …keys, …arguments)`;
 * `isReady` ⇔ `status === 'ready'`; `duplicate()` → a subscriber on
 * `client.duplicate()` that dispatches `message`/`smessage` events to
 * node-redis style per-channel listeners. Command timeouts are applied by the
 * store and locker themselves (deadline sweeper), so `withCommandOptions`
 * returns the adapter unchanged.
 *
 * The subscriber connection is disconnected when the app's client ends
 * (`quit()`/`disconnect()`), so it never keeps a finished process alive.
 *
 * On an ioredis Cluster the locker uses plain `PUBLISH`/`SUBSCRIBE` (ioredis
 * routes sharded pub/sub only with its `shardedSubscribers` option), and does
 * not check that custom prefixes share a hash tag: keep the default prefixes,
 * or prefixes without braces.
 */
import type { RedisClientLike, RedisLockerClient } from './clients.js';
import { describe } from '../util/format.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
/**
 * The part of an ioredis `Redis` or `Cluster` the adapter uses. Structural, so
 * that ioredis types are never needed to compile an app that does not use it.
 */
export interface IoredisLike {
  /** Connection state: `'ready'` when commands go out now; `'end'` once quit for good. */
  readonly status: string;
  /** `true` on a `Cluster`. */
  readonly isCluster?: boolean;
  /** `GET key`. */
  get(key: string): Promise<unknown>;
  /** `DEL key…`. */
  del(...keys: any[]): Promise<unknown>;
  /** `PEXPIRE key ms`. */
  pexpire(key: string, ms: number): Promise<unknown>;
  /** `EVALSHA sha numkeys key… arg…`. */
  evalsha(...args: any[]): Promise<unknown>;
  /** `EVAL script numkeys key… arg…`. */
  eval(...args: any[]): Promise<unknown>;
  /** Any command by name (used for `SET … PX … NX`). */
  call(command: string, ...args: any[]): Promise<unknown>;
  /** A new connection with the same options (the locker's subscriber). */
  duplicate(...args: any[]): unknown;
  /** Events: the adapter listens for `'end'` to close the subscriber with the client. */
  once?(event: string, listener: () => void): unknown;
  /** A pipeline (RedisStore's `waitForReplicas`: the write and `WAIT` in one round trip). */
  pipeline?(...args: any[]): any;
}

/** The part of an ioredis pipeline the adapter uses. */
interface IoredisPipeline {
  evalsha(...args: any[]): IoredisPipeline;
  eval(...args: any[]): IoredisPipeline;
  call(command: string, ...args: any[]): IoredisPipeline;
  del(...keys: any[]): IoredisPipeline;
  pexpire(key: string, ms: number): IoredisPipeline;
  exec(): Promise<Array<[Error | null, unknown]> | null>;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** What {@link fromIoredis} returns: a client RedisStore and RedisLocker both accept. */
export type IoredisAdapter = RedisClientLike &
  RedisLockerClient & {
    /** The ioredis client behind the adapter (never closed by the store or the locker). */
    readonly ioredis: IoredisLike;
  };

/** True when `client` looks like an ioredis `Redis` or `Cluster` (and not a node-redis client). */
export function isIoredis(client: unknown): client is IoredisLike {
  const c = client as (Partial<IoredisLike> & { withCommandOptions?: unknown }) | null;
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.status === 'string' &&
    typeof c.evalsha === 'function' &&
    typeof c.call === 'function' &&
    typeof c.duplicate === 'function' &&
    typeof c.withCommandOptions !== 'function'
  );
}

const adapters = new WeakMap<object, IoredisAdapter>();

/**
 * Why `client` (a node-redis client or an ioredis adapter) sends no command
 * now, for the fail-fast error: `reconnecting`, `closed`, or, for an ioredis
 * client made with `lazyConnect` that nobody connected (status `wait`), the
 * fix. We do not connect it ourselves: when to connect (and how to handle a
 * failed connect) is the application's call.
 */
export function notConnectedReason(client: { readonly isOpen: boolean }): string {
  if ((client as Partial<IoredisAdapter>).ioredis?.status === 'wait') {
    return 'ioredis client created with lazyConnect and never connected: call await client.connect() first';
  }
  return client.isOpen ? 'reconnecting' : 'closed';
}

/**
 * The node-redis shaped view of an ioredis client, for `RedisStore` and
 * `RedisLocker`. The same client always gives the same adapter. The client
 * should be connected (or connecting): the store fails fast while it is not ready.
 */
export function fromIoredis(client: IoredisLike): IoredisAdapter {
  if (!isIoredis(client)) {
    throw new TypeError(
      `koa-locked-session: Expected fromIoredis() to get an ioredis client (new Redis() or new Cluster()), got \`${describe(client)}\``,
    );
  }
  let adapter = adapters.get(client);
  if (!adapter) {
    adapter = makeAdapter(client);
    adapters.set(client, adapter);
  }
  return adapter;
}

interface EvalOptions {
  keys: string[];
  arguments: string[];
}

function makeAdapter(c: IoredisLike): IoredisAdapter {
  const adapter: IoredisAdapter = {
    ioredis: c,
    get isReady() {
      return c.status === 'ready';
    },
    get isOpen() {
      // 'wait': lazyConnect, never connected; 'end': quit or disconnected for good.
      return c.status !== 'end' && c.status !== 'wait';
    },
    get: (key: string) => c.get(key),
    set: (key: string, value: string, options?: { expiration?: { type: string; value: number }; condition?: string }) => {
      const args: Array<string | number> = [key, value];
      if (options?.expiration) args.push(options.expiration.type, options.expiration.value);
      if (options?.condition) args.push(options.condition);
      return c.call('SET', ...args);
    },
    del: (key: string | string[]) => c.del(...(Array.isArray(key) ? key : [key])),
    pExpire: (key: string, ms: number) => c.pexpire(key, ms),
    evalSha: (sha: string, options: EvalOptions) => c.evalsha(sha, options.keys.length, ...options.keys, ...options.arguments),
    eval: (source: string, options: EvalOptions) => c.eval(source, options.keys.length, ...options.keys, ...options.arguments),
    withCommandOptions: () => adapter,
    duplicate: () => makeSubscriber(c),
    multi: () => makePipeline(c),
  };
  return adapter;
}

/**
 * node-redis's pipeline builder (`multi()…execAsPipeline()`) on an ioredis
 * pipeline: the same commands, sent together on the client's connection;
 * rejects with the first command's error, as node-redis does.
 */
function makePipeline(c: IoredisLike) {
  if (typeof c.pipeline !== 'function') throw new TypeError('koa-locked-session: this ioredis client has no pipeline()');
  const p = c.pipeline() as IoredisPipeline;
  const builder = {
    evalSha: (sha: string, options: EvalOptions) => (p.evalsha(sha, options.keys.length, ...options.keys, ...options.arguments), builder),
    eval: (source: string, options: EvalOptions) => (p.eval(source, options.keys.length, ...options.keys, ...options.arguments), builder),
    set: (key: string, value: string, options?: { expiration?: { type: string; value: number }; condition?: string }) => {
      const args: Array<string | number> = [key, value];
      if (options?.expiration) args.push(options.expiration.type, options.expiration.value);
      if (options?.condition) args.push(options.condition);
      p.call('SET', ...args);
      return builder;
    },
    del: (key: string) => (p.del(key), builder),
    pExpire: (key: string, ms: number) => (p.pexpire(key, ms), builder),
    wait: (replicas: number, timeoutMs: number) => (p.call('WAIT', replicas, timeoutMs), builder),
    execAsPipeline: async (): Promise<unknown[]> => {
      const results = (await p.exec()) ?? [];
      for (const [error] of results) if (error) throw error;
      return results.map(([, reply]) => reply);
    },
  };
  return builder;
}

type Listener = (message: string, channel: string) => void;
interface IoredisSubscriber {
  readonly status: string;
  connect(): Promise<unknown>;
  on(event: string, listener: (...args: any[]) => void): unknown; // eslint-disable-line @typescript-eslint/no-explicit-any
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  ssubscribe(channel: string): Promise<unknown>;
  sunsubscribe(channel: string): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(): void;
}

/**
 * A node-redis style subscriber (what RedisLocker gets from `duplicate()`) on a
 * fresh ioredis connection: node-redis takes a listener per channel, ioredis
 * emits one `message` event per connection, so listeners are kept here.
 */
function makeSubscriber(c: IoredisLike) {
  // lazyConnect: the locker connects it itself, and handles a failed connect.
  const sub = (c.isCluster ? c.duplicate(undefined, { lazyConnect: true }) : c.duplicate({ lazyConnect: true })) as IoredisSubscriber;
  const plain = new Map<string, Set<Listener>>();
  const sharded = new Map<string, Set<Listener>>();
  const dispatch = (listeners: Map<string, Set<Listener>>) => (channel: string | Buffer, message: string | Buffer) => {
    const name = String(channel);
    for (const listener of listeners.get(name) ?? []) listener(String(message), name);
  };
  sub.on('message', dispatch(plain));
  sub.on('smessage', dispatch(sharded));
  // The subscriber is the locker's own connection: it must not outlive the app's
  // client (a process that quits its client would otherwise never exit).
  c.once?.('end', () => sub.disconnect());

  async function add(
    map: Map<string, Set<Listener>>,
    channel: string,
    listener: Listener,
    command: (channel: string) => Promise<unknown>,
  ): Promise<void> {
    let set = map.get(channel);
    if (!set) map.set(channel, (set = new Set()));
    const first = set.size === 0;
    set.add(listener);
    if (first) await command(channel);
  }
  async function remove(
    map: Map<string, Set<Listener>>,
    channel: string,
    listener: Listener | undefined,
    command: (channel: string) => Promise<unknown>,
  ): Promise<void> {
    const set = map.get(channel);
    if (!set) return;
    if (listener) set.delete(listener);
    else set.clear();
    if (set.size === 0) {
      map.delete(channel);
      await command(channel);
    }
  }

  return {
    get isReady() {
      return sub.status === 'ready';
    },
    connect: () => sub.connect(),
    on: (event: 'error', listener: (error: unknown) => void) => sub.on(event, listener),
    subscribe: (channel: string, listener: Listener) => add(plain, channel, listener, (ch) => sub.subscribe(ch)),
    unsubscribe: (channel: string, listener?: Listener) => remove(plain, channel, listener, (ch) => sub.unsubscribe(ch)),
    sSubscribe: (channel: string, listener: Listener) => add(sharded, channel, listener, (ch) => sub.ssubscribe(ch)),
    sUnsubscribe: (channel: string, listener?: Listener) => remove(sharded, channel, listener, (ch) => sub.sunsubscribe(ch)),
    close: async () => {
      await sub.quit();
    },
    destroy: () => sub.disconnect(),
  };
}
