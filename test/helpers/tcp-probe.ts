/** Readiness probe for text-protocol servers (Redis `PING`, memcached `version`). */
import { connect } from 'node:net';

/**
 * Send `request` to 127.0.0.1:`port` and resolve true when the reply starts with
 * `expected` (e.g. `PING\r\n` → `+PONG`). False on any error or after `timeoutMs`.
 */
export function probeTcp(port: number, request: string, expected: string, timeoutMs = 1000, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    let reply = '';
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write(request));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.length >= expected.length) finish(reply.startsWith(expected));
    });
    socket.once('end', () => finish(reply.startsWith(expected)));
  });
}
