// One progress line per folder on stderr: redrawn in place on a terminal, else printed once when
// the folder is done (a log file gets one line per folder, not thousands of redraws).

const BAR_WIDTH = 20;
const REDRAW_MS = 100;

export const formatBytes = (n: number) =>
  n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KB` : n < 1 << 30 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${(n / (1 << 30)).toFixed(2)} GB`;

/** Where progress goes: a terminal (isTTY) gets a line redrawn in place. */
export interface Writer {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export class Progress {
  private files = 0;
  private bytes = 0;
  private phase = '';
  private lastDraw = 0;
  private readonly tty: boolean;

  constructor(
    private readonly label: string,
    private readonly totalFiles: number,
    private readonly totalBytes: number,
    private readonly out: Writer = process.stderr,
  ) {
    this.tty = Boolean(out.isTTY) && process.env['TERM'] !== 'dumb';
  }

  setPhase(phase: string) {
    this.phase = phase;
    this.draw(true);
  }

  addBytes(n: number) {
    this.bytes += n;
    this.draw(false);
  }

  fileDone() {
    this.files++;
    this.draw(false);
  }

  private line() {
    const frac = this.totalBytes > 0 ? Math.min(1, this.bytes / this.totalBytes) : this.totalFiles > 0 ? this.files / this.totalFiles : 1;
    const filled = Math.round(frac * BAR_WIDTH);
    const bar = '█'.repeat(filled) + '░'.repeat(BAR_WIDTH - filled);
    return `${this.label} ${bar} ${String(Math.floor(frac * 100)).padStart(3)}%  ${this.files}/${this.totalFiles} files  ${formatBytes(this.bytes)}/${formatBytes(this.totalBytes)}${this.phase ? `  ${this.phase}` : ''}`;
  }

  private draw(force: boolean) {
    if (!this.tty) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    const columns = this.out.columns || 100;
    this.out.write(`\r\x1b[2K${this.line().slice(0, columns - 1)}`);
  }

  /** The final line: kept on a terminal, printed alone elsewhere. */
  done(result: string, complete = true) {
    this.phase = result;
    if (complete) this.bytes = Math.max(this.bytes, this.totalBytes);
    const line = this.line();
    this.out.write(this.tty ? `\r\x1b[2K${line.slice(0, (this.out.columns || 100) - 1)}\n` : `${line}\n`);
  }

  /** Clears the line on a terminal (before a message about this folder is printed). */
  clear() {
    if (this.tty) this.out.write('\r\x1b[2K');
  }
}
