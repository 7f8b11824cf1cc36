/**
 * Waiting for replicas before a save is acknowledged (RedisStore's
 * `waitForReplicas`): the write and `WAIT numreplicas timeout` sent together
 * in one pipeline on one connection (one round trip), then WAIT's count
 * checked. WAIT cannot run inside a Lua script, and inside MULTI it does not
 * block, so a pipeline is the one way to get both in a single round trip.
 *
 * WAIT counts the replicas that acknowledged every write sent on *this
 * connection* so far: it must follow the write on the same connection, which a
 * node-redis pipeline guarantees for a single client, a Sentinel client (one
 * master client for the whole pipeline) and a cluster client (the pipeline
 * goes to the node of its first key), and an ioredis pipeline likewise.
 */
import { StoreError } from '../errors.js';
import { REDIS_STORE_NAME } from './versioned-write.js';

/** How many replicas must confirm a write, and how long WAIT waits for them. */
export interface ReplicaWait {
  readonly replicas: number;
  readonly timeoutMs: number;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
/** The slice of a node-redis pipeline (`client.multi()`, run with `execAsPipeline()`) used here. */
export interface WritePipeline {
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): WritePipeline;
  eval(source: string, options: { keys: string[]; arguments: string[] }): WritePipeline;
  set(key: string, value: string, options: { expiration: { type: 'PX'; value: number }; condition?: 'NX' }): WritePipeline;
  del(key: string): WritePipeline;
  pExpire(key: string, ms: number): WritePipeline;
  wait(replicas: number, timeoutMs: number): WritePipeline;
  execAsPipeline(): Promise<unknown[]>;
}
/** A client that can pipeline (`multi()`): every node-redis client, and the ioredis adapter. */
export interface PipelineClient {
  multi(...args: any[]): unknown;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/**
 * Send `write` and `WAIT` in one pipeline; resolves to the write's reply and
 * the number of replicas that confirmed it. A script the server does not know
 * yet (NOSCRIPT, after a restart or a failover to a replica that never loaded
 * it) is sent again with `fallback` (EVAL), with its own WAIT.
 */
export async function writeThenWait(
  client: PipelineClient,
  wait: ReplicaWait,
  write: (pipeline: WritePipeline) => WritePipeline,
  fallback?: (pipeline: WritePipeline) => WritePipeline,
): Promise<{ reply: unknown; confirmed: number }> {
  const send = async (add: (pipeline: WritePipeline) => WritePipeline) => {
    const replies = await add(client.multi() as WritePipeline)
      .wait(wait.replicas, wait.timeoutMs)
      .execAsPipeline();
    return { reply: replies[0], confirmed: Number(replies[1]) };
  };
  try {
    return await send(write);
  } catch (error) {
    if (!fallback || !String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
    return send(fallback);
  }
}

/**
 * The error of a write that landed on the primary but was not confirmed by
 * enough replicas within the WAIT timeout: outcome `unknown` (it is on the
 * primary now, and survives a failover only if the promoted replica got it).
 */
export function unconfirmedError(command: string, wait: ReplicaWait, confirmed: number, store = REDIS_STORE_NAME): StoreError {
  return new StoreError(
    store,
    `${command} was written on the primary but ${Number.isFinite(confirmed) ? confirmed : 0} of the ${wait.replicas} replica(s) asked for confirmed it within ${wait.timeoutMs} ms (waitForReplicas): it may be lost on a failover`,
    { outcome: 'unknown' },
  );
}
