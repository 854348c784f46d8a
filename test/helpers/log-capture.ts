// A server logger whose lines a test can read: the server's own logger setup, written to memory.
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { createLogger } from '../../src/log.js';

export interface CapturedLog {
  log: Logger;
  /** Everything logged so far, as written. */
  text(): string;
  /** The lines as objects. */
  lines(): Record<string, any>[];
}

export function captureLog(level: 'debug' | 'info' | 'warn' = 'info'): CapturedLog {
  let text = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return {
    log: createLogger(level, sink),
    text: () => text,
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line)),
  };
}
