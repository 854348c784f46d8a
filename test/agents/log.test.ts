import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLog, formatDuration } from '../../agents/log.js';

function terminal(tty: boolean) {
  let text = '';
  const out = Object.assign(
    new Writable({
      write(chunk, _enc, done) {
        text += chunk;
        done();
      },
    }),
    { isTTY: tty, columns: 60 },
  );
  return { out, text: () => text };
}

const ERASE_ONE = '\x1b[1A\x1b[0J';

describe('what the agent prints', () => {
  it('on a terminal: log lines, with one progress line per run kept below them and redrawn in place', () => {
    const term = terminal(true);
    const log = createLog({ out: term.out });
    log.progress('run-1', 'run abc: 120/3000 (4%)  loss 0.3123  1.84 s/it  ETA 1:28:10');
    log.info('registered as agent 42');
    expect(term.text()).toMatch(/^\d\d:\d\d:\d\d registered as agent 42\nrun abc: 120\/3000 \(4%\)  loss 0\.3123  1\.84 s\/it  ETA 1:28:10\n$/);
    const before = term.text().length;
    log.info('run abc: checkpoint at step 250');
    // The progress line is erased, the log line takes its place, and it is drawn again below.
    expect(term.text().slice(before)).toMatch(/^\x1b\[1A\x1b\[0J\d\d:\d\d:\d\d run abc: checkpoint at step 250\nrun abc: 120\/3000 .*\n$/);
    log.progress('run-1', 'x'.repeat(100));
    log.progress('run-1', null);
    log.close();
    expect(term.text().endsWith(ERASE_ONE)).toBe(true);
  });

  it('elsewhere (a pipe, a log file): plain lines, no progress lines', () => {
    const pipe = terminal(false);
    const log = createLog({ out: pipe.out });
    log.progress('run-1', 'run abc: 120/3000');
    log.info('run abc: SUCCEEDED');
    log.warn('heartbeat failed');
    log.close();
    expect(pipe.text()).toMatch(/^\d\d:\d\d:\d\d run abc: SUCCEEDED\n\d\d:\d\d:\d\d WARNING heartbeat failed\n$/);
  });

  it('durations read like a clock', () => {
    expect([formatDuration(5), formatDuration(65), formatDuration(5288.4), formatDuration(-1)]).toEqual(['0:05', '1:05', '1:28:08', '0:00']);
  });
});
