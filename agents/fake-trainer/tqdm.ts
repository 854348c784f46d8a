// Just enough of tqdm 4.70 to print what it prints when piped: the meter format, the 10-character
// bar (or a fixed width, cut at that width like tqdm's disp_trim), EMA-smoothed rates, nested bars
// at position 1 (moved down with '\n', back up with ESC[A), the padding that covers a longer
// previous refresh, and the throttle of update(): a refresh only once `miniters` iterations and
// `mininterval` seconds have passed since the last one (set_postfix_str always refreshes).
//
// ToolkitBar adds what ai-toolkit's ToolkitProgressBar (toolkit/progress_bar.py) does on top:
// smoothing 0.7, and pause/unpause around saves and samples. unpause() restarts the throttle's
// clock, so the update() right after a save or a sample draws nothing.
import { pyFixed, pyRound0 } from './python.js';

const UTF_CHARSET = ' ▏▎▍▌▋▊▉█';
const ASCII_CHARSET = ' 123456789#';

export interface BarOptions {
  desc?: string;
  total: number;
  initial?: number;
  /** 0 for a top-level bar; 1 for a bar shown below an open one (ai-toolkit's sampling bar). */
  position?: number;
  /** Line width (tqdm's ncols): the bar fills it and longer lines are cut; null for the 10-character bar of a pipe. */
  ncols?: number | null;
  ascii?: boolean;
  /** tqdm's EMA weight of the newest rate sample (default 0.3). */
  smoothing?: number;
  /** Seconds; a simulated clock gives plausible rates without waiting. */
  clock: () => number;
  write: (text: string) => void;
}

const MININTERVAL = 0.1;
const MAXINTERVAL = 10;

/** tqdm's EMA with bias correction. */
class Ema {
  private last = 0;
  private calls = 0;
  constructor(private readonly alpha: number) {}
  push(x: number): void {
    this.last = this.alpha * x + (1 - this.alpha) * this.last;
    this.calls++;
  }
  value(): number {
    return this.calls === 0 ? this.last : this.last / (1 - (1 - this.alpha) ** this.calls);
  }
}

export class TqdmBar {
  n: number;
  private readonly initial: number;
  protected startT: number;
  private lastPrintN: number;
  protected lastPrintT: number;
  private miniters = 0;
  private readonly emaDn: Ema;
  private readonly emaDt: Ema;
  private readonly emaMiniters: Ema;
  private averageRate = false;
  private postfix = '';
  private lastLen = 0;

  constructor(protected readonly o: BarOptions) {
    const smoothing = o.smoothing ?? 0.3;
    this.emaDn = new Ema(smoothing);
    this.emaDt = new Ema(smoothing);
    this.emaMiniters = new Ema(smoothing);
    this.initial = o.initial ?? 0;
    this.n = this.initial;
    this.startT = o.clock();
    this.lastPrintN = this.n;
    this.lastPrintT = this.startT;
    this.display(this.format());
  }

  /** set_postfix_str: never throttled. */
  setPostfixStr(postfix: string): void {
    this.postfix = postfix;
    this.display(this.format());
  }

  /** n += dn, and a refresh unless the throttle holds it back. Returns whether it drew. */
  update(dn = 1): boolean {
    this.n += dn;
    if (this.n - this.lastPrintN < this.miniters) return false;
    const now = this.o.clock();
    const dt = now - this.lastPrintT;
    if (dt < MININTERVAL) return false;
    const steps = this.n - this.lastPrintN;
    if (dt > 0 && steps > 0) {
      this.emaDn.push(steps);
      this.emaDt.push(dt);
    }
    this.display(this.format());
    // Dynamic miniters: how many iterations the next refresh waits for.
    if (dt >= MAXINTERVAL) this.miniters = (steps * MININTERVAL) / dt;
    else {
      this.emaMiniters.push(steps * (MININTERVAL / dt));
      this.miniters = this.emaMiniters.value();
    }
    this.lastPrintN = this.n;
    this.lastPrintT = now;
    return true;
  }

  /** leave: redraw with the overall average rate and end the line; otherwise erase the bar. */
  close(leave: boolean): void {
    if (leave) {
      this.averageRate = true;
      this.display(this.format());
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

  private format(): string {
    const { total, desc, ncols } = this.o;
    const n = this.n;
    const elapsed = Math.max(0, this.o.clock() - this.startT);
    let rate: number | null = null;
    if (!this.averageRate && this.emaDt.value() > 0) rate = this.emaDn.value() / this.emaDt.value();
    if (rate === null && elapsed > 0) rate = (n - this.initial) / elapsed;
    const known = rate !== null && rate !== 0 && Number.isFinite(rate);

    let rateText = '?it/s';
    if (known) rateText = 1 / rate! > 1 ? `${pyFixed(1 / rate!, 2, 5)}s/it` : `${pyFixed(rate!, 2, 5)}it/s`;
    const remaining = known && total ? (total - n) / rate! : 0;
    const remainingText = known ? formatInterval(remaining) : '?';

    const frac = total > 0 ? n / total : 0;
    const left = `${desc ? `${desc}: ` : ''}${pyRound0(frac * 100, 3)}%|`;
    const right = `| ${n}/${total} [${formatInterval(elapsed)}<${remainingText}, ${rateText}${this.postfix ? `, ${this.postfix}` : ''}]`;
    if (!ncols) return left + drawBar(frac, 10, this.o.ascii ?? false) + right;
    const line = left + drawBar(frac, Math.max(1, ncols - [...left].length - [...right].length), this.o.ascii ?? false) + right;
    const chars = [...line];
    return chars.length > ncols ? chars.slice(0, ncols).join('') : line;
  }
}

/** ai-toolkit's ToolkitProgressBar: smoothing 0.7; update() does nothing while paused. */
export class ToolkitBar extends TqdmBar {
  private paused = false;
  private lastTime: number;

  constructor(o: BarOptions) {
    super({ smoothing: 0.7, ...o });
    this.lastTime = o.clock();
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.lastTime = this.o.clock();
  }

  /** The paused time is taken out of the elapsed time, and the throttle starts counting afresh. */
  unpause(): void {
    if (!this.paused) return;
    this.paused = false;
    const now = this.o.clock();
    this.startT += now - this.lastTime;
    this.lastPrintT = now;
  }

  override update(dn = 1): boolean {
    return this.paused ? false : super.update(dn);
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
