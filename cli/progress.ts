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

/**
 * A folder's progress: files done, and bytes read (hashed) and sent, each against its total. The
 * bar moves with both: every byte is read once and, when it must be uploaded, sent once.
 */
export class Progress {
  private files = 0;
  private read = 0;
  private sent = 0;
  private phase = '';
  private complete = false;
  private lastDraw = 0;
  private readonly tty: boolean;

  constructor(
    private readonly label: string,
    private readonly totalFiles: number,
    private readonly total: { read: number; sent: number },
    private readonly out: Writer = process.stderr,
  ) {
    this.tty = Boolean(out.isTTY) && process.env['TERM'] !== 'dumb';
  }

  setPhase(phase: string) {
    this.phase = phase;
    this.draw(true);
  }

  addRead(n: number) {
    this.read += n;
    this.draw(false);
  }

  addSent(n: number) {
    this.sent += n;
    this.draw(false);
  }

  fileDone() {
    this.files++;
    this.draw(false);
  }

  private line() {
    const totalBytes = this.total.read + this.total.sent;
    const frac = this.complete ? 1 : totalBytes > 0 ? Math.min(1, (this.read + this.sent) / totalBytes) : this.totalFiles > 0 ? this.files / this.totalFiles : 1;
    const filled = Math.round(frac * BAR_WIDTH);
    const bar = '█'.repeat(filled) + '░'.repeat(BAR_WIDTH - filled);
    // What is sent is usually the folder itself: its total is said only when it differs.
    const sent = this.total.sent === 0 ? '' : `, ${formatBytes(this.sent)}${this.total.sent === this.total.read ? '' : `/${formatBytes(this.total.sent)}`} sent`;
    return `${this.label} ${bar} ${String(Math.floor(frac * 100)).padStart(3)}%  ${this.files}/${this.totalFiles} files  ${formatBytes(this.read)}/${formatBytes(this.total.read)} read${sent}${this.phase ? `  ${this.phase}` : ''}`;
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
    // Complete: every byte was read; what the store had already was never sent, and says so.
    if (complete) [this.read, this.complete] = [Math.max(this.read, this.total.read), true];
    const line = this.line();
    this.out.write(this.tty ? `\r\x1b[2K${line.slice(0, (this.out.columns || 100) - 1)}\n` : `${line}\n`);
  }

  /** Clears the line on a terminal (before a message about this folder is printed). */
  clear() {
    if (this.tty) this.out.write('\r\x1b[2K');
  }
}
