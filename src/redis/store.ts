// On the locked path (a scope under RedisLocker) the fenced view (src/redis/fenced.ts) writes the locked key,
// not RedisStore (docs/architecture.md, "A walk of one locked read-modify-write").
import { debuglog } from 'node:util';
import type { RedisClientOptions } from 'redis';
import { storeCall } from '../util/deadline.js';
import { StoreError } from '../errors.js';
import { checkTtl, Validator } from '../util/validate.js';
import { unwrap, wrap } from '../contracts/envelope.js';
import { closeOwned, own } from '../contracts/owned.js';
import { loadPeer } from '../contracts/peer.js';
import type { VersionedRecord, VersionedStore, WriteCondition } from '../contracts/store.js';
import { registerRedisFastPath } from './fast-path.js';
import { fromIoredis, isIoredis, notConnectedReason } from './ioredis.js';
import { REDIS_STORE_NAME, versionedWriteArgs, WRITE_SCRIPT, WRITE_SHA } from './versioned-write.js';
import { unconfirmedError, writeThenWait, type ReplicaWait, type WritePipeline } from './replicas.js';
import { errorMessage, redactUrl } from '../util/format.js';

const debug = debuglog('koa-locked-session');

export { REDIS_STORE_NAME } from './versioned-write.js';

import type { RedisClientLike } from './clients.js';
export type { RedisClientLike } from './clients.js';
import {
  CONNECT_OPTIONS,
  HINTS,
  OPTIONS,
  resolveReplicaWait,
  type RedisStoreConnectOptions,
  type RedisStoreOptions,
} from './store-options.js';
export type { RedisStoreConnectOptions, RedisStoreOptions } from './store-options.js';

/** The commands the store sends, with the types node-redis gives them. */
interface RedisCommands {
  get(key: string): Promise<string | Buffer | null>;
  set(key: string, value: string, options: { expiration: { type: 'PX'; value: number }; condition?: 'NX' }): Promise<unknown>;
  del(key: string): Promise<number>;
  pExpire(key: string, ms: number): Promise<number>;
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(source: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

const check = new Validator('RedisStore');
/**
 * Sessions in Redis (node-redis v5+, single node or cluster): `SET key value
 * PX ttl`, `GET`, `DEL`, `PEXPIRE`. Redis expires keys itself with millisecond
 * precision and never returns an expired key, so expiry is exact on read.
 *
 * Failures reject with a `StoreError` (`[redis] SET failed: …`, status 503);
 * while the client is not connected they fail at once instead of queueing.
 *
 * @example
 * const client = await createClient({ url: process.env.REDIS_URL }).connect();
 * app.use(session({ master: new RedisStore({ client }) }));
 */
export class RedisStore<C extends RedisClientLike = RedisClientLike> implements VersionedStore {
  readonly name = REDIS_STORE_NAME;
  /** The node-redis client (or cluster client) this store uses, with its own type; a locker may share it. */
  readonly client: C;
  /** @see RedisStoreOptions.prefix */
  readonly prefix: string;
  /** @see RedisStoreOptions.timeoutMs */
  readonly timeoutMs: number;
  /** @see RedisStoreOptions.waitForReplicas */
  readonly waitForReplicas: number;
  /** @see RedisStoreOptions.waitForReplicasTimeoutMs */
  readonly waitForReplicasTimeoutMs: number;
  readonly #commands: RedisCommands;
  /** What every write waits for (`undefined`: no WAIT). */
  readonly #wait: ReplicaWait | undefined;

  constructor(options: RedisStoreOptions<C>) {
    const input = check.object('options', options as RedisStoreOptions<C> | undefined);
    check.known(input, OPTIONS, HINTS);
    // An ioredis client gets the node-redis shaped adapter (the same one for the same client,
    // so a RedisLocker given the same ioredis client still shares the fast path).
    const client = (isIoredis(input.client) ? fromIoredis(input.client) : input.client) as C;
    if (
      typeof client !== 'object' ||
      client === null ||
      typeof (client as { withCommandOptions?: unknown }).withCommandOptions !== 'function'
    ) {
      check.fail('client', 'a node-redis (v5+) client from createClient() or createCluster()', client);
    }
    this.client = client;
    this.prefix = check.string('prefix', input.prefix, 'sess:');
    this.timeoutMs = check.positiveMs('timeoutMs', input.timeoutMs, 2000);
    this.#wait = resolveReplicaWait(input, this.timeoutMs, client);
    this.waitForReplicas = this.#wait?.replicas ?? 0;
    this.waitForReplicasTimeoutMs = this.#wait?.timeoutMs ?? Math.floor(this.timeoutMs / 2);
    // Our commands go through a view of the client with node-redis's own
    // command timeout off: node-redis 6 otherwise creates an
    // `AbortSignal.timeout(5000)` per command (a timer that outlives the
    // command and is promoted by the GC; +37 % CPU on a locked
    // read-modify-write when off). `#run` bounds every command instead, and a
    // disconnected client fails at once. `withCommandOptions` returns a
    // prototype proxy of the client (single node and Cluster alike) that
    // keeps its connection, scripts and other command options.
    this.#commands = client.withCommandOptions({ timeout: 0 }) as RedisCommands;
    registerRedisFastPath(this, { client, timeoutMs: this.timeoutMs, recordKey: (key) => this.keyFor(key), replicaWait: this.#wait });
  }

  /**
   * A store with its own client, created from `url` (node-redis is loaded only
   * here) and connected; `close()` closes it.
   */
  static async connect(options: RedisStoreConnectOptions): Promise<RedisStore> {
    const connect = new Validator('RedisStore.connect');
    const input = connect.object('options', options);
    connect.known(input, CONNECT_OPTIONS, HINTS);
    const { url, clientOptions = {}, ...rest } = input;
    connect.string('url', url, '', /^rediss?:\/\/./, 'a redis:// or rediss:// URL');
    connect.object('clientOptions', clientOptions);
    const timeoutMs = connect.positiveMs('timeoutMs', rest.timeoutMs, 2000);
    const { createClient } = await loadPeer(REDIS_STORE_NAME, 'redis', () => import('redis'));
    // Before the first connection, a failure rejects connect() (a wrong URL
    // must not hang startup); after it, reconnect forever with a capped backoff.
    let connected = false;
    let client: ReturnType<typeof createClient>;
    try {
      client = createClient({
        disableOfflineQueue: true,
        ...clientOptions,
        url,
        socket: {
          connectTimeout: timeoutMs,
          reconnectStrategy: (retries: number, cause: Error) => (connected ? Math.min(50 * 2 ** retries, 1000) : cause),
          ...clientOptions.socket,
        } as NonNullable<RedisClientOptions['socket']>,
      });
    } catch (error) {
      // A malformed URL (node-redis throws a TypeError while parsing it).
      throw new StoreError(REDIS_STORE_NAME, `invalid url ${redactUrl(url)}: ${errorMessage(error)}`, {
        cause: error,
        status: 500,
        outcome: 'none',
      });
    }
    // node-redis emits 'error' on every failed reconnect; without a listener
    // Node would crash the process. Operations report failures themselves.
    client.on('error', (error: unknown) => debug('redis client error: %s', errorMessage(error)));
    try {
      await client.connect();
      connected = true;
    } catch (error) {
      if (client.isOpen) client.destroy();
      throw new StoreError(REDIS_STORE_NAME, `connect to ${redactUrl(url)} failed: ${errorMessage(error)}`, { cause: error });
    }
    const store = new RedisStore({ ...rest, client });
    own(store, async () => {
      if (client.isOpen) await client.close().catch(() => client.destroy());
      else client.destroy();
    });
    return store;
  }

  /** The full Redis key of session `key`: `${prefix}{${key}}` (a cluster hash tag). */
  keyFor(key: string): string {
    return `${this.prefix}{${key}}`;
  }

  /** The record's value; `undefined` when absent, expired or a tombstone. */
  async get(key: string): Promise<string | undefined> {
    return (await this.read(key))?.value;
  }

  async read(key: string): Promise<VersionedRecord | undefined> {
    const value = await this.#run('GET', (c) => c.get(this.keyFor(key)));
    if (value === null || value === undefined) return undefined;
    return unwrap(typeof value === 'string' ? value : value.toString('utf8'));
  }

  /**
   * One Lua script (EVALSHA, EVAL after a NOSCRIPT), single key so that it runs
   * on Redis Cluster: read the stored string, check `condition` against its
   * version, then `SET … PX` the wrapped value, `DEL` (ttlMs 0) or `SET … PX`
   * a tombstone, atomically.
   */
  async write(key: string, value: string | undefined, version: number, ttlMs: number, condition: WriteCondition): Promise<boolean> {
    const args = versionedWriteArgs(value, version, ttlMs, condition); // validates before anything is sent
    if (condition === null && value !== undefined) {
      // A new sid: "nothing stored under the key" is exactly SET NX, one plain command instead of a script.
      const px = checkTtl(REDIS_STORE_NAME, 'SET NX', ttlMs);
      const set = { expiration: { type: 'PX' as const, value: px }, condition: 'NX' as const };
      if (this.#wait) {
        const reply = await this.#waited(
          'SET NX',
          (p) => p.set(this.keyFor(key), wrap(value, version), set),
          (r) => r !== null && r !== undefined,
        );
        return reply !== null && reply !== undefined;
      }
      const reply = await this.#run('SET NX', (c) => c.set(this.keyFor(key), wrap(value, version), set));
      return reply !== null && reply !== undefined;
    }
    const options = { keys: [this.keyFor(key)], arguments: args };
    if (this.#wait) {
      const reply = await this.#waited(
        'conditional write',
        (p) => p.evalSha(WRITE_SHA, options),
        (r) => Number(r) === 1,
        (p) => p.eval(WRITE_SCRIPT, options),
      );
      return Number(reply) === 1;
    }
    const written = await this.#run('conditional write', async (c) => {
      try {
        return await c.evalSha(WRITE_SHA, options);
      } catch (error) {
        if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
        return c.eval(WRITE_SCRIPT, options);
      }
    });
    return Number(written) === 1;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    const px = checkTtl(REDIS_STORE_NAME, 'SET', ttlMs);
    if (this.#wait) {
      await this.#waited(
        'SET',
        (p) => p.set(this.keyFor(key), value, { expiration: { type: 'PX', value: px } }),
        () => true,
      );
      return;
    }
    await this.#run('SET', (c) => c.set(this.keyFor(key), value, { expiration: { type: 'PX', value: px } }));
  }

  async destroy(key: string): Promise<void> {
    if (this.#wait) {
      await this.#waited(
        'DEL',
        (p) => p.del(this.keyFor(key)),
        (r) => Number(r) > 0,
      );
      return;
    }
    await this.#run('DEL', (c) => c.del(this.keyFor(key)));
  }

  async touch(key: string, ttlMs: number): Promise<void> {
    const px = checkTtl(REDIS_STORE_NAME, 'PEXPIRE', ttlMs);
    // PEXPIRE on an absent key is a no-op returning 0: it never creates one.
    if (this.#wait) {
      await this.#waited(
        'PEXPIRE',
        (p) => p.pExpire(this.keyFor(key), px),
        (r) => Number(r) === 1,
      );
      return;
    }
    await this.#run('PEXPIRE', (c) => c.pExpire(this.keyFor(key), px));
  }

  /** Close the client if this store created it ({@link RedisStore.connect}); a client you passed in is left open. */
  async close(): Promise<void> {
    await closeOwned(this);
  }

  async #run<T>(command: string, fn: (commands: RedisCommands) => Promise<T>): Promise<T> {
    // A disconnected client would otherwise queue the command (offline queue)
    // until it reconnects: fail at once so the request gets its 503 now.
    if (!this.client.isReady) {
      throw new StoreError(this.name, `${command} failed: the client is not connected to Redis (${notConnectedReason(this.client)})`);
    }
    // Once written to a black-holed server a command would wait forever: bound
    // it (one shared sweeper, not a timer or AbortSignal per command: see deadline.ts).
    return storeCall(this.name, command, this.timeoutMs, () => fn(this.#commands));
  }

  /**
   * A write and `WAIT` in one pipeline (`waitForReplicas`): the write's reply,
   * or a `StoreError` (outcome `'unknown'`) when it changed something
   * (`changed(reply)`) that fewer replicas than asked confirmed in time.
   */
  async #waited(
    command: string,
    write: (p: WritePipeline) => WritePipeline,
    changed: (reply: unknown) => boolean,
    fallback?: (p: WritePipeline) => WritePipeline,
  ): Promise<unknown> {
    const wait = this.#wait!;
    const { reply, confirmed } = await this.#run(command, (c) =>
      writeThenWait(c as unknown as { multi(): unknown }, wait, write, fallback),
    );
    if (changed(reply) && !(confirmed >= wait.replicas)) throw unconfirmedError(command, wait, confirmed, this.name);
    return reply;
  }
}
