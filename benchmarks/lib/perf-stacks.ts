/**
 * Shares of `perf script` samples (call stacks recorded with `perf record -g`)
 * by where they landed, for the wire-cost probe: how much of the app's CPU is
 * the kernel waking the load generator when a response is written.
 *
 * On a VM without a hardware PMU, perf samples with `cpu-clock`, a timer that
 * cannot fire while interrupts are off: the time of an interrupts-off region
 * (a wake-up holding the run-queue lock, sending the IPI) is charged to where
 * interrupts come back on, `_raw_spin_unlock_irqrestore`. So that symbol's
 * share under `sock_def_readable` is the cost of the whole wake-up, not of
 * one unlock instruction.
 */

export interface StackShares {
  /** Samples in the recording. */
  samples: number;
  /** Leaf frame `_raw_spin_unlock_irqrestore` with `sock_def_readable` below it: waking the reader of the socket. */
  wakeUnlock: number;
  /** `sock_def_readable` anywhere on the stack: every sample of telling the reader data arrived. */
  sockReadable: number;
  /** `writev` anywhere on the stack (the response's system call, loopback delivery included). */
  writev: number;
  /** Leaf frame in the kernel (a kernel address). */
  kernel: number;
}

/** One sample: its frames (symbol names, leaf first) and whether the leaf is kernel code. */
export interface PerfSample {
  frames: string[];
  kernelLeaf: boolean;
}

/** The samples of `perf script` text (a header line per sample, then one indented line per frame). */
export function parsePerfScript(text: string): PerfSample[] {
  const samples: PerfSample[] = [];
  let current: PerfSample | undefined;
  const flush = (): void => {
    if (current) samples.push(current);
    current = undefined;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      flush();
    } else if (/^\s/.test(line)) {
      // A frame: "\t ffffffff8123abcd sym+0x1f (dso)"; the address stands in when there is no symbol.
      const [address = '', symbol = ''] = line.trim().split(/\s+/);
      const name = symbol.replace(/\+0x[0-9a-f]+$/, '');
      if (!current) continue;
      if (current.frames.length === 0) current.kernelLeaf = /^f{8}/.test(address) && address.length === 16;
      current.frames.push(name && name !== '[unknown]' ? name : `0x${address}`);
    } else {
      // A header line ("comm pid/tid event:"): a new sample.
      flush();
      current = { frames: [], kernelLeaf: false };
    }
  }
  flush();
  return samples;
}

/** Count the samples by where they landed (see {@link StackShares}). */
export function stackShares(samples: readonly PerfSample[]): StackShares {
  const shares: StackShares = { samples: samples.length, wakeUnlock: 0, sockReadable: 0, writev: 0, kernel: 0 };
  for (const { frames, kernelLeaf } of samples) {
    const readable = frames.includes('sock_def_readable');
    if (readable) shares.sockReadable++;
    if (readable && frames[0] === '_raw_spin_unlock_irqrestore') shares.wakeUnlock++;
    if (frames.some((f) => f === 'do_writev' || f.endsWith('_sys_writev'))) shares.writev++;
    if (kernelLeaf) shares.kernel++;
  }
  return shares;
}
