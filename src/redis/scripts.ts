/**
 * RedisLocker's Lua scripts, and the runner that sends them. Every script
 * names all its keys in KEYS, and all keys of one script share the `{sid}`
 * hash tag, so a cluster client routes it to the node owning that slot and
 * Redis accepts it.
 *
 * Wake-ups cost a message only when someone waits, and the lock goes to the
 * waiting processes in turn, in the order they came: a waiter whose attempt
 * finds the lock taken (and whose locker is subscribed to the release
 * channel, or does not use pub/sub at all: it polls) appends its locker's id to the lock's *waiters list*
 * (`<lock key>:waiters`, once per locker) in that same atomic step; a release
 * pops the first id, leaves the lock key holding that locker's *turn*
 * (`turn:<id>`, for {@link TURN_MS} at most) instead of deleting it, and
 * publishes the id. Only that locker may take the lock then (its attempt
 * swaps the turn for its token), so neither the releasing process nor a
 * newcomer overtakes the queue, and nobody else is woken to try and fail.
 * (Waking every waiting process made each release cost one failed attempt
 * per other waiting process, favoured whichever subscriber Redis wrote to
 * first, and let the releasing process take the lock straight back.) No
 * wake-up is lost: a waiter retries once right after it subscribed, each
 * failed retry registers again before any later release can run, a locker
 * woken with nobody waiting any more passes its turn on, and a turn nobody
 * takes (its process died, or the message was lost) expires. Without pub/sub
 * the same list and turns apply; the locker finds its turn at its next poll
 * (the turn lasts past its poll interval), so the local head of the releasing
 * process cannot win the lock back at every release.
 *
 * Every registration also sets the lock's *waiting mark* (`<lock key>:waiting`,
 * what 0.1.0's waiters set alone), and a release deletes it with the lock in
 * one `DEL`: the list is looked at only when the mark was there, so a release
 * nobody waits for costs what it did before the list (and sets the mark again
 * while the list holds more lockers). A mark without a list (a 0.1.0 waiter,
 * which takes any message as a wake-up) gets the message '1': a rolling
 * upgrade wakes both kinds.
 */
import { createHash } from 'node:crypto';
import { notConnectedReason } from './ioredis.js';
import { withDeadline } from '../util/deadline.js';
import { StoreError } from '../errors.js';
import { VERSIONED_WRITE_LUA } from './versioned-write.js';
import { writeThenWait, type PipelineClient, type ReplicaWait } from './replicas.js';
import type { RedisLockerClient } from './options.js';

/**
 * How long a turn waits for its locker, ms: past the wake-up latency of a
 * loaded process, short enough that a turn nobody takes (a dead process, a
 * message lost while its subscriber reconnected) costs the queue little.
 */
export const TURN_MS = 100;

/**
 * Give the lock `lock` (already deleted, with the waiting mark `mark`:
 * `marked` says whether the mark was there) to the next waiting process: pop
 * the first locker id of `waiters`, set the mark again if more are left, set
 * the lock to the popped locker's turn and publish its id; with a mark but
 * nobody on the list (a 0.1.0 waiter), publish '1', which wakes every waiter.
 * Without pub/sub (`command` '') the turn is set all the same, for the
 * locker's next poll to find. The turn lasts {@link TURN_MS}, or what the id
 * says after a '/': a polling locker's id (`<id>/<ms>`) asks for a turn long
 * enough to outlast its poll interval (see `RedisLocker`).
 */
const WAKE_NEXT_LUA = `
local function wake_next(lock, waiters, mark, marked, command, channel)
  if not marked then return end
  local id = redis.call('LPOP', waiters)
  if not id then
    if command ~= '' then redis.call(command, channel, '1') end
    return
  end
  local left = redis.call('PTTL', waiters)
  if left > 0 then redis.call('SET', mark, '1', 'PX', left) end
  redis.call('SET', lock, 'turn:' .. id, 'PX', tonumber(string.match(id, '/(%d+)$')) or ${TURN_MS})
  if command ~= '' then redis.call(command, channel, id) end
end
`;

/**
 * Acquire: KEYS[1] lock, KEYS[2] waiters list, KEYS[3] waiting mark, KEYS[4]
 * (optional) session record; ARGV[1] token, ARGV[2] lease ms, ARGV[3] how long
 * the waiters list and the mark live in ms ('' to register nothing: this waiter is not subscribed to
 * wake-ups), ARGV[4] the locker's id, ARGV[5] '1' when a release woke this
 * locker (it was popped: the lock should hold its turn; a failure puts it
 * back at the front of the list), ARGV[6] '1' when it registered and was
 * not woken since (a lost message: the lock may hold its turn; a success
 * takes its id off the list). The lock is taken when free, or when it holds
 * this locker's turn (looked up only by a locker that may have one: a
 * first attempt costs just the `SET NX`), or when it already holds this
 * token (the same attempt run twice: see {@link FENCED} on replays). A locker that was on the list
 * (ARGV[5] or ARGV[6]) and is no longer there was popped and missed its turn:
 * it goes back to the front.
 * Returns `{1, record, pttl}` when acquired (the record and its PTTL read in
 * the same atomic step: the fast path; the PTTL lets a scope that only reads
 * hand the record on with its true expiry), else `{0, pttl}` of the current holder, and with a
 * registration `{0, pttl, place}`: the locker's place on the list (0: next).
 */
const ACQUIRE = `
local took
if ARGV[5] == '1' or ARGV[6] == '1' then
  local current = redis.call('GET', KEYS[1])
  if not current or current == 'turn:' .. ARGV[4] or current == ARGV[1] then took = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
else
  took = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
  -- A replay of this very attempt (the client retried after a lost reply): the lock is already ours.
  if not took and redis.call('GET', KEYS[1]) == ARGV[1] then took = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
end
if took then
  if ARGV[6] == '1' then redis.call('LREM', KEYS[2], 0, ARGV[4]) end
  if KEYS[4] then return {1, redis.call('GET', KEYS[4]), redis.call('PTTL', KEYS[4])} end
  return {1}
end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
  local place
  for i, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    if id == ARGV[4] then place = i - 1 break end
  end
  if not place then
    if ARGV[5] == '1' or ARGV[6] == '1' then
      redis.call('LPUSH', KEYS[2], ARGV[4])
      place = 0
    else
      place = redis.call('RPUSH', KEYS[2], ARGV[4]) - 1
    end
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return {0, redis.call('PTTL', KEYS[1]), place}
end
return {0, redis.call('PTTL', KEYS[1])}
`;

/**
 * Release: compare-and-delete the lock (and the waiting mark with it), then
 * give it to the next waiting process. KEYS[1] lock, KEYS[2] waiters list,
 * KEYS[3] waiting mark; ARGV[1] token, ARGV[2] publish command ('' for
 * none), ARGV[3] channel.
 */
const RELEASE = `${WAKE_NEXT_LUA}
if redis.call('GET', KEYS[1]) == ARGV[1] then
  wake_next(KEYS[1], KEYS[2], KEYS[3], redis.call('DEL', KEYS[1], KEYS[3]) == 2, ARGV[2], ARGV[3])
  return 1
end
return 0
`;

/**
 * Pass a turn on: a locker was woken with nobody waiting there any more (or,
 * polling, its last waiter left while registered). Take its id off the list;
 * if the lock holds its turn (or is free), give it to the next waiting process
 * (a holder's release does it otherwise). KEYS[1] lock, KEYS[2] waiters list,
 * KEYS[3] waiting mark; ARGV[1] publish command, ARGV[2] channel, ARGV[3] the
 * locker's id.
 */
const PASS = `${WAKE_NEXT_LUA}
redis.call('LREM', KEYS[2], 0, ARGV[3])
local current = redis.call('GET', KEYS[1])
if current == 'turn:' .. ARGV[3] then redis.call('DEL', KEYS[1]) elseif current then return 0 end
wake_next(KEYS[1], KEYS[2], KEYS[3], redis.call('DEL', KEYS[3]) == 1, ARGV[1], ARGV[2])
return 1
`;

/** Renew: extend the lease only while the token is ours. KEYS[1] lock; ARGV[1] token, ARGV[2] lease ms. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/**
 * Fenced write: only while the lock still holds our token, atomically; with
 * the release flag (the scope's last write) it also releases the lock as
 * RELEASE does, in the same step. KEYS[1] lock, KEYS[2] record, KEYS[3]
 * waiters list, KEYS[4] waiting mark, KEYS[5] receipt; ARGV[1] token, ARGV[2] op, ARGV[3] '1' to release, ARGV[4]
 * publish command ('' for none), ARGV[5] channel, ARGV[6] this write's id
 * (unique per lease and write), ARGV[7] how long its receipt lives (ms), ARGV[8..] operands:
 * - `write` (versioned, RedisStore's `versioned_write`): stored ('' to delete),
 *   ttl, condition kind, condition version;
 * - `set`: value, ttl; `del`; `pexpire`: ttl.
 *
 * Returns 0 when the token is gone (nothing written, lock untouched), 1 when
 * written (and released with the flag), 2 when the token holds but the version
 * condition refused the write (nothing written, the lock still held: the
 * caller's release() gives it back).
 *
 * A write leaves its id in the receipt key. A client may run the script twice:
 * node-redis's Sentinel client retries a command whose connection broke before
 * its reply, on the primary it finds next, and the first run may have been
 * applied and replicated there. The second run then finds the lock it
 * released itself, or the version it wrote itself, and would answer 0 or 2 for
 * a write that landed; finding its own id in the receipt it answers 1 instead.
 * The receipt outlives the bound on the command, so a replay the caller still
 * waits for finds it.
 */
const FENCED = `${VERSIONED_WRITE_LUA}${WAKE_NEXT_LUA}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  if redis.call('GET', KEYS[5]) == ARGV[6] then return 1 end
  return 0
end
local op = ARGV[2]
if op == 'write' then
  if versioned_write(KEYS[2], ARGV[8], ARGV[9], ARGV[10], ARGV[11]) == 0 then
    if redis.call('GET', KEYS[5]) == ARGV[6] then return 1 end
    return 2
  end
elseif op == 'set' then
  redis.call('SET', KEYS[2], ARGV[8], 'PX', ARGV[9])
elseif op == 'del' then
  redis.call('DEL', KEYS[2])
else
  redis.call('PEXPIRE', KEYS[2], ARGV[8])
end
redis.call('SET', KEYS[5], ARGV[6], 'PX', ARGV[7])
if ARGV[3] == '1' then wake_next(KEYS[1], KEYS[3], KEYS[4], redis.call('DEL', KEYS[1], KEYS[4]) == 2, ARGV[4], ARGV[5]) end
return 1
`;

interface Script {
  readonly source: string;
  readonly sha: string;
}
const script = (source: string): Script => ({ source, sha: createHash('sha1').update(source).digest('hex') });

const SCRIPTS = {
  acquire: script(ACQUIRE),
  release: script(RELEASE),
  pass: script(PASS),
  renew: script(RENEW),
  fenced: script(FENCED),
};

export type ScriptName = keyof typeof SCRIPTS;

/** The slice of node-redis the runner uses, typed loosely so one code path serves a client and a cluster client, RESP2 and RESP3. */
interface EvalClient {
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(source: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

/**
 * Sends the locker's scripts: EVALSHA, falling back to EVAL (which caches the
 * script) after a NOSCRIPT, each bounded by `commandTimeoutMs` through the
 * shared deadline sweeper.
 */
export class ScriptRunner {
  readonly #client: RedisLockerClient;
  /**
   * The commands go through `client.withCommandOptions({ timeout: 0 })` when
   * the client has it: node-redis 6 otherwise gives every command its default
   * 5 s timeout, an `AbortSignal.timeout` per command (measured +37 % per
   * request without it). Our deadline is the only bound.
   */
  readonly #commands: EvalClient;
  readonly #timeoutMs: number;
  /** The publish command of the release scripts (`''`: no notifications). */
  readonly publishCommand: string;

  constructor(client: RedisLockerClient, commandTimeoutMs: number, pubsub: 'sharded' | 'plain' | false) {
    this.#client = client;
    this.#commands = (typeof client.withCommandOptions === 'function' ? client.withCommandOptions({ timeout: 0 }) : client) as EvalClient;
    this.#timeoutMs = commandTimeoutMs > 0 ? commandTimeoutMs : Infinity;
    this.publishCommand = pubsub === 'sharded' ? 'SPUBLISH' : pubsub === 'plain' ? 'PUBLISH' : '';
  }

  /** The bound of one command, ms (`Infinity`: none). */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** Whether a command would go out now (false while reconnecting). */
  get connected(): boolean {
    return this.#client.isReady !== false;
  }

  /**
   * Fail at once while the client is not connected, as RedisStore does,
   * instead of letting node-redis queue the command until it reconnects: the
   * request gets its 503 now.
   */
  assertReady(what: string): void {
    if (!this.connected) {
      throw new StoreError('redis', `${what} failed: the client is not connected to Redis (${notConnectedReason(this.#client)})`);
    }
  }

  /** Run script `name`; `timeoutMs`: a tighter bound than `commandTimeoutMs` (the fenced store's, the fused read's). */
  run(name: ScriptName, keys: string[], args: string[], timeoutMs = this.#timeoutMs): Promise<unknown> {
    const { sha, source } = SCRIPTS[name];
    const commands = this.#commands;
    const send = async (): Promise<unknown> => {
      const options = { keys, arguments: args };
      try {
        return await commands.evalSha(sha, options);
      } catch (error) {
        if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
        return commands.eval(source, options);
      }
    };
    return this.#bounded(send, timeoutMs);
  }

  /**
   * Run script `name` and `WAIT` for `wait.replicas` in one pipeline (the
   * master RedisStore's `waitForReplicas`, for the fenced write): the script's
   * reply and how many replicas confirmed it.
   */
  runThenWait(
    name: ScriptName,
    keys: string[],
    args: string[],
    wait: ReplicaWait,
    timeoutMs = this.#timeoutMs,
  ): Promise<{ reply: unknown; confirmed: number }> {
    const { sha, source } = SCRIPTS[name];
    const options = { keys, arguments: args };
    const send = () =>
      writeThenWait(
        this.#commands as unknown as PipelineClient,
        wait,
        (p) => p.evalSha(sha, options),
        (p) => p.eval(source, options),
      );
    return this.#bounded(send, timeoutMs);
  }

  #bounded<T>(send: () => Promise<T>, timeoutMs: number): Promise<T> {
    if (!Number.isFinite(timeoutMs)) return send();
    const which = timeoutMs === this.#timeoutMs ? 'commandTimeoutMs' : 'the store timeout';
    return withDeadline(send, timeoutMs, () => new Error(`no reply within ${timeoutMs} ms (${which})`));
  }
}
