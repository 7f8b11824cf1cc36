/**
 * The lock-wait columns of the hot-session rows: from the per-process lock
 * waits of each round (`Measurement.lockWaits`, recorded in the app by
 * `lib/lock-waits.ts`) to the worst round's numbers and their text.
 *
 * The worst round (the one whose slowest process waited longest) is shown,
 * not a median: the column is there to catch starvation, which a median over
 * rounds would smooth away. Per process, so one starved process among
 * well-served ones shows as one long maximum among short ones.
 */
import type { LockWaits } from './types.js';

/** The per-process waits of the round whose longest wait is the longest (undefined: none recorded). */
export function worstLockWaits(rounds: readonly { lockWaits?: LockWaits[] }[]): LockWaits[] | undefined {
  let worst: LockWaits[] | undefined;
  for (const { lockWaits } of rounds) {
    if (!lockWaits?.length) continue;
    if (!worst || longestWait(lockWaits) > longestWait(worst)) worst = lockWaits;
  }
  return worst;
}

/** The longest wait of any process, ms. */
export function longestWait(waits: readonly LockWaits[]): number {
  return Math.max(...waits.map((w) => w.maxMs));
}

/** The largest per-process p99, ms. */
export function worstP99(waits: readonly LockWaits[]): number {
  return Math.max(...waits.map((w) => w.p99Ms));
}

const msText = (x: number): string => (x < 1 ? x.toFixed(2) : x < 10 ? x.toFixed(1) : Math.round(x).toLocaleString('en-US'));

/** `812` for one process; `812 (812 · 140 · 130 · 120)` for several (each process' longest, longest first); timeouts appended. */
export function formatLongestWait(waits: readonly LockWaits[] | undefined): string {
  if (!waits?.length) return '—';
  const perProcess = waits.map((w) => w.maxMs).sort((a, b) => b - a);
  const timeouts = waits.reduce((n, w) => n + w.timeouts, 0);
  const split = waits.length > 1 ? ` (${perProcess.map(msText).join(' · ')})` : '';
  return `${msText(perProcess[0]!)}${split}${timeouts ? `, ${timeouts} timeout${timeouts > 1 ? 's' : ''}` : ''}`;
}

/** The largest per-process p99, ms. */
export function formatWaitP99(waits: readonly LockWaits[] | undefined): string {
  return waits?.length ? msText(worstP99(waits)) : '—';
}

/** Lock acquisitions of each process in the worst round, in the order of {@link formatLongestWait} (an uneven share is starvation too). */
export function formatAcquisitions(waits: readonly LockWaits[] | undefined): string {
  if (!waits?.length) return '—';
  return [...waits]
    .sort((a, b) => b.maxMs - a.maxMs)
    .map((w) => w.count.toLocaleString('en-US'))
    .join(' · ');
}
