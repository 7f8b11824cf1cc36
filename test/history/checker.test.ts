/**
 * The history checker on hand-made histories: each broken history must fail,
 * with the smallest part of the history that shows it; the correct ones
 * (including unknown appends that did or did not happen, and reads
 * concurrent with appends) must pass.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkHistory, describeSmallest, type AppendOp, type Op, type ReadOp, type Status } from './checker.js';

let nextId = 0;
function append(element: string, start: number, end: number, status: Status = 'ok'): AppendOp {
  return { kind: 'append', id: nextId++, client: 0, worker: 0, start, end, status, element };
}
function read(result: string[] | undefined, start: number, end: number, status: Status = 'ok'): ReadOp {
  return { kind: 'read', id: nextId++, client: 1, worker: 0, start, end, status, ...(result ? { result } : {}) };
}

/** The single smallest anomaly: its kind and the ids of its witness ops. */
function smallest(history: Op[], final: string[]) {
  const result = checkHistory(history, final);
  assert.equal(result.valid, false, 'the checker must reject this history');
  const [first] = result.anomalies;
  return {
    kind: first!.kind,
    ids: first!.ops.map((op) => op.id),
    all: result.anomalies.map((a) => a.kind),
    text: describeSmallest(result),
  };
}

describe('history checker: correct histories pass', () => {
  test('sequential appends and reads', () => {
    const a = append('a', 0, 1);
    const b = append('b', 2, 3);
    const history = [a, read(['a'], 1.5, 1.8), b, read(['a', 'b'], 4, 5)];
    const result = checkHistory(history, ['a', 'b']);
    assert.deepEqual(result.anomalies, []);
    assert.equal(result.valid, true);
    assert.deepEqual(result.counts.appends, { ok: 2, failed: 0, unknown: 0 });
  });

  test('overlapping appends in either order; a concurrent read may or may not see them', () => {
    const history = [append('a', 0, 10), append('b', 1, 5), read([], 2, 3), read(['b'], 4, 6), read(['b', 'a'], 11, 12)];
    assert.equal(checkHistory(history, ['b', 'a']).valid, true);
  });

  test('unknown appends may be present once or absent; failed ones are absent', () => {
    const history = [
      append('a', 0, 1),
      append('u1', 2, 100, 'unknown'),
      append('u2', 2, 100, 'unknown'),
      append('f', 3, 4, 'failed'),
      append('b', 5, 6),
    ];
    const result = checkHistory(history, ['a', 'b', 'u1']);
    assert.equal(result.valid, true);
    assert.equal(result.counts.unknownApplied, 1);
  });

  test('an unknown append may land after appends that started later (its end is when we gave up)', () => {
    assert.equal(checkHistory([append('u', 0, 5, 'unknown'), append('b', 6, 7)], ['b', 'u']).valid, true);
  });

  test('failed and unknown reads are not checked', () => {
    assert.equal(checkHistory([append('a', 0, 1), read(undefined, 2, 3, 'failed'), read(undefined, 2, 3, 'unknown')], ['a']).valid, true);
  });
});

describe('history checker: broken histories fail with the smallest witness', () => {
  test('a lost acknowledged append', () => {
    const lost = append('b', 2, 3);
    const found = smallest([append('a', 0, 1), lost, append('c', 4, 5)], ['a', 'c']);
    assert.equal(found.kind, 'lost');
    assert.deepEqual(found.ids, [lost.id]);
    assert.match(found.text, /acknowledged append "b" is missing/);
  });

  test('an element appearing twice', () => {
    const twice = append('a', 0, 1);
    const found = smallest([twice, append('b', 2, 3)], ['a', 'b', 'a']);
    assert.equal(found.kind, 'duplicate');
    assert.deepEqual(found.ids, [twice.id]);
  });

  test('an unknown append applied twice', () => {
    assert.equal(smallest([append('u', 0, 9, 'unknown')], ['u', 'u']).kind, 'duplicate');
  });

  test('an element nobody appended', () => {
    assert.equal(smallest([append('a', 0, 1)], ['a', 'zz']).kind, 'phantom');
  });

  test('a failed append that was applied anyway', () => {
    const failed = append('f', 0, 1, 'failed');
    const found = smallest([failed], ['f']);
    assert.equal(found.kind, 'failed-applied');
    assert.deepEqual(found.ids, [failed.id]);
  });

  test('out-of-real-time order: a completed before b started, yet b comes first', () => {
    const a = append('a', 0, 1);
    const b = append('b', 2, 3);
    const found = smallest([append('x', 0, 0.5), a, b, append('y', 4, 5)], ['x', 'b', 'a', 'y']);
    assert.equal(found.kind, 'real-time-order');
    assert.deepEqual(found.ids.sort(), [a.id, b.id].sort());
  });

  test('out-of-real-time order against an unknown append that started after an acknowledged one completed', () => {
    const a = append('a', 0, 1);
    const u = append('u', 2, 50, 'unknown');
    const found = smallest([a, u], ['u', 'a']);
    assert.equal(found.kind, 'real-time-order');
    assert.deepEqual(found.ids.sort(), [a.id, u.id].sort());
  });

  test('a stale read: an append acknowledged before the read started is missing', () => {
    const a = append('a', 0, 1);
    const b = append('b', 2, 3);
    const stale = read(['a'], 4, 5);
    const found = smallest([a, b, stale], ['a', 'b']);
    assert.equal(found.kind, 'stale-read');
    assert.deepEqual(found.ids, [b.id, stale.id]);
  });

  test('a non-prefix read: right elements, wrong order', () => {
    const bad = read(['b', 'a'], 4, 5);
    const found = smallest([append('a', 0, 1), append('b', 2, 3), bad], ['a', 'b']);
    assert.equal(found.kind, 'non-prefix');
    assert.equal(found.ids[0], bad.id);
    assert.ok(found.ids.length <= 2);
  });

  test('a non-prefix read: a gap (saw b without a)', () => {
    assert.equal(smallest([append('a', 0, 10), append('b', 0, 10), read(['b'], 1, 2)], ['a', 'b']).kind, 'non-prefix');
  });

  test('a read of an element that is not in the final list (an unknown append seen, then gone)', () => {
    assert.equal(smallest([append('a', 0, 1), append('u', 2, 9, 'unknown'), read(['a', 'u'], 3, 4)], ['a']).kind, 'non-prefix');
  });

  test('a read from the future: it saw an append that started after it ended', () => {
    const r = read(['a'], 0, 1);
    const a = append('a', 2, 3);
    const found = smallest([r, a], ['a']);
    assert.equal(found.kind, 'future-read');
    assert.deepEqual(found.ids, [r.id, a.id]);
  });

  test('a read that went back: shorter than a read completed before it started', () => {
    const u = append('u', 0, 50, 'unknown');
    const first = read(['u'], 1, 2);
    const second = read([], 3, 4);
    const found = smallest([u, first, second], ['u']);
    assert.equal(found.kind, 'read-went-back');
    assert.deepEqual(found.ids, [first.id, second.id]);
  });

  test('the smallest witness comes first when there are several anomalies', () => {
    const found = smallest([append('a', 0, 1), append('b', 2, 3), read(['a'], 4, 5)], ['b']);
    assert.equal(found.kind, 'lost');
    assert.ok(found.all.includes('non-prefix'));
  });

  test('the workload must use unique elements', () => {
    assert.throws(() => checkHistory([append('a', 0, 1), append('a', 2, 3)], ['a']), /appended twice by the workload/);
  });
});
