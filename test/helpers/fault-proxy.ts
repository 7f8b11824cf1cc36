/** A loopback TCP proxy in front of a server, for fault tests: pass, black-hole, cut, delay, tear a write. */
import { connect, createServer, type Socket } from 'node:net';
import { listenLoopback } from './ports.js';

/** A loopback TCP proxy in front of a server, for fault tests. */
export interface TcpProxy {
  /** Port clients connect to (127.0.0.1). */
  readonly port: number;
  /** Forward traffic (the initial mode). */
  pass(): void;
  /**
   * Keep connections open but deliver nothing, in either direction, until
   * `pass()` (a network partition: like TCP, the held bytes arrive in order
   * when it heals, so no reply is lost or misattributed).
   */
  blackhole(): void;
  /** Destroy every open connection (the server "crashed"); new ones are still accepted. */
  cut(): void;
  /** Deliver every chunk `ms` later, in order, both directions (a slow network). `pass()` ends it. */
  delay(ms: number): void;
  /**
   * Cut the connection when the client next sends a chunk matching `match`,
   * after forwarding only the first half of it: a command torn mid-write.
   */
  cutOnNextWrite(match?: (chunk: Buffer) => boolean): void;
  /** Close the proxy and every connection. */
  close(): Promise<void>;
}

/** Start a {@link TcpProxy} on a free loopback port forwarding to 127.0.0.1:`targetPort`. */
export async function tcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  let mode: 'pass' | 'blackhole' = 'pass';
  let delayMs = 0;
  let cutNext: ((chunk: Buffer) => boolean) | undefined;
  const sockets = new Set<Socket>();
  const flushers = new Set<() => void>();
  const server = createServer((client) => {
    const upstream = connect({ port: targetPort, host: targetHost });
    sockets.add(client);
    sockets.add(upstream);
    const held: Array<[Socket, Buffer]> = [];
    const flush = (): void => {
      for (const [to, chunk] of held.splice(0)) if (!to.destroyed) send(to, chunk);
    };
    flushers.add(flush);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
      flushers.delete(flush);
    };
    const forward =
      (to: Socket) =>
      (chunk: Buffer): void => {
        if (to === upstream && cutNext?.(chunk)) {
          cutNext = undefined;
          upstream.write(chunk.subarray(0, Math.max(1, chunk.length >> 1)), drop);
          return;
        }
        if (mode === 'pass' && held.length === 0) send(to, chunk);
        else held.push([to, chunk]);
      };
    // One FIFO lane per direction: a chunk never overtakes one still waiting out a delay,
    // even when the delay shrinks or ends (pass()) while earlier chunks are in flight.
    const lanes = new Map<Socket, { queue: Array<{ chunk: Buffer; due: number }>; timer?: NodeJS.Timeout | undefined }>();
    const send = (to: Socket, chunk: Buffer): void => {
      let lane = lanes.get(to);
      if (!lane) lanes.set(to, (lane = { queue: [] }));
      if (delayMs === 0 && lane.queue.length === 0) {
        to.write(chunk);
        return;
      }
      lane.queue.push({ chunk, due: Date.now() + delayMs });
      schedule(to, lane);
    };
    const schedule = (to: Socket, lane: { queue: Array<{ chunk: Buffer; due: number }>; timer?: NodeJS.Timeout | undefined }): void => {
      if (lane.timer || lane.queue.length === 0) return;
      lane.timer = setTimeout(
        () => {
          lane.timer = undefined;
          while (lane.queue.length > 0 && lane.queue[0]!.due <= Date.now()) {
            const { chunk } = lane.queue.shift()!;
            if (!to.destroyed) to.write(chunk);
          }
          schedule(to, lane);
        },
        Math.max(0, lane.queue[0]!.due - Date.now()),
      );
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  const port = await listenLoopback(server);
  return {
    port,
    pass: () => {
      mode = 'pass';
      delayMs = 0;
      for (const flush of flushers) flush();
    },
    delay: (ms: number) => {
      delayMs = ms;
    },
    cutOnNextWrite: (match = () => true) => {
      cutNext = match;
    },
    blackhole: () => {
      mode = 'blackhole';
    },
    cut: () => {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        sockets.clear();
        server.close(() => resolve());
      }),
  };
}
