/**
 * The history checker under faults, briefly (issue 13, item 4; `npm run chaos`
 * runs it at length): for every configuration, a few seconds of clients
 * appending to and reading one session's list across app processes while a
 * seeded schedule pauses a lock holder past its lease, kills a process,
 * restarts Redis (AOF) or PostgreSQL and delays, black-holes and cuts connections. The
 * history must have no anomaly, and the run must really have injected faults
 * and acknowledged appends (a run that did nothing proves nothing).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CONFIGS } from './backends.js';
import { FAULTS, faultCount, runHistory, type FaultKind } from './workload.js';

const SEED = 13;
const SECONDS = 2;

describe('history under faults: no acknowledged append lost, none duplicated, real-time order, no stale read', () => {
  for (const config of CONFIGS) {
    test(config, async (t) => {
      const report = await runHistory({ config, seconds: SECONDS, seed: SEED, faultEveryMs: 300, everyFault: true });
      if ('skip' in report) {
        t.skip(report.skip);
        return;
      }
      const { counts } = report.result;
      t.diagnostic(
        `${config}: ${counts.ops} ops (appends ${counts.appends.ok} ok, ${report.handoffs} of them by lease handoff, ${report.carried} carried by a group-commit batch, ${report.masterWrites} master writes, ${counts.appends.unknown} unknown, ${counts.appends.failed} failed; ${counts.reads.ok} reads), ${faultCount(report)} faults: ${report.faultLog.map((l) => l.trim()).join('; ')}`,
      );
      assert.equal(report.counterexample, '', `anomaly (seed ${SEED}, config ${config})`);
      assert.ok(report.result.valid);
      const expected: readonly FaultKind[] =
        config === 'memory'
          ? ['pause', 'delay', 'partition', 'cut']
          : config === 'redis-cluster'
            ? ['pause', 'kill', 'delay', 'partition', 'cut']
            : FAULTS;
      for (const kind of expected) assert.ok(report.faults[kind] >= 1, `a ${kind} fault was injected`);
      assert.ok(report.pausedHolders >= 1, 'a pause caught a process holding the lock');
      assert.ok(counts.appends.ok > 10, `appends were acknowledged: ${counts.appends.ok}`);
      assert.ok(counts.reads.ok > 0, `reads were answered: ${counts.reads.ok}`);
      assert.equal(
        counts.finalLength,
        counts.appends.ok + counts.unknownApplied,
        'the final list holds exactly the acknowledged appends and the unknown ones that landed',
      );
    });
  }
});

describe('history under faults: the workload and checker catch a real lost update', () => {
  test('an app that appends to the list read by get() before its scope (not under the lock) is caught losing acknowledged appends', async () => {
    const report = await runHistory({ config: 'memory', seconds: 1, seed: SEED, unsafeAppend: true });
    assert.ok(!('skip' in report));
    assert.equal(report.result.valid, false, 'the broken app must be caught');
    const kinds = new Set(report.result.anomalies.map((a) => a.kind));
    assert.ok(kinds.has('lost'), `lost appends found (found: ${[...kinds].join(', ')})`);
    assert.match(report.counterexample, /^(lost|phantom|duplicate|failed-applied): /, 'the smallest counterexample is a single operation');
  });
});
