/**
 * Issue 11, items 1 and 3, as a history: one browser's requests in sequence,
 * where some saves are held past `storeTimeout` (503, outcome unknown) and
 * delivered at random later points, several held at once. The store reports
 * whether each delivered write applied, so the exact history is checkable:
 *
 * - a held write applies only if no other write of the session landed since it
 *   read, and then it counts as if it ran last (it carries the next count);
 * - every 200 answers exactly 1 + (increments acknowledged before) + (held
 *   writes that applied before): no acknowledged update is ever lost, the
 *   count never goes back;
 * - after a logout, every write still held is refused: nothing brings the
 *   session back.
 * Seeded schedules on MemoryStore (the per-store versions run in
 * late-writes.test.ts through a TCP proxy).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { MemoryStore } from '../src/index.js';
import { cookieHeader, makeApp, sidOf } from './helpers/app.js';
import { liveValue, seeded, wrapStore } from './helpers/stall.js';

declare module '../src/index.js' {
  interface SessionData {
    count?: number;
  }
}

const SEEDS = 8;
const STEPS = 24;

/** A MemoryStore whose next value-carrying write can be held; held writes are delivered by index. */
function holding() {
  const inner = new MemoryStore();
  let holdNext = false;
  const held: Array<{ value: string; deliver(): Promise<boolean> }> = [];
  const store = wrapStore(inner, (call, run) => {
    if (!holdNext || call.value === undefined || (call.op !== 'set' && call.op !== 'write')) return run();
    holdNext = false;
    const value = call.value;
    // The replica gives up on this promise at storeTimeout; the write itself happens on delivery.
    return new Promise((resolve) => {
      held.push({
        value,
        deliver: async () => {
          const applied = await run();
          resolve(applied);
          return applied !== false; // `set` (unversioned) always applies
        },
      });
    });
  });
  return { inner, store, held, holdNext: () => void (holdNext = true) };
}

describe('one browser, saves held past storeTimeout and delivered later (seeded histories)', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    it(`seed ${seed}: every 200 continues the history, a held write applies only as the last one, a logout is final`, async () => {
      const random = seeded(seed);
      const h = holding();
      const server = makeApp({ master: h.store, storeTimeout: 50 }, async (ctx) => {
        if (ctx.path === '/logout') await ctx.session.logout();
        else ctx.body = { count: await ctx.session.withLock((s) => (s.count = (s.count ?? 0) + 1)) };
        ctx.body ??= 'ok';
      }).callback();

      const first = await request(server).get('/');
      assert.equal(first.body.count, 1);
      const cookie = cookieHeader(first.headers['set-cookie']);
      const sid = sidOf(first);
      let acknowledged = 1;
      let applied = 0;
      const history: string[] = ['200:1'];

      for (let step = 0; step < STEPS; step++) {
        const roll = random();
        if (roll < 0.3 && h.held.length > 0) {
          const [late] = h.held.splice(Math.floor(random() * h.held.length), 1);
          const expected = acknowledged + applied;
          const ok = await late!.deliver();
          history.push(`late:${JSON.parse(late!.value).count}:${ok ? 'applied' : 'refused'}`);
          if (ok) {
            assert.equal(
              JSON.parse(late!.value).count,
              expected + 1,
              `a late write applies only over the record it read (history ${history.join(' ')})`,
            );
            applied++;
          }
        } else if (roll < 0.55) {
          h.holdNext();
          const res = await request(server).get('/').set('Cookie', cookie);
          history.push(`${res.status}:held`);
          assert.equal(res.status, 503, 'the held save answers 503');
        } else {
          const res = await request(server).get('/').set('Cookie', cookie);
          history.push(`${res.status}:${res.body.count}`);
          assert.equal(res.status, 200);
          assert.equal(
            res.body.count,
            acknowledged + applied + 1,
            `no acknowledged update lost, no going back (history ${history.join(' ')})`,
          );
          acknowledged++;
        }
      }

      const logout = await request(server).post('/logout').set('Cookie', cookie);
      assert.equal(logout.status, 200);
      for (const late of h.held.splice(0)) {
        assert.equal(await late.deliver(), false, `a write held across the logout is refused (history ${history.join(' ')})`);
      }
      assert.equal(await liveValue(h.inner, sid), undefined, 'the logged-out session stays gone');
    });
  }
});
