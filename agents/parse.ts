// Streaming parser for ai-toolkit's stdout/stderr (docs/ai-toolkit.md has the output facts it relies on).
//
// tqdm redraws its bar in place with '\r', so the stream is split on both '\r' and '\n'; a "line" here
// is one bar refresh or one printed line. Only the training bar (desc = config.name, postfix
// `lr: … loss: …`) yields progress and loss; every other bar (dataset preprocessing, latent caching,
// sampling, HF downloads, checkpoint shards) is noise that only lands in the tail.
//
// Which loss belongs to which step. ai-toolkit draws a step twice: set_postfix_str shows the step's
// new loss at the bar's count n = step (never throttled), then update() redraws it unchanged at
// n = step + 1 (skipped right after a save or a sample, and held back by tqdm's throttle when steps
// are fast). So the latest line showing n carries step n's loss, and a line's loss text says
// nothing about whether it is new: two steps may print the same text, and each is a point. A step
// is known to have reported when a second line shows it, or when its first line shows a postfix
// other than the line before (only set_postfix_str changes it); it is reported then. A first line
// whose postfix repeats the line before is either the redraw of the step before (the step has not
// reported yet) or a step whose loss text equals the one before after a skipped redraw: it is
// reported once a later step shows, unless the trainer said it skipped that step (an OOM batch, which
// never sets a postfix), and dropped if the output ends first (a trainer killed in the middle of
// the step). Each step is reported at most once.

export type TrainerEvent =
  | {
      type: 'progress';
      step: number;
      totalSteps: number;
      secondsPerStep: number | null;
      etaSeconds: number | null;
      lr: number | null;
    }
  | { type: 'loss'; step: number; loss: number; lr: number | null }
  | { type: 'saving'; step: number }
  | { type: 'checkpoint_saved'; path: string }
  | { type: 'optimizer_saved'; path: string }
  | { type: 'checkpoint_removed'; path: string }
  | { type: 'oom_skip'; batch: number; of: number }
  | { type: 'resuming'; path: string }
  | { type: 'resume_step'; step: number }
  | { type: 'error'; message: string }
  | { type: 'job_stopped' };

export interface TrainerOutputParserOptions {
  /** The training bar's desc (= config.name). Without it, a bar counts once its postfix shows `lr:` and a loss. */
  trainingBarName?: string;
  /** How many cleaned lines tail() keeps. */
  tailLines?: number;
}

// A bar line: "<desc>: <pct>%|<bar>| n/total [elapsed<eta, rate, postfix]". With a fixed width
// (a terminal, COLUMNS, TQDM_NCOLS) tqdm cuts the line at that width, so everything after the bar
// may be missing; each part is taken only when it is all there.
const BAR_HEAD = /^(.+?):\s+(\d+)%\|/;
// ai-toolkit prints every loss as `{value:.3e}`: a cut line shows a loss whole only in this shape.
const WHOLE_LOSS = /^-?\d\.\d{3}e[+-]\d{2,3}$/;
const OTHER_LOSS_KEY = / [\w/]*loss: /g;
const ANSI_ESCAPE = /\x1b\[[0-9;]*[A-Za-z]/g;

const SAVING = 'Saving at step ';
const SAVED_CHECKPOINT = 'Saved checkpoint to ';
const SAVED_OPTIMIZER = 'Saved optimizer to ';
const SAVED_LEGACY = 'Saved to '; // older ai-toolkit printed this instead of "Saved checkpoint to"
const REMOVING = 'Removing old save: ';
const OOM_SKIP = /^# OOM during training step, skipping batch (\d+)\/(\d+) #$/;
const RESUMING = /^#### IMPORTANT RESUMING FROM (.+) ####$/;
const FOUND_STEP = /^Found step (\d+) in metadata, starting from there$/;
const ERROR_RUNNING_JOB = 'Error running job: ';
const JOB_STOPPED = 'Job stopped';

// Exception messages span lines (huggingface_hub's 401 says "Cannot access gated repo …" on the
// third line), so lines after "Error running job:" join the message until run.py's result banner,
// the traceback, or another marker.
const MAX_ERROR_LINES = 20;

// A line longer than this without a line break is not trainer output we can use; cut it rather
// than grow without bound.
const MAX_PENDING_CHARS = 1 << 20;

interface StreamState {
  // A streaming TextDecoder keeps the bytes of a UTF-8 character cut between chunks, like
  // StringDecoder, and decodes about twice as fast (measured on a 120 MB transcript).
  decoder: TextDecoder;
  /** Text after the last line break: the start of a line still being written. */
  pending: string;
  /** How much of `pending` was already handled as a line of its own (see consume). */
  handled: number;
}

interface ShownStep {
  step: number;
  total: number;
  /** The loss on the latest line showing this step; null when that line had none whole. */
  lossText: string | null;
  lrText: string | undefined;
  reported: boolean;
}

export class TrainerOutputParser {
  private readonly trainingBarName: string | undefined;
  private learnedBarName: string | null = null;
  private readonly streams = new Map<string, StreamState>();

  // What the last progress event showed, field by field (compared as text: no allocation per line).
  private readonly shown = { step: '', total: '', rate: '' as string | null, unit: '' as string | null, eta: '' as string | null, lr: '' as string | undefined };

  /** The step the training bar shows now (-1: none yet), and what is known of its loss (see the header). */
  private readonly current: ShownStep = { step: -1, total: 0, lossText: null, lrText: undefined, reported: true };
  /** The previous training-bar line's postfix: its loss (null when it showed none whole) and lr. */
  private lastLoss: string | null = null;
  private lastLr: string | undefined;
  /** OOM skips the trainer announced whose step has not been settled yet. */
  private oomSkips = 0;

  private pendingError: { stream: string; lines: string[] } | null = null;

  private readonly tailCapacity: number;
  private readonly tailRing: string[] = [];
  private tailNext = 0;
  private lastTailBarKey: string | null = null;

  private events: TrainerEvent[] = [];

  /** `options` may be just the training bar's name. */
  constructor(options: TrainerOutputParserOptions | string = {}) {
    if (typeof options === 'string') options = { trainingBarName: options };
    this.trainingBarName = options.trainingBarName;
    this.tailCapacity = Math.max(1, options.tailLines ?? 100);
  }

  /**
   * Feeds a chunk of output. `stream` keeps line framing apart when stdout and stderr arrive on
   * separate pipes (tqdm writes to stderr, print() to stdout): a bar refresh cut mid-way on stderr
   * must not be glued to a stdout line. Loss and progress state is shared across streams.
   */
  push(chunk: string | Buffer, stream = 'out'): TrainerEvent[] {
    const state = this.stream(stream);
    const text = typeof chunk === 'string' ? chunk : state.decoder.decode(chunk, { stream: true });
    if (text.length > 0) this.consume(state, state.pending + text, stream);
    return this.drain();
  }

  /** Flushes trailing partial lines (and bytes of an unfinished UTF-8 character) of every stream. */
  end(): TrainerEvent[] {
    for (const [name, state] of this.streams) {
      this.consume(state, state.pending + state.decoder.decode(), name);
      const rest = state.handled > 0 ? state.pending.slice(state.handled).trimStart() : state.pending;
      state.pending = '';
      state.handled = 0;
      this.handleRaw(rest, name);
    }
    this.flushError();
    // A step whose only line repeated the postfix before it never reported: the trainer stopped
    // (or was killed) after drawing the redraw of the step before.
    this.current.step = -1;
    return this.drain();
  }

  /** The last cleaned, non-empty lines, oldest first. Successive refreshes of one bar keep only the latest. */
  tail(): string[] {
    if (this.tailRing.length < this.tailCapacity) return this.tailRing.slice();
    return this.tailRing.slice(this.tailNext).concat(this.tailRing.slice(0, this.tailNext));
  }

  private stream(name: string): StreamState {
    let state = this.streams.get(name);
    if (!state) {
      state = { decoder: new TextDecoder('utf-8'), pending: '', handled: 0 };
      this.streams.set(name, state);
    }
    return state;
  }

  private drain(): TrainerEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  private consume(state: StreamState, text: string, stream: string): void {
    let from = 0;
    if (state.handled > 0) {
      // The line's beginning was handled already; anything added to it before its line break is
      // text glued after the bar (padding, or a print()).
      const cr = text.indexOf('\r', state.handled);
      const lf = text.indexOf('\n', state.handled);
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (end === -1) {
        state.pending = text;
        return;
      }
      this.handleRaw(text.slice(state.handled, end).trimStart(), stream);
      state.handled = 0;
      from = end + 1;
    }
    state.pending = this.splitLines(from === 0 ? text : text.slice(from), stream);
    if (state.pending.length > MAX_PENDING_CHARS) {
      this.handleRaw(state.pending, stream);
      state.pending = '';
    } else if (isCompleteBar(state.pending)) {
      // tqdm writes a refresh as '\r' + line and leaves the cursor there: the line break that
      // completes it only comes with the next refresh, a step later. A line that already ends
      // in the meter's ']' is complete, so progress is reported when it is drawn.
      this.handleRaw(state.pending, stream);
      state.handled = state.pending.length;
    }
  }

  /**
   * Handles every complete line of `text` and returns the unfinished rest. Two indexOf cursors
   * (native, vectorised) beat split(/[\r\n]/) on a long transcript.
   */
  private splitLines(text: string, stream: string): string {
    let start = 0;
    let cr = text.indexOf('\r');
    let lf = text.indexOf('\n');
    while (cr !== -1 || lf !== -1) {
      let end: number;
      if (cr === -1 || (lf !== -1 && lf < cr)) {
        end = lf;
        lf = text.indexOf('\n', end + 1);
      } else {
        end = cr;
        cr = text.indexOf('\r', end + 1);
      }
      if (end > start) this.handleRaw(text.slice(start, end), stream);
      start = end + 1;
    }
    return start === 0 ? text : text.slice(start);
  }

  private handleRaw(raw: string, stream: string): void {
    if (raw.length === 0) return;
    let line = raw.indexOf('\x1b') === -1 ? raw : raw.replace(ANSI_ESCAPE, '');
    if (line.charCodeAt(line.length - 1) <= 32) line = line.trimEnd();
    if (line.length === 0) return;

    const barAt = line.indexOf('%|');
    if (barAt !== -1) {
      // A print() right after a bar refresh lands on the bar's line ("…loss: 4.1e-01]# OOM during …"),
      // because tqdm leaves the cursor at the end of its line. Split the glued text off and treat it
      // as a line of its own.
      const close = line.indexOf(']', barAt);
      if (close !== -1 && close < line.length - 1) {
        this.handleLine(line.slice(0, close + 1), stream, true);
        // tqdm pads a shorter redraw with spaces to cover the previous one; they precede the glued text.
        this.handleRaw(line.slice(close + 1).trimStart(), stream);
        return;
      }
      // A line cut at the terminal's width has no ']' to split at: run.py's error is found by its words.
      const error = close === -1 ? line.indexOf(ERROR_RUNNING_JOB, barAt) : -1;
      if (error !== -1) {
        this.handleLine(line.slice(0, error), stream, true);
        this.handleLine(line.slice(error), stream, false);
        return;
      }
      this.handleLine(line, stream, true);
      return;
    }
    this.handleLine(line, stream, false);
  }

  private handleLine(line: string, stream: string, isBar: boolean): void {
    this.remember(line, isBar);

    if (this.pendingError !== null && this.pendingError.stream === stream) {
      if (!isBar && this.pendingError.lines.length < MAX_ERROR_LINES && isErrorContinuation(line)) {
        this.pendingError.lines.push(line);
        return;
      }
      this.flushError();
    }

    if (isBar) {
      this.onBar(line);
      return;
    }
    this.onMarker(line, stream);
  }

  private onBar(line: string): void {
    let name: string;
    let at: number;
    if (this.trainingBarName !== undefined) {
      // The common case, without a regex: most bars are the training bar, the rest are skipped here.
      name = this.trainingBarName;
      if (!line.startsWith(name) || line.charCodeAt(name.length) !== 58 /* : */) return;
      at = line.indexOf('%|', name.length);
    } else {
      const head = BAR_HEAD.exec(line);
      if (head === null) return;
      name = head[1]!;
      at = head[0].length - 2;
    }
    // Scanned by hand rather than with a regex: this runs for every refresh of the training bar.
    const barEnd = line.indexOf('|', at + 2);
    if (barEnd === -1) return; // cut inside the bar: not even the count is there
    // " n/total ["
    let i = barEnd + 1;
    while (line.charCodeAt(i) === 32) i++;
    const stepAt = i;
    i = skipDigits(line, i);
    if (i === stepAt || line.charCodeAt(i) !== 47 /* / */) return;
    const stepText = line.slice(stepAt, i);
    const totalAt = ++i;
    i = skipDigits(line, i);
    if (i === totalAt || line.charCodeAt(i) !== 32 || line.charCodeAt(i + 1) !== 91 /* [ */) return;
    const totalText = line.slice(totalAt, i);
    i += 2;

    // "elapsed<eta, rate unit": the rate and ETA only when all of it is there.
    let etaText: string | null = null;
    let rateText: string | null = null;
    let unit: string | null = null;
    const meter = scanMeter(line, i);
    if (meter) {
      etaText = line.slice(METER.eta, METER.etaEnd);
      rateText = line.slice(METER.rate, METER.end - 4);
      unit = line.slice(METER.end - 4, METER.end);
      i = METER.end;
    }
    let lrText: string | undefined;
    let lossText: string | undefined;
    if (meter && line.startsWith(', lr: ', i)) {
      const lrEnd = line.indexOf(' ', i + 6);
      if (lrEnd !== -1) {
        lrText = line.slice(i + 6, lrEnd);
        lossText = pickLoss(line, lrEnd);
      } else if (line.charCodeAt(line.length - 1) === 93 /* ] */) {
        lrText = line.slice(i + 6, line.length - 1);
      }
    }

    if (this.trainingBarName === undefined) {
      if (lossText !== undefined) {
        // Remember the bar that showed a loss, so its postfix-less lines (the first refresh, a resumed
        // bar's first line) still count as progress.
        this.learnedBarName = name;
      } else if (name !== this.learnedBarName) {
        return;
      }
    }

    const step = Number(stepText);
    const total = Number(totalText);
    const shown = this.shown;
    if (
      stepText !== shown.step ||
      rateText !== shown.rate ||
      etaText !== shown.eta ||
      unit !== shown.unit ||
      totalText !== shown.total ||
      lrText !== shown.lr
    ) {
      shown.step = stepText;
      shown.total = totalText;
      shown.rate = rateText;
      shown.unit = unit;
      shown.eta = etaText;
      shown.lr = lrText;
      this.events.push({
        type: 'progress',
        step,
        totalSteps: total,
        secondsPerStep: rateText === null ? null : secondsPerStep(rateText, unit!),
        etaSeconds: etaText === null ? null : parseClock(etaText),
        lr: parseLr(lrText),
      });
    }
    this.onShown(step, total, lossText, lrText);
  }

  /** One training-bar line showing `step`: the rule of the header. */
  private onShown(step: number, total: number, lossText: string | undefined, lrText: string | undefined): void {
    const repeats = lossText === undefined || this.lastLoss === null || (lossText === this.lastLoss && lrText === this.lastLr);
    this.lastLoss = lossText ?? null;
    this.lastLr = lrText;
    const shown = this.current;
    if (shown.step === step) {
      // A second line at this step: set_postfix_str drew it, with the step's own loss.
      shown.lossText = lossText ?? null;
      shown.lrText = lrText;
      if (lossText !== undefined) this.report();
      return;
    }
    if (shown.step !== -1 && step > shown.step) {
      this.settle();
      // A step no line showed at all (its redraw skipped after a save, or throttled) was an OOM skip:
      // every other step sets a postfix, which is always drawn.
      this.oomSkips = Math.max(0, this.oomSkips - (step - shown.step - 1));
    }
    shown.step = step;
    shown.total = total;
    shown.lossText = lossText ?? null;
    shown.lrText = lrText;
    shown.reported = false;
    if (!repeats) this.report();
  }

  /**
   * A later step shows: a step whose only line repeated the postfix before it did report, unless
   * the trainer announced an OOM skip since (that step never set a postfix). The skip is matched by
   * the order stdout and stderr arrive in, which a real trainer's seconds-long steps keep.
   */
  private settle(): void {
    const shown = this.current;
    if (shown.reported || shown.lossText === null) return;
    if (this.oomSkips > 0) {
      this.oomSkips--;
      return;
    }
    this.report();
  }

  private report(): void {
    const shown = this.current;
    if (shown.reported) return;
    shown.reported = true;
    // The bar at its total is the closing redraw, not a step (steps are 0-based).
    if (shown.step >= shown.total || shown.lossText === null) return;
    const loss = Number(shown.lossText);
    // Python prints nan/inf as text; a point that is not a number cannot be charted or stored.
    if (Number.isFinite(loss)) this.events.push({ type: 'loss', step: shown.step, loss, lr: parseLr(shown.lrText) });
  }

  private onMarker(line: string, stream: string): void {
    switch (line.charCodeAt(0)) {
      case 83 /* S */: {
        if (line.startsWith(SAVING)) {
          const step = parseWholeNumber(line.slice(SAVING.length));
          if (step !== null) this.events.push({ type: 'saving', step });
        } else if (line.startsWith(SAVED_CHECKPOINT)) {
          this.events.push({ type: 'checkpoint_saved', path: line.slice(SAVED_CHECKPOINT.length) });
        } else if (line.startsWith(SAVED_OPTIMIZER)) {
          this.events.push({ type: 'optimizer_saved', path: line.slice(SAVED_OPTIMIZER.length) });
        } else if (line.startsWith(SAVED_LEGACY) && line.endsWith('.safetensors')) {
          this.events.push({ type: 'checkpoint_saved', path: line.slice(SAVED_LEGACY.length) });
        }
        return;
      }
      case 82 /* R */: {
        if (line.startsWith(REMOVING)) {
          this.events.push({ type: 'checkpoint_removed', path: line.slice(REMOVING.length) });
        }
        return;
      }
      case 35 /* # */: {
        const oom = OOM_SKIP.exec(line);
        if (oom !== null) {
          this.events.push({ type: 'oom_skip', batch: Number(oom[1]), of: Number(oom[2]) });
          this.oomSkips++;
          return;
        }
        const resuming = RESUMING.exec(line);
        if (resuming !== null) this.events.push({ type: 'resuming', path: resuming[1]! });
        return;
      }
      case 70 /* F */: {
        const found = FOUND_STEP.exec(line);
        if (found !== null) this.events.push({ type: 'resume_step', step: Number(found[1]) });
        return;
      }
      case 69 /* E */: {
        if (line.startsWith(ERROR_RUNNING_JOB)) {
          this.flushError();
          this.pendingError = { stream, lines: [line.slice(ERROR_RUNNING_JOB.length)] };
        }
        return;
      }
      case 74 /* J */: {
        if (line.startsWith(JOB_STOPPED)) this.events.push({ type: 'job_stopped' });
        return;
      }
    }
  }

  private flushError(): void {
    if (this.pendingError === null) return;
    const message = this.pendingError.lines.join('\n');
    this.pendingError = null;
    this.events.push({ type: 'error', message });
  }

  private remember(line: string, isBar: boolean): void {
    // A bar redraws itself hundreds of times; in a log tail only its latest state is worth a line.
    const barKey = isBar ? barIdentity(line) : null;
    if (barKey !== null && barKey === this.lastTailBarKey && this.tailRing.length > 0) {
      const last = (this.tailNext - 1 + this.tailRing.length) % this.tailRing.length;
      this.tailRing[last] = line;
      return;
    }
    this.lastTailBarKey = barKey;
    if (this.tailRing.length < this.tailCapacity) {
      this.tailRing.push(line);
      this.tailNext = this.tailRing.length % this.tailCapacity;
    } else {
      this.tailRing[this.tailNext] = line;
      this.tailNext = (this.tailNext + 1) % this.tailCapacity;
    }
  }
}

function skipDigits(line: string, i: number): number {
  for (let c = line.charCodeAt(i); c >= 48 && c <= 57; c = line.charCodeAt(++i));
  return i;
}

/** Where scanMeter found the parts of the meter (one object, reused: no allocation per line). */
const METER = { eta: 0, etaEnd: 0, rate: 0, end: 0 };

/** Whether tqdm's "mm:ss<mm:ss,  1.23s/it" (or "?, ?it/s") starts at `i` and is all there; its parts go to METER. */
function scanMeter(line: string, i: number): boolean {
  const elapsedAt = i;
  for (let c = line.charCodeAt(i); (c >= 48 && c <= 57) || c === 58; c = line.charCodeAt(++i));
  if (i === elapsedAt || line.charCodeAt(i) !== 60 /* < */) return false;
  METER.eta = ++i;
  for (let c = line.charCodeAt(i); (c >= 48 && c <= 58) || c === 63; c = line.charCodeAt(++i));
  if (i === METER.eta || line.charCodeAt(i) !== 44 /* , */) return false;
  METER.etaEnd = i++;
  while (line.charCodeAt(i) === 32) i++;
  METER.rate = i;
  if (line.charCodeAt(i) === 63 /* ? */) i++;
  else for (let c = line.charCodeAt(i); (c >= 48 && c <= 57) || c === 46; c = line.charCodeAt(++i));
  if (i === METER.rate || !(line.startsWith('s/it', i) || line.startsWith('it/s', i))) return false;
  METER.end = i + 4;
  return true;
}

/** A bar refresh that is all there: its meter's closing ']', then at most tqdm's padding spaces. */
function isCompleteBar(text: string): boolean {
  let end = text.length - 1;
  while (end >= 0 && text.charCodeAt(end) === 32) end--;
  return end >= 0 && text.charCodeAt(end) === 93 /* ] */ && text.includes('%|');
}

function isErrorContinuation(line: string): boolean {
  return !(
    line.startsWith('====') ||
    line.startsWith('Traceback (most recent call last)') ||
    line.startsWith('Error running') ||
    line.startsWith(JOB_STOPPED) ||
    line.startsWith(SAVING) ||
    line.startsWith(SAVED_CHECKPOINT) ||
    line.startsWith(SAVED_OPTIMIZER) ||
    line.startsWith(REMOVING) ||
    OOM_SKIP.test(line) ||
    RESUMING.test(line)
  );
}

/** The bar's desc: everything before the right-aligned percentage. */
function barIdentity(line: string): string {
  let i = line.indexOf('%|');
  while (i > 0 && line.charCodeAt(i - 1) >= 48 && line.charCodeAt(i - 1) <= 57) i--;
  while (i > 0 && line.charCodeAt(i - 1) === 32) i--;
  return line.slice(0, i);
}

/**
 * The `loss` entry of the postfix that starts at `from` (" loss: 4.123e-01 …]"), or another key ending
 * in "loss" when there is none; undefined when it is not there whole (a line cut by the terminal).
 */
function pickLoss(line: string, from: number): string | undefined {
  let start: number;
  // SDTrainer's postfix has exactly one entry, `loss`: found without a regex.
  const at = line.indexOf(' loss: ', from);
  if (at !== -1) start = at + 7;
  else {
    OTHER_LOSS_KEY.lastIndex = from;
    const other = OTHER_LOSS_KEY.exec(line);
    if (other === null) return undefined;
    start = other.index + other[0].length;
  }
  const closed = line.charCodeAt(line.length - 1) === 93; /* ] */
  const space = line.indexOf(' ', start);
  const end = space !== -1 ? space : closed ? line.length - 1 : line.length;
  const text = line.slice(start, end);
  if (text.length === 0) return undefined;
  // A value that runs into the end of a cut line may itself be cut.
  return space === -1 && !closed && !WHOLE_LOSS.test(text) ? undefined : text;
}

function secondsPerStep(rateText: string, unit: string): number | null {
  if (rateText === '?') return null;
  const rate = Number(rateText);
  if (!Number.isFinite(rate)) return null;
  if (unit === 's/it') return rate;
  return rate > 0 ? 1 / rate : null;
}

/** tqdm's format_interval: "mm:ss" or "h:mm:ss"; "?" (no rate yet) is null. */
function parseClock(text: string): number | null {
  let seconds = 0;
  let part = 0;
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      digits++;
    } else if (c === 58 /* : */ && digits > 0) {
      seconds = seconds * 60 + part;
      part = 0;
      digits = 0;
    } else {
      return null;
    }
  }
  return digits > 0 ? seconds * 60 + part : null;
}

function parseWholeNumber(text: string): number | null {
  return /^\d+$/.test(text) ? Number(text) : null;
}

function parseLr(text: string | undefined): number | null {
  if (text === undefined) return null;
  const lr = Number(text);
  return Number.isFinite(lr) ? lr : null;
}
