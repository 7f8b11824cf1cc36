/**
 * Concurrency, by property: random interleavings of `withLock` (increment a
 * counter and append the op id to a list), `get`, `regenerate`, `destroy`,
 * `login` and `logout` over a few clients, fired CONCURRENTLY as HTTP requests
 * against a real app, round after round.
 *
 * Which request gets the lock first decides the outcome, so the test records
 * the order in which the locker actually granted each session's lock (a
 * recording wrapper around the real locker, told the op id through
 * AsyncLocalStorage) and replays exactly that order through a sequential
 * model. Then, after every round:
 *
 * - every response (the sid it ended with, the count it saw) is what the model
 *   predicts for that position in the order;
 * - no lost update: every live record equals the model's, list of applied
 *   increments included;
 * - no resurrection: a sid that was destroyed, logged out or regenerated never
 *   holds a record again, and a request arriving with it works on a fresh
 *   session under a brand-new sid;
 * - no orphans: the store holds exactly the model's live records plus one
 *   user-index record per logged-in user, and each user's index lists exactly
 *   that user's live sids;
 * - no orphaned lock: `MemoryLocker.size === 0` (RedisLocker: `size === 0` and
 *   no lock key left in Redis);
 * - every `get()` (which takes no lock) returned a state its session really
 *   held at some point of the round.
 *
 * Runs for MemoryStore + MemoryLocker, and RedisStore + RedisLocker (one shared
 * client, the fenced fast path) when a Redis server is available.
 */
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { after, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import type Koa from 'koa';
import { createClient } from 'redis';
import {
  MemoryLocker,
  MemoryStore,
  type AcquireOptions,
  type Lease,
  type Locker,
  type SessionHandle,
  type Store,
  type VersionedStore,
} from '../../src/index.js';
import { RedisLocker } from '../../src/redis/locker.js';
import { RedisStore } from '../../src/redis/store.js';
import { listen, makeApp } from '../helpers/app.js';
import { redisServer, skipReason, type TestServer } from '../helpers/servers.js';
import { cookieHeader } from '../helpers/cookies.js';

const NUM_RUNS = Number(process.env.PROPERTY_RUNS ?? 25);

interface User {
  id: string;
}
interface Rec {
  count?: number;
  log?: number[];
  user?: User;
}
const handle = (ctx: Koa.Context) => ctx.session as unknown as SessionHandle<Rec>;

const KINDS = ['inc', 'get', 'regenerate', 'destroy', 'login', 'logout'] as const;
type Kind = (typeof KINDS)[number];
const USERS = ['u1', 'u2'] as const;

// ---------------------------------------------------------------------------
// The lock order, as the locker granted it.

const currentOp = new AsyncLocalStorage<number>();

/** A spy around a real locker: records, per grant, the key and the op that got it. */
class RecordingLocker implements Locker {
  readonly name: string;
  readonly grants: Array<{ op: number | undefined; key: string }> = [];
  constructor(readonly inner: Locker) {
    this.name = inner.name;
  }
  async acquire(key: string, options: AcquireOptions): Promise<Lease> {
    const lease = await this.inner.acquire(key, options);
    // Nobody else can be granted this key before our holder runs and releases: the push order is the grant order.
    this.grants.push({ op: currentOp.getStore(), key });
    return lease;
  }
  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}

// ---------------------------------------------------------------------------
// One app per property run.

interface Backend {
  /** A fresh master for one run, plus how to list every key it holds. */
  store(run: number): { master: Store; keys(): Promise<string[]> };
  /** A fresh locker for one run, plus how to tell it holds nothing. */
  locker(run: number): { locker: Locker & { readonly size: number }; leftovers(): Promise<string[]> };
}

const memoryBackend: Backend = {
  store() {
    const master = new MemoryStore();
    const seen = new Set<string>();
    // MemoryStore answers within the same tick, so without a pause no other request could ever run
    // between a scope's read and its write and the lock would have nothing to prevent. Each call
    // yields to the event loop a random number of times first, as a store on the network would.
    const network = async () => {
      for (let i = Math.floor(Math.random() * 4); i > 0; i--) await new Promise((resolve) => setImmediate(resolve));
    };
    // MemoryStore cannot list its keys; its size plus the keys it was ever given is enough.
    const spy: VersionedStore = {
      name: master.name,
      get: async (k) => (await network(), master.get(k)),
      set: async (k, v, t) => (await network(), seen.add(k), master.set(k, v, t)),
      destroy: async (k) => (await network(), master.destroy(k)),
      touch: async (k, t) => (await network(), master.touch(k, t)),
      read: async (k) => (await network(), master.read(k)),
      write: async (k, v, n, t, c) => (await network(), seen.add(k), master.write(k, v, n, t, c)),
    };
    return {
      master: spy,
      keys: async () => {
        // Every key holding something: a record or a tombstone.
        const held = [];
        for (const k of seen) if ((await master.read(k)) !== undefined) held.push(k);
        assert.equal(master.size, held.length, 'MemoryStore holds no key it was not given by a write');
        return held;
      },
    };
  },
  locker() {
    const locker = new MemoryLocker();
    return { locker, leftovers: async () => [] };
  },
};

function redisBackend(client: Awaited<ReturnType<typeof connectRedis>>): Backend {
  const scan = async (pattern: string) => {
    const out: string[] = [];
    for await (const batch of client.scanIterator({ MATCH: pattern, COUNT: 1000 })) out.push(...batch);
    return out;
  };
  return {
    store(run) {
      const prefix = `prop-int-${process.pid}-${run}:`;
      const master = new RedisStore({ client, prefix, timeoutMs: 10_000 });
      return { master, keys: async () => (await scan(`${prefix}*`)).map((k) => k.slice(prefix.length + 1, -1)) };
    },
    locker(run) {
      const prefix = `prop-lock-${process.pid}-${run}:`;
      const locker = new RedisLocker({ client, prefix, commandTimeoutMs: 10_000 });
      const leftovers = async () => {
        const left: string[] = [];
        for (const key of await scan(`${prefix}*`)) {
          // A fenced write's receipt (src/redis/scripts.ts, FENCED) outlives the lock on purpose, for a replay of that write: it must only expire.
          if (key.endsWith(':applied') && (await client.pTTL(key)) > 0) continue;
          left.push(key);
        }
        return left;
      };
      return { locker, leftovers };
    },
  };
}

const connectRedis = (url: string) => createClient({ url }).connect();

// ---------------------------------------------------------------------------
// HTTP

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
after(() => agent.destroy());

interface Reply {
  before: string | null;
  after: string | null;
  result: unknown;
  /** 409: the carried sid was moved by a login/regenerate of the same browser; nothing happened. */
  moved?: true;
}
function send(url: string, cookie: string | undefined): Promise<{ status: number; setCookie: string[]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers: cookie ? { cookie } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, setCookie: res.headers['set-cookie'] ?? [], body: Buffer.concat(chunks).toString() }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------
// Generated scenario

interface OpSpec {
  client: number;
  kind: Kind;
  user: (typeof USERS)[number];
}
interface Round {
  ops: OpSpec[];
  /** Per client: which cookie to carry into the next round (its old sid, one handed out this round, or none). */
  picks: number[];
}
const CLIENTS = 3;
const kind = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Kind>('inc') },
  { weight: 2, arbitrary: fc.constant<Kind>('get') },
  { weight: 1, arbitrary: fc.constantFrom<Kind>('regenerate', 'destroy', 'login', 'logout') },
);
interface Scenario {
  /** Round 0, sequential: what each client starts with. */
  initial: Array<'inc' | 'login' | 'none'>;
  initialUser: Array<(typeof USERS)[number]>;
  rounds: Round[];
}
const scenario: fc.Arbitrary<Scenario> = fc.record({
  initial: fc.array(fc.constantFrom<'inc' | 'login' | 'none'>('inc', 'inc', 'login', 'none'), { minLength: CLIENTS, maxLength: CLIENTS }),
  initialUser: fc.array(fc.constantFrom(...USERS), { minLength: CLIENTS, maxLength: CLIENTS }),
  rounds: fc.array(
    fc.record({
      ops: fc.array(fc.record({ client: fc.nat({ max: CLIENTS - 1 }), kind, user: fc.constantFrom(...USERS) }), {
        minLength: 1,
        maxLength: 14,
      }),
      picks: fc.array(fc.nat(), { minLength: CLIENTS, maxLength: CLIENTS }),
    }),
    { minLength: 1, maxLength: 4 },
  ),
});

// ---------------------------------------------------------------------------

const SID = /^[A-Za-z0-9_-]{43}$/;
const indexKey = (user: string) => `idx:${createHash('sha256').update(user).digest('base64url')}`;
const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

async function runScenario(
  backend: Backend,
  run: number,
  input: Scenario,
): Promise<{ ops: number; lockedOps: number; deadArrivals: number }> {
  const { master, keys } = backend.store(run);
  const { locker: inner, leftovers } = backend.locker(run);
  const locker = new RecordingLocker(inner);
  // handoff off: the lock order is read from the locker's grants, and a handed-over lease is no grant.
  const app = makeApp({ master, locker, lockTimeout: 60_000, storeTimeout: 10_000, handoff: false }, async (ctx) => {
    const op = Number(ctx.query.op);
    await currentOp.run(op, async () => {
      const session = handle(ctx);
      const before = session.id ?? null;
      let result: unknown = null;
      switch (ctx.path) {
        case '/inc':
          result = await session.withLock((s) => {
            s.count = (s.count ?? 0) + 1;
            s.log = [...(s.log ?? []), op];
            return s.count;
          });
          break;
        case '/get':
          result = clone(await session.get());
          break;
        case '/regenerate':
          await session.regenerate();
          break;
        case '/destroy':
          await session.destroy();
          break;
        case '/login':
          await session.login({ id: String(ctx.query.user) });
          break;
        case '/logout':
          await session.logout();
          break;
      }
      ctx.body = { before, after: session.id ?? null, result } satisfies Reply;
    });
  });
  const server = await listen(app);

  // The model: live records by sid, every sid ever handed out, and what each sid held over time.
  const live = new Map<string, Rec>();
  const everHandedOut = new Set<string>();
  /** Sids moved to a new sid by regenerate/login: requests still carrying them answer 409 and change nothing. */
  const moved = new Set<string>();
  const cookies = new Map<string, string>();
  const jar: Array<string | null> = Array.from({ length: CLIENTS }, () => null);
  let nextOp = 0;
  let totalOps = 0;
  let lockedOps = 0;
  let deadArrivals = 0;

  /** Fire `ops` at once; returns each op's id, the sid it carried and the reply. */
  const fire = async (ops: readonly OpSpec[]) => {
    const sent = ops.map((spec) => ({ spec, id: ++nextOp, carried: jar[spec.client] ?? null }));
    const replies = await Promise.all(
      sent.map(async ({ spec, id, carried }) => {
        const res = await send(
          `${server.url}/${spec.kind}?op=${id}&user=${spec.user}`,
          carried === null ? undefined : cookies.get(carried),
        );
        if (res.status === 409) {
          assert.deepEqual(res.setCookie, [], `op ${id} (${spec.kind}): a 409 sets no cookie`);
          return { before: carried, after: null, result: undefined, moved: true } satisfies Reply;
        }
        assert.equal(res.status, 200, `op ${id} (${spec.kind}) answered ${res.status}: ${res.body}`);
        const reply = JSON.parse(res.body) as Reply;
        const handed = res.setCookie.map((c) => /^sid=([^;]*)/.exec(c)?.[1]).find((v) => v !== undefined);
        if (handed) {
          assert.equal(handed, reply.after, 'the cookie carries the sid the handle ended with');
          if (!cookies.has(handed)) cookies.set(handed, cookieHeader(res.setCookie));
        }
        return reply;
      }),
    );
    totalOps += ops.length;
    return sent.map((s, i) => ({ ...s, reply: replies[i]! }));
  };

  /** A sid handed out by `reply` must be brand new: generated by us, never seen before. */
  const fresh = (sid: string | null, what: string): string => {
    assert.ok(sid !== null && SID.test(sid), `${what}: a new 43-char sid`);
    assert.ok(!everHandedOut.has(sid), `${what}: the new sid ${sid} was never handed out before`);
    everHandedOut.add(sid);
    return sid;
  };

  /** Apply one op, carrying `carried`, to the model at its place in the lock order; check its reply. */
  const apply = (op: { spec: OpSpec; id: number; carried: string | null; reply: Reply }, history: Map<string, Array<Rec | undefined>>) => {
    const { spec, id, carried, reply } = op;
    const what = `op ${id} (${spec.kind} on ${carried ?? 'no cookie'})`;
    assert.equal(reply.before, carried, `${what}: the signed cookie is accepted as is`);
    const rec = carried === null ? undefined : live.get(carried);
    if (carried !== null && !rec) deadArrivals++;
    if (reply.moved) {
      assert.ok(
        carried !== null && moved.has(carried) && !rec,
        `${what}: 409 only for a sid that a login/regenerate moved before it in the lock order`,
      );
      return;
    }
    assert.ok(carried === null || !moved.has(carried), `${what}: a request on a moved sid must answer 409, never start a fresh session`);
    const kill = (move = false) => {
      live.delete(carried!);
      history.get(carried!)?.push(undefined);
      if (move) moved.add(carried!);
    };
    switch (spec.kind) {
      case 'inc': {
        const next: Rec = { ...(rec ?? {}), count: (rec?.count ?? 0) + 1, log: [...(rec?.log ?? []), id] };
        assert.equal(reply.result, next.count, `${what}: the count it saw`);
        if (rec) {
          assert.equal(reply.after, carried, `${what}: a live session keeps its sid`);
          live.set(carried!, next);
          history.get(carried!)?.push(next);
        } else {
          live.set(fresh(reply.after, `${what}: a dead or missing session starts fresh`), next);
        }
        break;
      }
      case 'regenerate':
        if (rec) {
          kill(true);
          live.set(fresh(reply.after, what), rec);
        } else {
          assert.equal(reply.after, null, `${what}: nothing to regenerate, nothing saved`);
        }
        break;
      case 'destroy':
      case 'logout':
        if (rec) kill();
        assert.equal(reply.after, null, what);
        break;
      case 'login':
        if (rec) kill(true);
        live.set(fresh(reply.after, what), { user: { id: spec.user } });
        break;
      case 'get':
        throw new Error('get takes no lock');
    }
  };

  /** Everything that must hold between rounds. */
  const checkState = async (where: string) => {
    assert.equal(inner.size, 0, `${where}: no lock left behind in the locker`);
    assert.deepEqual(await leftovers(), [], `${where}: no lock key left in the backend`);
    for (const sid of everHandedOut) {
      const raw = await master.get(sid);
      const expected = live.get(sid);
      if (expected === undefined) assert.equal(raw, undefined, `${where}: dead sid ${sid} holds no record (no resurrection)`);
      else assert.deepStrictEqual(raw === undefined ? undefined : JSON.parse(raw), expected, `${where}: record of ${sid} (no lost update)`);
    }
    const indexes = new Map<string, string[]>();
    for (const [sid, rec] of live) if (rec.user) indexes.set(rec.user.id, [...(indexes.get(rec.user.id) ?? []), sid]);
    for (const user of USERS) {
      const raw = await master.get(indexKey(user));
      assert.deepEqual(
        raw === undefined ? [] : (JSON.parse(raw) as string[]).sort(),
        (indexes.get(user) ?? []).sort(),
        `${where}: ${user}'s index lists exactly their live sessions`,
      );
    }
    const expectedKeys = [...live.keys(), ...[...indexes.keys()].map(indexKey)].sort();
    // A moved sid may still hold its short tombstone (it reads as absent, checked above).
    const held = (await keys()).filter((k) => !moved.has(k));
    assert.deepEqual(
      held.sort(),
      expectedKeys,
      `${where}: the store holds the live records and indexes (and tombstones of moved sids), nothing else`,
    );
  };

  try {
    // Round 0, sequential: give the clients something to fight over.
    for (let c = 0; c < CLIENTS; c++) {
      const kind = input.initial[c]!;
      if (kind === 'none') continue;
      const [op] = await fire([{ client: c, kind, user: input.initialUser[c]! }]);
      apply(op!, new Map());
      jar[c] = op!.reply.after;
    }
    locker.grants.length = 0;
    await checkState('after setup');

    for (const [r, round] of input.rounds.entries()) {
      const where = `round ${r + 1}`;
      // What each carried sid held when the round began: a get() may see any state its session goes through.
      const history = new Map<string, Array<Rec | undefined>>();
      for (const sid of jar) if (sid !== null) history.set(sid, [live.get(sid)]);

      const done = await fire(round.ops);
      const byId = new Map(done.map((op) => [op.id, op]));

      // Replay in the order the locks were granted.
      const grants = locker.grants.splice(0).filter((g) => !g.key.startsWith('idx:'));
      const replayed = new Set<number>();
      for (const { op: id, key } of grants) {
        const op = byId.get(id!);
        assert.ok(op, `${where}: lock on ${key} granted to an op of this round (${id})`);
        assert.notEqual(op.spec.kind, 'get', `${where}: get() takes no lock`);
        assert.equal(key, op.carried, `${where}: op ${id} locked the sid it carried`);
        assert.ok(!replayed.has(id!), `${where}: op ${id} locked once`);
        replayed.add(id!);
        apply(op, history);
        lockedOps++;
      }
      // Ops without a cookie take no lock: a new session nobody else can know.
      for (const op of done) {
        if (op.spec.kind === 'get') continue;
        if (op.carried === null) apply(op, history);
        else assert.ok(replayed.has(op.id), `${where}: op ${op.id} (${op.spec.kind}) took its session's lock`);
      }
      for (const op of done) {
        if (op.spec.kind !== 'get') continue;
        assert.equal(op.reply.before, op.carried);
        if (op.reply.moved) {
          assert.ok(op.carried !== null && moved.has(op.carried), `${where}: get() answered 409 only on a moved sid`);
          continue;
        }
        const states = op.carried === null ? [undefined] : history.get(op.carried)!;
        const seen = op.reply.result as Rec;
        assert.ok(
          states.some((s) => isDeepStrictEqual(seen, s ?? {})),
          `${where}: get() on ${op.carried} saw ${JSON.stringify(seen)}, a state its session held (${JSON.stringify(states)})`,
        );
      }

      await checkState(where);

      // Next round's cookies: per client, the sid it carried (maybe dead now), one handed out to it this round, or none.
      for (let c = 0; c < CLIENTS; c++) {
        const mine = done.filter((op) => op.spec.client === c).map((op) => op.reply.after);
        const candidates = [...new Set([jar[c]!, ...mine])];
        jar[c] = candidates[round.picks[c]! % candidates.length]!;
      }
    }
  } finally {
    await server.close();
    await locker.close();
  }
  return { ops: totalOps, lockedOps, deadArrivals };
}

function property(backend: () => Backend, numRuns: number) {
  return async () => {
    let run = 0;
    let ops = 0;
    let lockedOps = 0;
    let deadArrivals = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async (input) => {
        const stats = await runScenario(backend(), ++run, input);
        ops += stats.ops;
        lockedOps += stats.lockedOps;
        deadArrivals += stats.deadArrivals;
      }),
      { numRuns },
    );
    if (process.env.PROPERTY_STATS) console.log({ runs: run, ops, lockedOps, deadArrivals });
  };
}

describe('property: concurrent interleavings equal the sequential replay of the lock order', () => {
  it(
    'MemoryStore + MemoryLocker',
    property(() => memoryBackend, NUM_RUNS),
  );
});

const redis: TestServer | undefined = await redisServer();
const redisClient = redis ? await connectRedis(redis.url) : undefined;
after(async () => {
  await redisClient?.close();
  await redis?.stop();
});

describe('property: concurrent interleavings equal the sequential replay of the lock order (Redis)', {
  skip: redis ? false : skipReason('redis'),
}, () => {
  it(
    'RedisStore + RedisLocker (one client: fenced saves)',
    property(() => redisBackend(redisClient!), Math.ceil(NUM_RUNS / 2)),
  );
});
