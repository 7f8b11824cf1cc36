/**
 * Fault injection for "a write whose outcome is unknown lands later": a write
 * held in the network (or in a wrapper around an in-process store) past
 * `storeTimeout`, released on the test's word once newer writes have happened.
 *
 * - {@link stallProxy}: a loopback TCP proxy that holds the next client→server
 *   chunk carrying a marker (and everything after it on that connection) until
 *   `deliver()`. `abandon()` closes the app's side of that connection (its
 *   client gives up and reconnects) while the held bytes stay "in the network",
 *   as a packet in a router queue would; `deliver()` then hands them to the
 *   server and resolves once the server has processed them.
 * - {@link wrapStore}: a store that runs its writes through a hook, forwarding
 *   `read`/`write` (versioned stores) only when the wrapped store has them, so
 *   the core treats the wrapper exactly as the store inside.
 * - {@link stallingStore}: the same stall as the proxy for an in-process store.
 * - {@link jitterStore}: every write waits a random 0–`maxMs` first (a mirror
 *   whose latency varies), with a seeded generator for reproducible runs.
 */
import { connect, createServer, type Socket } from 'node:net';
import type { Store, VersionedRecord, WriteCondition } from '../../src/contracts/store.js';
import { listenLoopback } from './servers.js';

/** A held write: caught once the marker went by; delivered on the test's word. */
export interface Stall {
  /** Resolves once a write carrying the marker was caught (and is being held). */
  readonly caught: Promise<void>;
  /** The app's client gives the connection up (its side is closed): new traffic uses new connections. No-op in process. */
  abandon(): void;
  /** The held write reaches the store; resolves once the store has processed it. */
  deliver(): Promise<void>;
}

/** A store that can hold its next write carrying `marker`. */
export interface Stallable {
  readonly store: Store;
  /**
   * A second view of the same records, never handed to the session layer:
   * readable after the layer's `close()` closed `store`.
   */
  readonly reader: Store;
  stallNextWrite(marker: string): Stall;
  close(): Promise<void>;
}

/** A loopback TCP proxy that can hold one connection's writes (see the module comment). */
export interface StallProxy {
  readonly port: number;
  stallNextWrite(marker: string): Stall;
  close(): Promise<void>;
}

interface Conn {
  client: Socket;
  upstream: Socket;
  /** Client→server chunks held since the stall caught this connection. */
  held: Buffer[] | undefined;
}

/** Start a {@link StallProxy} forwarding to 127.0.0.1:`targetPort`. */
export async function stallProxy(targetPort: number): Promise<StallProxy> {
  const conns = new Set<Conn>();
  let armed: { marker: Buffer; catch(conn: Conn): void } | undefined;
  const server = createServer((client) => {
    const upstream = connect({ port: targetPort, host: '127.0.0.1' });
    const conn: Conn = { client, upstream, held: undefined };
    conns.add(conn);
    client.on('data', (chunk: Buffer) => {
      if (conn.held) {
        conn.held.push(chunk);
        return;
      }
      if (armed && chunk.includes(armed.marker)) {
        conn.held = [chunk];
        const { catch: caught } = armed;
        armed = undefined;
        caught(conn);
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!client.destroyed) client.write(chunk);
    });
    // A held connection keeps its server side open when the app's side goes:
    // its bytes are still "in the network" until delivered.
    const dropClient = (): void => {
      client.destroy();
      if (!conn.held) {
        upstream.destroy();
        conns.delete(conn);
      }
    };
    client.on('error', dropClient).on('close', dropClient);
    const dropUpstream = (): void => {
      upstream.destroy();
      client.destroy();
      conns.delete(conn);
    };
    upstream.on('error', dropUpstream).on('close', dropUpstream);
  });
  const port = await listenLoopback(server);
  return {
    port,
    stallNextWrite(marker) {
      let held: Conn | undefined;
      let resolveCaught!: () => void;
      const caught = new Promise<void>((resolve) => (resolveCaught = resolve));
      armed = {
        marker: Buffer.from(marker),
        catch: (conn) => {
          held = conn;
          resolveCaught();
        },
      };
      return {
        caught,
        abandon() {
          if (!held) throw new Error('stall: nothing was caught yet');
          held.client.destroy();
        },
        async deliver() {
          if (!held) throw new Error('stall: nothing was caught yet');
          const conn = held;
          const chunks = conn.held ?? [];
          conn.held = undefined;
          const { upstream } = conn;
          if (upstream.destroyed) throw new Error('stall: the server closed the held connection before delivery');
          // Half-close after the held bytes: the server processes what it read,
          // then sees end-of-stream and closes: "closed" means "processed".
          const done = new Promise<void>((resolve) => upstream.once('close', () => resolve()));
          for (const chunk of chunks) upstream.write(chunk);
          upstream.end();
          await done;
        },
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const conn of conns) {
          conn.client.destroy();
          conn.upstream.destroy();
        }
        conns.clear();
        server.close(() => resolve());
      }),
  };
}

/** A write passing through {@link wrapStore}: the op, its key and its value (`undefined` for a destroy). */
export interface WriteCall {
  readonly op: 'set' | 'destroy' | 'touch' | 'write';
  readonly key: string;
  readonly value: string | undefined;
  /** `write` only: the version written and its condition. */
  readonly version?: number;
  readonly condition?: WriteCondition;
}

/**
 * A store that runs each write (`set`, `destroy`, `touch`, `write`) through
 * `around(call, run)`, reads untouched. `read`/`write`/`touch` exist only
 * when `inner` has them, so versioned and unversioned stores stay what they are.
 */
export function wrapStore(inner: Store, around: (call: WriteCall, run: () => Promise<unknown>) => Promise<unknown>): Store {
  const store: Store & Record<string, unknown> = {
    get name() {
      return inner.name;
    },
    get: (key: string) => inner.get(key),
    set: async (key: string, value: string, ttlMs: number) => {
      await around({ op: 'set', key, value }, () => inner.set(key, value, ttlMs));
    },
    destroy: async (key: string) => {
      await around({ op: 'destroy', key, value: undefined }, () => inner.destroy(key));
    },
  };
  if (inner.touch) {
    const touch = inner.touch.bind(inner);
    store.touch = async (key: string, ttlMs: number) => {
      await around({ op: 'touch', key, value: undefined }, () => touch(key, ttlMs));
    };
  }
  if (inner.close) store.close = inner.close.bind(inner);
  const versioned = inner as Partial<{
    read(key: string): Promise<VersionedRecord | undefined>;
    write(...args: [string, string | undefined, number, number, WriteCondition]): Promise<boolean>;
  }>;
  if (typeof versioned.read === 'function' && typeof versioned.write === 'function') {
    const read = versioned.read.bind(inner);
    const write = versioned.write.bind(inner);
    store.read = (key: string) => read(key);
    store.write = (key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition) =>
      around({ op: 'write', key, value, version, condition }, () => write(key, value, version, ttlMs, condition)) as Promise<boolean>;
  }
  return store;
}

/** `inner` behind a hold: the next write whose value carries the marker waits for `deliver()`. */
export function stallingStore(inner: Store): Stallable {
  let armed: { marker: string; hold(run: () => Promise<unknown>): Promise<unknown> } | undefined;
  const store = wrapStore(inner, (call, run) => {
    if (armed && call.value?.includes(armed.marker)) {
      const { hold } = armed;
      armed = undefined;
      return hold(run);
    }
    return run();
  });
  return {
    store,
    reader: inner,
    stallNextWrite(marker) {
      let release: (() => Promise<void>) | undefined;
      let resolveCaught!: () => void;
      const caught = new Promise<void>((resolve) => (resolveCaught = resolve));
      armed = {
        marker,
        // The caller (the replica, bounded by storeTimeout) gives up on this
        // promise; the write itself still happens when delivered.
        hold: (run) =>
          new Promise((resolve, reject) => {
            release = async () => {
              await run().then(resolve, reject);
            };
            resolveCaught();
          }),
      };
      return {
        caught,
        abandon() {},
        async deliver() {
          if (!release) throw new Error('stall: nothing was caught yet');
          await release().catch(() => {});
        },
      };
    },
    close: async () => {
      await inner.close?.();
    },
  };
}

/** A seeded PRNG (mulberry32): the same seed gives the same latencies. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `inner` whose every write first waits a random 0–`maxMs` ms (the fault itself, not a synchronisation). */
export function jitterStore(inner: Store, random: () => number, maxMs = 60): Store {
  return wrapStore(inner, async (_call, run) => {
    await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * (maxMs + 1))));
    return run();
  });
}

/** What a store holds as a live record under `key` (a tombstone or nothing: `undefined`). */
export async function liveValue(store: Store, key: string): Promise<string | undefined> {
  const versioned = store as Partial<{ read(key: string): Promise<VersionedRecord | undefined> }>;
  if (typeof versioned.read === 'function') return (await versioned.read(key))?.value;
  return store.get(key);
}
