/**
 * A checker for histories of one list in one session (issue 13, item 4): clients
 * append unique elements under the lock and read the list with `get()`; every
 * operation is recorded with its start and end (one monotonic clock, in the
 * driver), its status and, for reads, the list it saw. After the faults stop and
 * everything recovered, the final list is read once.
 *
 * The history is correct only if:
 * - every acknowledged (`ok`) append appears in the final list exactly once;
 * - nothing appears twice, nothing appears that nobody appended, an `unknown`
 *   append (timed out, connection cut: it may or may not have happened) appears
 *   at most once, and a `failed` one (the server said it wrote nothing) never;
 * - the list order agrees with real time: an append that completed before
 *   another started comes first;
 * - every read returns a prefix of the final list that contains every append
 *   completed before the read started, nothing appended after the read ended,
 *   and at least what any read completed before it started returned.
 *
 * A violation is reported with the SMALLEST part of the history that shows it
 * (one append, a pair of appends, a read and one append, a pair of reads), so a
 * failure reads as a counterexample rather than a dump. Pure: no I/O.
 */

/** `ok`: acknowledged; `failed`: the server said nothing was written; `unknown`: it may or may not have been. */
export type Status = 'ok' | 'failed' | 'unknown';

interface OpBase {
  /** Unique, in issue order. */
  readonly id: number;
  /** Which client loop issued it, and which app process served it (for messages). */
  readonly client: number;
  readonly worker: number;
  /** Monotonic ms, one clock for the whole history. For an `unknown` op `end` is when we gave up. */
  readonly start: number;
  readonly end: number;
  readonly status: Status;
  /** The error or HTTP status, for messages. */
  readonly note?: string;
}

/** `withLock(s => { s.list = [...(s.list ?? []), element] })`. */
export interface AppendOp extends OpBase {
  readonly kind: 'append';
  readonly element: string;
}

/** `get()`: `result` is the list it saw (only for `ok`). */
export interface ReadOp extends OpBase {
  readonly kind: 'read';
  readonly result?: readonly string[];
}

export type Op = AppendOp | ReadOp;

export type AnomalyKind =
  | 'lost' // an acknowledged append is missing from the final list
  | 'duplicate' // an element appears twice in the final list
  | 'phantom' // an element nobody appended
  | 'failed-applied' // an append the server refused is in the list
  | 'real-time-order' // A completed before B started, yet B comes first
  | 'non-prefix' // a read that is not a prefix of the final list
  | 'stale-read' // a read missing an append completed before it started
  | 'future-read' // a read containing an append that started after it ended
  | 'read-went-back'; // a read shorter than one completed before it started

export interface Anomaly {
  readonly kind: AnomalyKind;
  readonly message: string;
  /** The smallest part of the history that shows the anomaly (the final list is implied). */
  readonly ops: readonly Op[];
}

export interface CheckResult {
  readonly valid: boolean;
  readonly counts: {
    readonly ops: number;
    readonly appends: { readonly ok: number; readonly failed: number; readonly unknown: number };
    readonly reads: { readonly ok: number; readonly failed: number; readonly unknown: number };
    /** Unknown appends that turned out to have happened. */
    readonly unknownApplied: number;
    readonly finalLength: number;
  };
  /** Every anomaly, smallest witness first. */
  readonly anomalies: readonly Anomaly[];
}

/** Check `history` against `final`, the list read after recovery. */
export function checkHistory(history: readonly Op[], final: readonly string[]): CheckResult {
  const anomalies: Anomaly[] = [];
  const appends = history.filter((op): op is AppendOp => op.kind === 'append');
  const reads = history.filter((op): op is ReadOp => op.kind === 'read');
  const byElement = new Map<string, AppendOp>();
  for (const op of appends) {
    if (byElement.has(op.element))
      throw new TypeError(`checkHistory: element ${JSON.stringify(op.element)} appended twice by the workload; elements must be unique`);
    byElement.set(op.element, op);
  }

  // Where each element sits in the final list (first occurrence), and duplicates.
  const position = new Map<string, number>();
  final.forEach((element, index) => {
    const append = byElement.get(element);
    if (position.has(element)) {
      // Reported once per element, on its second occurrence.
      if (final.indexOf(element, position.get(element)! + 1) === index) {
        anomalies.push({
          kind: 'duplicate',
          message: `${show(element)} appears at positions ${position.get(element)} and ${index} of the final list`,
          ops: append ? [append] : [],
        });
      }
      return;
    }
    position.set(element, index);
    if (!append)
      anomalies.push({ kind: 'phantom', message: `${show(element)} at position ${index} of the final list was never appended`, ops: [] });
    else if (append.status === 'failed')
      anomalies.push({
        kind: 'failed-applied',
        message: `${show(element)} is at position ${index} although its append failed (${append.note ?? 'refused'})`,
        ops: [append],
      });
  });
  for (const op of appends) {
    if (op.status === 'ok' && !position.has(op.element)) {
      anomalies.push({
        kind: 'lost',
        message: `acknowledged append ${show(op.element)} is missing from the final list (${final.length} elements)`,
        ops: [op],
      });
    }
  }

  // Real-time order: walking the final list backwards, keep the acknowledged
  // append with the earliest end seen so far (it sits later in the list); an
  // element that started after that end sits too early.
  let earliest: AppendOp | undefined;
  for (let index = final.length - 1; index >= 0; index--) {
    const op = byElement.get(final[index]!);
    if (!op || position.get(op.element) !== index) continue;
    if (earliest && earliest.end < op.start) {
      anomalies.push({
        kind: 'real-time-order',
        message: `${show(earliest.element)} (position ${position.get(earliest.element)}) completed before ${show(op.element)} (position ${index}) started, yet comes after it`,
        ops: [earliest, op],
      });
    }
    if (op.status === 'ok' && (!earliest || op.end < earliest.end)) earliest = op;
  }

  // Reads. Acknowledged appends sorted by end, with the furthest final position
  // among those that ended so far: a read must reach past it.
  const acked = appends.filter((op) => op.status === 'ok' && position.has(op.element)).sort((a, b) => a.end - b.end);
  const furthest: AppendOp[] = [];
  for (const op of acked) {
    const previous = furthest.at(-1);
    furthest.push(previous && position.get(previous.element)! > position.get(op.element)! ? previous : op);
  }
  const okReads = reads.filter((op) => op.status === 'ok' && op.result);
  for (const read of okReads) {
    const result = read.result!;
    const mismatch = result.findIndex((element, index) => final[index] !== element);
    if (mismatch !== -1 || result.length > final.length) {
      const at = mismatch === -1 ? final.length : mismatch;
      const append = byElement.get(result[at]!);
      anomalies.push({
        kind: 'non-prefix',
        message: `read #${read.id} is not a prefix of the final list: at position ${at} it saw ${show(result[at])}, the final list has ${show(final[at])}`,
        ops: append ? [read, append] : [read],
      });
      continue;
    }
    const ended = lastBefore(acked, read.start);
    if (ended >= 0) {
      const needed = furthest[ended]!;
      if (position.get(needed.element)! >= result.length) {
        anomalies.push({
          kind: 'stale-read',
          message: `read #${read.id} saw ${result.length} elements, missing ${show(needed.element)} (position ${position.get(needed.element)}), acknowledged before the read started`,
          ops: [needed, read],
        });
      }
    }
    const future = result.map((element) => byElement.get(element)).find((op) => op && op.start > read.end);
    if (future) {
      anomalies.push({
        kind: 'future-read',
        message: `read #${read.id} saw ${show(future.element)}, whose append started after the read ended`,
        ops: [read, future],
      });
    }
  }
  // A read never returns less than a read that completed before it started.
  const byEnd = [...okReads].sort((a, b) => a.end - b.end);
  const longest: ReadOp[] = [];
  for (const read of byEnd) {
    const previous = longest.at(-1);
    longest.push(previous && previous.result!.length >= read.result!.length ? previous : read);
  }
  for (const read of okReads) {
    const index = lastBefore(byEnd, read.start);
    const before = index >= 0 ? longest[index]! : undefined;
    if (before && before.result!.length > read.result!.length) {
      anomalies.push({
        kind: 'read-went-back',
        message: `read #${read.id} saw ${read.result!.length} elements after read #${before.id} (completed before it started) saw ${before.result!.length}`,
        ops: [before, read],
      });
    }
  }

  anomalies.sort((a, b) => a.ops.length - b.ops.length);
  const tally = (ops: readonly Op[]) => ({
    ok: ops.filter((op) => op.status === 'ok').length,
    failed: ops.filter((op) => op.status === 'failed').length,
    unknown: ops.filter((op) => op.status === 'unknown').length,
  });
  return {
    valid: anomalies.length === 0,
    counts: {
      ops: history.length,
      appends: tally(appends),
      reads: tally(reads),
      unknownApplied: appends.filter((op) => op.status === 'unknown' && position.has(op.element)).length,
      finalLength: final.length,
    },
    anomalies,
  };
}

/** Index of the last op in `sorted` (by end) that ended strictly before `time`, or -1. */
function lastBefore(sorted: readonly Op[], time: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (sorted[mid]!.end < time) low = mid + 1;
    else high = mid;
  }
  return low - 1;
}

function show(element: string | undefined): string {
  return element === undefined ? '(nothing)' : JSON.stringify(element);
}

/** One op as a line of a counterexample: times in ms relative to `origin`. */
export function formatOp(op: Op, origin = 0): string {
  const span = `[${(op.start - origin).toFixed(1)} → ${(op.end - origin).toFixed(1)} ms]`;
  const what =
    op.kind === 'append'
      ? `append ${show(op.element)}`
      : `read${op.result ? ` → ${op.result.length} elements [${op.result.slice(-3).map(show).join(', ')}${op.result.length > 3 ? ', …' : ''}]` : ''}`;
  return `#${op.id} client ${op.client} worker ${op.worker} ${span} ${what}: ${op.status}${op.note ? ` (${op.note})` : ''}`;
}

/** The smallest anomaly of a result as a readable counterexample, or '' when valid. */
export function describeSmallest(result: CheckResult, origin = 0): string {
  const anomaly = result.anomalies[0];
  if (!anomaly) return '';
  const more =
    result.anomalies.length > 1
      ? `\n(${result.anomalies.length - 1} more anomalies: ${[...new Set(result.anomalies.slice(1).map((a) => a.kind))].join(', ')})`
      : '';
  return `${anomaly.kind}: ${anomaly.message}\n${anomaly.ops.map((op) => `  ${formatOp(op, origin)}`).join('\n')}${more}`;
}
