/**
 * A progress bar on stderr (stdout keeps the table clean): redrawn in place on
 * a terminal, one line per step otherwise (CI logs, the smoke test).
 */
export class Progress {
  readonly #total: number;
  readonly #tty: boolean;
  readonly #stream: NodeJS.WriteStream;
  readonly #started = Date.now();
  #doneWeight = 0;
  #stepStart = Date.now();
  #stepWeight = 0;
  #label = '';
  #step = 0;
  #steps: number;
  #timer: NodeJS.Timeout | undefined;

  /** `total`: the sum of the weights (expected seconds) of all steps. */
  constructor(steps: number, total: number, stream: NodeJS.WriteStream = process.stderr) {
    this.#steps = steps;
    this.#total = Math.max(total, 1e-9);
    this.#stream = stream;
    this.#tty = Boolean(stream.isTTY) && !process.env.CI;
    if (this.#tty) this.#timer = setInterval(() => this.#draw(), 250).unref();
  }

  /** A step of `weight` expected seconds begins. */
  begin(label: string, weight: number): void {
    this.#step++;
    this.#label = label;
    this.#stepWeight = weight;
    this.#stepStart = Date.now();
    if (this.#tty) this.#draw();
    else this.#stream.write(`[${String(this.#step).padStart(String(this.#steps).length)}/${this.#steps}] ${label}\n`);
  }

  end(): void {
    this.#doneWeight += this.#stepWeight;
    this.#stepWeight = 0;
    if (this.#tty) this.#draw();
  }

  /** A message above the bar. */
  log(line: string): void {
    if (this.#tty) this.#stream.write(`\r\x1b[2K${line}\n`);
    else this.#stream.write(`${line}\n`);
    if (this.#tty) this.#draw();
  }

  finish(): void {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#tty) this.#stream.write('\r\x1b[2K');
  }

  #draw(): void {
    const inStep = Math.min(this.#stepWeight, (Date.now() - this.#stepStart) / 1000);
    const fraction = Math.min(1, (this.#doneWeight + inStep) / this.#total);
    const width = 28;
    const filled = Math.round(fraction * width);
    const elapsed = (Date.now() - this.#started) / 1000;
    const eta = fraction > 0.02 ? (elapsed / fraction) * (1 - fraction) : NaN;
    const columns = this.#stream.columns ?? 100;
    const line =
      `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ` +
      `${this.#step}/${this.#steps} ${fmt(elapsed)}${Number.isFinite(eta) ? ` ETA ${fmt(eta)}` : ''}  ${this.#label}`;
    this.#stream.write(`\r\x1b[2K${line.slice(0, columns - 1)}`);
  }
}

function fmt(seconds: number): string {
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
