// What the agent prints: plain lines ("12:00:01 run abc: checkpoint at step 250 reported"), and on
// a terminal one live progress line per run, kept below the log and redrawn in place.
import type { Writable } from 'node:stream';

export interface AgentLog {
  info(line: string): void;
  warn(line: string): void;
  /** The progress line of `key` (a run); null removes it. Shown only on a terminal. */
  progress(key: string, text: string | null): void;
  /** Stops redrawing and clears the progress lines. */
  close(): void;
}

const REDRAW_MS = 250;

export function createLog(opts: { out?: Writable & { isTTY?: boolean; columns?: number }; tty?: boolean } = {}): AgentLog {
  const out = opts.out ?? process.stdout;
  const tty = opts.tty ?? out.isTTY === true;
  const lines = new Map<string, string>();
  let drawn = 0;
  let timer: NodeJS.Timeout | null = null;

  const stamp = () => new Date().toTimeString().slice(0, 8);
  const clear = () => {
    if (drawn > 0) out.write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
  };
  const draw = () => {
    const width = Math.max(20, (out.columns && out.columns > 0 ? out.columns : 120) - 1);
    for (const text of lines.values()) out.write(`${text.length > width ? text.slice(0, width - 1) + '…' : text}\n`);
    drawn = lines.size;
  };
  const write = (line: string) => {
    if (!tty) {
      out.write(`${stamp()} ${line}\n`);
      return;
    }
    clear();
    out.write(`${stamp()} ${line}\n`);
    draw();
  };
  return {
    info: write,
    warn: (line) => write(`WARNING ${line}`),
    progress(key, text) {
      if (!tty) return;
      if (text === null) lines.delete(key);
      else lines.set(key, text);
      // Redraws are throttled: a fast trainer updates its bar many times a second.
      timer ??= setTimeout(() => {
        timer = null;
        clear();
        draw();
      }, REDRAW_MS);
    },
    close() {
      if (timer) clearTimeout(timer);
      timer = null;
      if (tty) clear();
      lines.clear();
    },
  };
}

/** A log that prints nothing (tests, benchmarks) or hands lines to a callback. */
export function silentLog(onLine?: (line: string) => void): AgentLog {
  return {
    info: (line) => onLine?.(line),
    warn: (line) => onLine?.(`WARNING ${line}`),
    progress: () => {},
    close: () => {},
  };
}

/** `1:02:03`, `4:05` */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}
