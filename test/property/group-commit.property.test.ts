/**
 * Group commit, by property: random mixes of increments, scopes that throw,
 * read-only scopes, regenerates and increments whose master write is made to
 * fail, on one session, with random group-commit and handoff bounds and random
 * interleavings (a store that yields a random number of turns per call, some
 * requests queued behind a held lock, others arriving while the chain runs).
 *
 * After each run:
 * - the final count equals the number of acknowledged (200) increments, and
 *   the counts those 200s saw are exactly 1..N (each saw its own; none lost,
 *   none counted twice);
 * - no 200 came from a failed batch: a scope whose change was carried by a
 *   refused write is never 200 (the increment that made its write fail never is);
 * - a read-only 200 saw an acknowledged state;
 * - a throwing scope got 500 and changed nothing; every request was answered
 *   (an orphaned batch would hang the run) and no lock is left behind.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import request from 'supertest';
import { MemoryLocker, MemoryStore, type WriteCondition } from '../../src/index.js';
import { cookieHeader, deferred, makeApp } from '../helpers/app.js';

declare module '../../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const NUM_RUNS = Number(process.env.PROPERTY_RUNS ?? 40);

const KINDS = ['inc', 'pair', 'throw', 'read', 'regenerate', 'failwrite'] as const;
type Kind = (typeof KINDS)[number];
interface Op {
  kind: Kind;
  /** Queued behind the held lock before anything runs (else sent while the chain runs). */
  queued: boolean;
  /** Turns the op's function yields before it changes the data. */
  turns: number;
  /** Turns a late op waits before it is sent. */
  delay: number;
}

/** A small seeded PRNG (mulberry32): the store's yields are reproducible from the run's seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** A MemoryStore as on a network (each call yields a few turns), whose next write of a key can be made to fail. */
class FlakyStore extends MemoryStore {
  readonly armed = new Set<string>();
  writes = 0;
  constructor(readonly random: () => number) {
    super();
  }
  override async read(key: string) {
    await turns(Math.floor(this.random() * 3));
    return super.read(key);
  }
  override async write(
    key: string,
    value: string | undefined,
    version: number,
    ttlMs: number,
    condition: WriteCondition,
  ): Promise<boolean> {
    await turns(Math.floor(this.random() * 3));
    this.writes++;
    if (this.armed.delete(key)) throw new Error('the store refused the write');
    return super.write(key, value, version, ttlMs, condition);
  }
}

const op: fc.Arbitrary<Op> = fc.record({
  kind: fc.oneof(
    { weight: 10, arbitrary: fc.constant<Kind>('inc') },
    { weight: 8, arbitrary: fc.constantFrom<Kind>('pair', 'throw', 'read', 'failwrite') },
    // Rare: every scope queued on the old sid after a regenerate gets 409 and does nothing else.
    { weight: 1, arbitrary: fc.constant<Kind>('regenerate') },
  ),
  queued: fc.boolean(),
  turns: fc.nat(3),
  delay: fc.nat(6),
});

const scenario = fc.record({
  seed: fc.integer(),
  maxScopes: fc.integer({ min: 1, max: 6 }),
  maxHandoffs: fc.integer({ min: 1, max: 8 }),
  // Short ones make batches written under a holder still in its scope (then it saves one version on).
  maxMs: fc.constantFrom(1, 2, 5, 600_000),
  ops: fc.array(op, { minLength: 2, maxLength: 14 }),
});

/**
 * Every response, or a failure naming the requests never answered: an orphaned
 * batch (a member nobody settles) would otherwise hang the run. A watchdog for
 * a hang, not a timing assertion: a healthy run answers in milliseconds.
 */
async function answered(responses: Array<Promise<request.Response>>): Promise<request.Response[]> {
  const pending = new Set(responses.map((_, i) => i));
  responses.forEach(
    (r, i) =>
      void r.then(
        () => pending.delete(i),
        () => pending.delete(i),
      ),
  );
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`requests ${[...pending].join(', ')} were never answered (an orphaned batch?)`)), 60_000);
  });
  try {
    return await Promise.race([Promise.all(responses), hang]);
  } finally {
    clearTimeout(timer);
  }
}

type Scenario = typeof scenario extends fc.Arbitrary<infer S> ? S : never;

async function run({ seed, maxScopes, maxHandoffs, maxMs, ops }: Scenario): Promise<void> {
  const master = new FlakyStore(prng(seed));
  const locker = new MemoryLocker();
  const holder = deferred();
  const gate = deferred();
  const arrivals = ops.map(() => deferred());
  // (How the batches are cut may then depend on the machine's speed; what is checked does not.)
  const app = makeApp({ master, locker, handoff: { maxHandoffs, maxMs: 600_000 }, groupCommit: { maxScopes, maxMs } }, async (ctx) => {
    if (ctx.path === '/setup') {
      ctx.body = { seen: await ctx.session.withLock((s) => (s.count = 0)) };
      return;
    }
    if (ctx.path === '/count') {
      ctx.body = { count: (await ctx.session.get()).count ?? null };
      return;
    }
    const i = Number(ctx.query.i);
    const { kind, turns: n } = ops[i]!;
    if (kind === 'pair') {
      // Two callers of one request share one scope: the first to leave saves (the scope goes on), the last saves
      // again; each is acknowledged on its own (null: that caller failed).
      const both = Promise.all(
        [1, 2].map((k) =>
          ctx.session
            .withLock(async (s) => {
              if (i === 0 && k === 1) {
                holder.resolve();
                await gate.promise;
              }
              await turns(k === 1 ? n : 0);
              return (s.count = (s.count ?? 0) + 1);
            })
            .catch((error: { status?: number }) => {
              if (error.status !== 503 && error.status !== 409) throw error;
              return null;
            }),
        ),
      );
      arrivals[i]!.resolve();
      ctx.body = { seen: await both };
      return;
    }
    const result = ctx.session.withLock(async (s) => {
      if (i === 0) {
        holder.resolve();
        await gate.promise;
      }
      await turns(n);
      if (kind === 'read') return s.count;
      const seen = (s.count = (s.count ?? 0) + 1);
      if (kind === 'throw') throw new Error('boom');
      if (kind === 'failwrite') master.armed.add(ctx.session.id!); // (prefix ''): the next write of this key is refused
      if (kind === 'regenerate') await ctx.session.regenerate();
      return seen;
    });
    arrivals[i]!.resolve();
    ctx.body = { seen: await result };
  });
  const http = app.callback();
  const setup = await request(http).get('/setup');
  assert.equal(setup.status, 200);
  const cookie = cookieHeader(setup.headers['set-cookie']);
  const send = (i: number) =>
    request(http)
      .get(`/?i=${i}`)
      .set('Cookie', cookie)
      .then((r) => r);

  const responses: Array<Promise<request.Response>> = [send(0)];
  await holder.promise;
  const late: number[] = [];
  for (let i = 1; i < ops.length; i++) {
    if (!ops[i]!.queued) {
      late.push(i);
      continue;
    }
    responses[i] = send(i);
    await arrivals[i]!.promise;
  }
  gate.resolve();
  for (const i of late) responses[i] = turns(ops[i]!.delay).then(() => send(i));
  const done = await answered(responses);

  const moved = done.find((r, i) => r.status === 200 && ops[i]!.kind === 'regenerate');
  const live = moved ? cookieHeader(moved.headers['set-cookie']) : cookie;
  const final = (await request(http).get('/count').set('Cookie', live)).body.count as number;

  const acked: number[] = [];
  done.forEach((r, i) => {
    const { kind } = ops[i]!;
    const what = `op ${i} (${kind}) answered ${r.status}`;
    if (kind === 'throw')
      assert.ok([500, 409].includes(r.status), what); // (409: it came after a regenerate moved the session)
    else assert.ok([200, 409, 503].includes(r.status), what);
    if (kind === 'failwrite') assert.notEqual(r.status, 200, `${what}: its own write was refused`);
    if (r.status === 200 && (kind === 'inc' || kind === 'regenerate')) acked.push(r.body.seen as number);
    if (r.status === 200 && kind === 'pair') acked.push(...(r.body.seen as Array<number | null>).filter((n) => n !== null));
  });
  assert.deepEqual(
    [...acked].sort((a, b) => a - b),
    acked.map((_, k) => k + 1),
    'each 200 saw its own count, 1..N',
  );
  assert.equal(final, acked.length, 'the final count is the number of acknowledged increments');
  done.forEach((r, i) => {
    if (ops[i]!.kind === 'read' && r.status === 200)
      assert.ok(r.body.seen === 0 || acked.includes(r.body.seen), `a read saw ${r.body.seen}, a state never acknowledged`);
  });
  assert.equal(locker.size, 0, 'no lock left behind');
  assert.equal(master.armed.size, 0, 'every armed failure hit a write');
}

describe('group commit, random interleavings (MemoryStore + MemoryLocker)', () => {
  it('the final count is the number of 200 increments; no 200 from a failed batch', { timeout: 300_000 }, async () => {
    await fc.assert(fc.asyncProperty(scenario, run), { numRuns: NUM_RUNS });
  });
});
