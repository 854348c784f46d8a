// Just enough of tqdm 4.70 to print what it prints when piped: the meter format, the 10-character
// bar (or the full width with COLUMNS), EMA-smoothed rates, nested bars at position 1 (moved down
// with '\n', back up with ESC[A), and the padding that covers a longer previous refresh.
import { pyFixed, pyRound0 } from './python.js';

const UTF_CHARSET = ' ▏▎▍▌▋▊▉█';
const ASCII_CHARSET = ' 123456789#';

export interface BarOptions {
  desc?: string;
  total: number;
  initial?: number;
  /** 0 for a top-level bar; 1 for a bar shown below an open one (ai-toolkit's sampling bar). */
  position?: number;
  /** Line width (tqdm's ncols); null for the 10-character bar of a pipe. */
  ncols?: number | null;
  ascii?: boolean;
  /** Seconds; a simulated clock lets dataset bars show plausible rates without waiting. */
  clock: () => number;
  write: (text: string) => void;
}

/** tqdm's EMA with bias correction (smoothing 0.3). */
class Ema {
  private last = 0;
  calls = 0;
  push(x: number): void {
    this.last = 0.3 * x + 0.7 * this.last;
    this.calls++;
  }
  value(): number {
    return this.calls === 0 ? this.last : this.last / (1 - 0.7 ** this.calls);
  }
}

export class TqdmBar {
  n: number;
  private readonly initial: number;
  private readonly startT: number;
  private lastPrintN: number;
  private lastPrintT: number;
  private readonly emaDn = new Ema();
  private readonly emaDt = new Ema();
  private postfix = '';
  private lastLen = 0;

  constructor(private readonly o: BarOptions) {
    this.initial = o.initial ?? 0;
    this.n = this.initial;
    this.startT = o.clock();
    this.lastPrintN = this.n;
    this.lastPrintT = this.startT;
    this.display(this.format(false));
  }

  /** set_postfix_str: always redraws. */
  setPostfixStr(postfix: string): void {
    this.postfix = postfix;
    this.display(this.format(false));
  }

  /**
   * n += dn. `print: false` is tqdm's throttled (or, in ai-toolkit after a save or sample, skipped)
   * refresh: nothing is drawn and the rate is not updated until the next printed update.
   */
  update(dn = 1, print = true): void {
    this.n += dn;
    if (!print) return;
    const now = this.o.clock();
    const dt = now - this.lastPrintT;
    const steps = this.n - this.lastPrintN;
    if (dt > 0 && steps > 0) {
      this.emaDn.push(steps);
      this.emaDt.push(dt);
    }
    this.display(this.format(false));
    this.lastPrintN = this.n;
    this.lastPrintT = now;
  }

  /** leave: redraw with the overall average rate and end the line; otherwise erase the bar. */
  close(leave: boolean): void {
    if (leave) {
      this.display(this.format(true));
      this.o.write('\n');
      return;
    }
    this.display('');
    if (!this.o.position) this.o.write('\r');
  }

  private display(text: string): void {
    const pos = this.o.position ?? 0;
    const len = [...text].length;
    let out = pos > 0 ? '\n'.repeat(pos) : '';
    out += '\r' + text + ' '.repeat(Math.max(this.lastLen - len, 0));
    if (pos > 0) out += '\x1b[A'.repeat(pos);
    this.lastLen = len;
    this.o.write(out);
  }

  private format(averageRate: boolean): string {
    const { total, desc } = this.o;
    const n = this.n;
    const elapsed = Math.max(0, this.o.clock() - this.startT);
    let rate: number | null = null;
    if (!averageRate && this.emaDt.calls > 0 && this.emaDt.value() > 0) rate = this.emaDn.value() / this.emaDt.value();
    if (rate === null && elapsed > 0) rate = (n - this.initial) / elapsed;
    const known = rate !== null && rate > 0 && Number.isFinite(rate);

    let rateText = '?it/s';
    if (known) rateText = 1 / rate! > 1 ? `${pyFixed(1 / rate!, 2, 5)}s/it` : `${pyFixed(rate!, 2, 5)}it/s`;
    const remaining = known && total ? (total - n) / rate! : 0;
    const remainingText = known ? formatInterval(remaining) : '?';

    const frac = total > 0 ? n / total : 0;
    const left = `${desc ? `${desc}: ` : ''}${pyRound0(frac * 100, 3)}%|`;
    const right = `| ${n}/${total} [${formatInterval(elapsed)}<${remainingText}, ${rateText}${this.postfix ? `, ${this.postfix}` : ''}]`;
    const width = this.o.ncols ? Math.max(1, this.o.ncols - [...left].length - [...right].length) : 10;
    return left + drawBar(frac, width, this.o.ascii ?? false) + right;
  }
}

/** tqdm's Bar: whole cells, then one partial cell, then blanks. */
export function drawBar(frac: number, width: number, ascii: boolean): string {
  const charset = ascii ? ASCII_CHARSET : UTF_CHARSET;
  const symbols = [...charset];
  const nsyms = symbols.length - 1;
  const clamped = Math.max(0, Math.min(1, frac));
  const units = Math.floor(clamped * width * nsyms);
  const full = Math.floor(units / nsyms);
  const partial = units % nsyms;
  let bar = symbols[nsyms]!.repeat(full);
  if (full < width) bar += symbols[partial]! + symbols[0]!.repeat(width - full - 1);
  return bar;
}

/** tqdm.format_interval: "mm:ss", or "h:mm:ss" from an hour on. */
export function formatInterval(seconds: number): string {
  const t = Math.floor(seconds);
  const s = t % 60;
  const mins = Math.floor(t / 60);
  const h = Math.floor(mins / 60);
  const m = mins % 60;
  const two = (v: number) => String(v).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
}
