import net from 'node:net';

/** What the proxy does to traffic right now. */
export type FaultMode =
  | { kind: 'pass' }
  /** Hold every chunk this long before forwarding it (both directions). */
  | { kind: 'delay'; ms: number }
  /** Accept connections and swallow bytes in both directions: a server that stopped answering. */
  | { kind: 'blackhole' }
  /** Refuse new connections and cut every open one at once. */
  | { kind: 'down' };

/**
 * A loopback TCP proxy between a client and a real server, for fault tests:
 * delay, black-hole or cut connections, or cut them in the middle of the next
 * command the client sends (`cutOnNextWrite`). Listens on 127.0.0.1 only.
 */
export class FaultProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #mode: FaultMode = { kind: 'pass' };
  #cutNext: ((chunk: Buffer) => boolean) | undefined;
  port = 0;

  constructor(
    readonly targetHost: string,
    readonly targetPort: number,
  ) {
    this.#server = net.createServer((client) => this.#accept(client));
  }

  /** Start listening on a free loopback port. */
  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this;
  }

  get url(): string {
    return `127.0.0.1:${this.port}`;
  }

  set(mode: FaultMode): void {
    this.#mode = mode;
    if (mode.kind === 'down') this.cutAll();
  }

  /** Destroy every open connection (both sides). */
  cutAll(): void {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  /**
   * Cut the connection when the client next sends a chunk matching `match`,
   * forwarding only the first half of that chunk: a command torn mid-write.
   */
  cutOnNextWrite(match: (chunk: Buffer) => boolean = () => true): void {
    this.#cutNext = match;
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    if (this.#mode.kind === 'down') {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.targetPort, this.targetHost);
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    const forget = () => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
    client.on('data', (chunk: Buffer) => {
      const cut = this.#cutNext;
      if (cut && cut(chunk)) {
        this.#cutNext = undefined;
        upstream.write(chunk.subarray(0, Math.max(1, chunk.length >> 1)), () => forget());
        return;
      }
      this.#forward(chunk, upstream);
    });
    upstream.on('data', (chunk: Buffer) => this.#forward(chunk, client));
  }

  #forward(chunk: Buffer, to: net.Socket): void {
    const mode = this.#mode;
    if (mode.kind === 'blackhole' || mode.kind === 'down') return;
    if (mode.kind === 'delay') {
      setTimeout(() => to.writable && to.write(chunk), mode.ms);
      return;
    }
    if (to.writable) to.write(chunk);
  }
}
