// Reports of one run attempt. Loss points are batched (every 500 ms or 1,000 points, whichever comes
// first), every report goes through the attempt's spool, and one sender per spool delivers them in
// order: while the server cannot be reached it backs off with jitter and the reports wait on disk
// (the trainer keeps training); once it answers they are replayed, oldest first. Heartbeats are not
// spooled: a late heartbeat means nothing.
import {
  ApiError,
  backoffMs,
  isLeaseLost,
  pause,
  type ApiClient,
  type CheckpointInput,
  type LossPointInput,
  type ProgressInput,
  type RunErrorInput,
  type RunOutcome,
  type SampleInput,
} from './api-client.js';
import { Spool, type SpoolEntry } from './spool.js';
import type { ErrorCode } from '../src/graphql/error-codes.js';
import { countTrainerStep, trackSpool } from './metrics.js';

/** The server takes at most this many points per reportLoss. */
export const MAX_POINTS_PER_CALL = 5000;

/**
 * A report that fails with INTERNAL_SERVER_ERROR this many times in a row while other calls get
 * through is taken for one the server cannot handle (a bug), and skipped, so that the reports
 * after it (the completion above all) are not held up for ever. A server whose database is down
 * fails every call, so its reports wait instead.
 */
export const POISON_AFTER = 5;

export type DrainResult = 'sent' | 'lease_lost' | 'stopped';

/** What the server keeps of a run error (longer text is cut there too). */
export const MAX_ERROR_MESSAGE = 10_000;
export const MAX_LOG_TAIL = 200_000;

/** Text the trainer wrote, as the server can store it: no NUL (PostgreSQL text cannot hold one). */
export const cleanText = (text: string) => text.replace(/\u0000/g, '\uFFFD');

/**
 * The forms a completion's error is sent in, fullest first. A completion is never dropped while
 * the lease holds: when the server will not take one form (it refuses it, or keeps failing on it
 * while it answers other calls), the next, plainer one goes instead.
 */
export function completionForms(error: RunErrorInput | null): (RunErrorInput | null)[] {
  if (!error) return [null];
  const code = cleanText(error.code).trim().slice(0, 100) || 'TRAINER_ERROR';
  const message = cleanText(error.message).slice(0, MAX_ERROR_MESSAGE);
  const full = { code, message, logTail: error.logTail == null ? null : cleanText(error.logTail).slice(-MAX_LOG_TAIL) };
  const firstLine = message.split('\n')[0]!.slice(0, 500);
  return [full, { code, message }, { code, message: firstLine }, { code: 'AGENT_ERROR', message: 'the trainer failed; the server would not take its error message' }];
}

/** Codes of a refusal that a plainer completion may get past. Any other says it cannot land at all. */
const CONTENT_REFUSALS = new Set<ErrorCode>(['BAD_USER_INPUT', 'PAYLOAD_TOO_LARGE']);

export interface SenderOptions {
  api: ApiClient;
  spool: Spool;
  log: (line: string) => void;
  /** A call answered LEASE_LOST: the spool is abandoned and the sender stops. */
  onLeaseLost?: (err: ApiError) => void;
  /** Upper bound of the backoff between tries while the server is away. */
  maxDelayMs?: number;
  /**
   * Awaited before a completion is sent: the attempt's files go first (a run reads SUCCEEDED only
   * once its final checkpoint is stored, and a failed run's files are worth having too).
   */
  beforeComplete?: () => Promise<void>;
}

/** The completion sent instead of SUCCEEDED when the server does not have the final checkpoint. */
export const UPLOAD_FAILED: RunErrorInput = {
  code: 'UPLOAD_FAILED',
  message: 'the trainer finished, but its final checkpoint could not be stored in loralab (see the agent log)',
};

/** Sends a spool's pending reports in order, for as long as it takes. */
export class SpoolSender {
  /** True while the server cannot be reached (reports are piling up in the spool). */
  offline = false;
  /** The outcome the server took for the attempt, once it took one. */
  completedAs: RunOutcome | null = null;
  /** Completions (by spool seq) that go as FAILED: their final checkpoint never got stored. */
  private readonly failedUploads = new Set<number>();
  private readonly waitedFor = new Set<number>();
  private stopped = false;
  private leaseLost = false;
  private wake: (() => void) | null = null;
  private readonly stopController = new AbortController();
  private waiters: ((result: DrainResult) => void)[] = [];
  readonly done: Promise<void>;

  constructor(private readonly o: SenderOptions) {
    this.done = this.loop();
  }

  /** New reports were appended. */
  notify(): void {
    this.wake?.();
  }

  /** Resolves once nothing is pending (or the lease was lost, or the sender stopped). */
  idle(): Promise<DrainResult> {
    if (this.leaseLost) return Promise.resolve('lease_lost');
    if (this.stopped) return Promise.resolve('stopped');
    if (this.o.spool.pending().length === 0) return Promise.resolve('sent');
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Stops sending; what is pending stays in the spool for the next start. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopController.abort();
    this.wake?.();
    this.settle('stopped');
  }

  private settle(result: DrainResult): void {
    for (const w of this.waiters.splice(0)) w(result);
  }

  private async loop(): Promise<void> {
    const { spool, log } = this.o;
    let failures = 0;
    let serverErrors = { seq: -1, count: 0, since: 0 };
    // The form a completion goes in (completionForms), per spool entry.
    let form = { seq: -1, index: 0 };
    while (!this.stopped) {
      const pending = spool.pending();
      if (pending.length === 0) {
        this.settle('sent');
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      const batch = takeBatch(pending);
      if (form.seq !== batch.entry.seq) form = { seq: batch.entry.seq, index: 0 };
      const plainer = () => {
        const entry = batch.entry;
        if (entry.op !== 'complete' || form.index + 1 >= completionForms(entry.error).length) return false;
        form.index++;
        serverErrors = { seq: -1, count: 0, since: 0 };
        return true;
      };
      try {
        if (batch.entry.op === 'complete' && this.o.beforeComplete && !this.waitedFor.has(batch.entry.seq)) {
          await this.o.beforeComplete();
          this.waitedFor.add(batch.entry.seq);
          if (this.stopped) break;
        }
        await this.send(batch, form.index);
        spool.ack(batch.seqs);
        if (this.offline) log(`server answers again; sent the spooled reports of run ${spool.header.runId} up to #${batch.seqs.at(-1)}`);
        this.offline = false;
        failures = 0;
      } catch (err) {
        if (isLeaseLost(err)) {
          this.leaseLost = true;
          spool.abandon(`LEASE_LOST: ${(err as Error).message}`);
          this.settle('lease_lost');
          this.o.onLeaseLost?.(err as ApiError);
          return;
        }
        if (err instanceof ApiError && err.kind === 'retryable') {
          if (err.code === 'INTERNAL_SERVER_ERROR') {
            if (serverErrors.seq !== batch.entry.seq) serverErrors = { seq: batch.entry.seq, count: 0, since: Date.now() };
            serverErrors.count++;
            if (serverErrors.count >= POISON_AFTER && this.o.api.lastSuccessAt > serverErrors.since) {
              if (plainer()) {
                log(`the server fails on ${describe(batch)} of run ${spool.header.runId} (${err.message}); sending it plainer`);
                continue;
              }
              // A completion is never skipped: it goes on being sent while the lease holds.
              if (batch.entry.op !== 'complete') {
                log(`the server fails on ${describe(batch)} of run ${spool.header.runId} (${err.message}, ${serverErrors.count} times) while it answers other calls; skipped`);
                spool.ack(batch.seqs);
                continue;
              }
            }
          }
          if (!this.offline) {
            const what = err.code === undefined ? 'server unreachable' : 'server error';
            log(`${what} (${err.message}); reports of run ${spool.header.runId} wait in ${spool.file}`);
          }
          this.offline = true;
          await pause(backoffMs(failures++, 250, this.o.maxDelayMs ?? 5000), this.stopController.signal);
          continue;
        }
        if (err instanceof ApiError && err.reason === 'FINAL_CHECKPOINT_NOT_STORED' && batch.entry.op === 'complete' && !this.failedUploads.has(batch.entry.seq)) {
          log(`run ${spool.header.runId}: the server does not have the final checkpoint; completing the run as FAILED (${UPLOAD_FAILED.code})`);
          this.failedUploads.add(batch.entry.seq);
          continue;
        }
        // The server will never take this report as it is: a completion goes again plainer;
        // anything else is skipped, so the reports after it go on.
        if (err instanceof ApiError && err.code !== undefined && CONTENT_REFUSALS.has(err.code) && plainer()) {
          log(`server refused ${describe(batch)} of run ${spool.header.runId}: ${err.message}; sending it plainer`);
          continue;
        }
        log(`server refused ${describe(batch)} of run ${spool.header.runId}: ${(err as Error).message}; skipped`);
        spool.ack(batch.seqs);
      }
    }
  }

  private async send(batch: Batch, form: number): Promise<void> {
    const { api, spool } = this.o;
    const { runId, leaseToken } = spool.header;
    const entry = batch.entry;
    switch (entry.op) {
      case 'start':
        return api.startRun(runId, leaseToken);
      case 'loss':
        await api.reportLoss(runId, leaseToken, batch.points!);
        return;
      case 'checkpoint':
        return api.reportCheckpoint(runId, leaseToken, { ...entry.input, path: cleanText(entry.input.path) });
      case 'sample':
        return api.reportSample(runId, leaseToken, { ...entry.input, path: cleanText(entry.input.path), prompt: entry.input.prompt == null ? entry.input.prompt : cleanText(entry.input.prompt) });
      case 'complete': {
        const asFailed = this.failedUploads.has(entry.seq);
        const outcome = asFailed ? 'FAILED' : entry.outcome;
        await api.completeRun(runId, leaseToken, outcome, asFailed ? UPLOAD_FAILED : completionForms(entry.error)[form]!);
        this.completedAs = outcome;
        return;
      }
    }
  }
}

interface Batch {
  entry: SpoolEntry;
  seqs: number[];
  /** For loss: the points of consecutive loss entries, one per step (the latest wins), in step order. */
  points?: LossPointInput[];
}

/** The head of the queue; consecutive loss entries (a backlog after an outage) go as one call. */
function takeBatch(pending: readonly SpoolEntry[]): Batch {
  const head = pending[0]!;
  if (head.op !== 'loss') return { entry: head, seqs: [head.seq] };
  const byStep = new Map<number, LossPointInput>();
  const seqs: number[] = [];
  for (const e of pending) {
    if (e.op !== 'loss') break;
    if (seqs.length > 0 && byStep.size + e.points.length > MAX_POINTS_PER_CALL) break;
    for (const p of e.points) byStep.set(p.step, p);
    seqs.push(e.seq);
  }
  return { entry: head, seqs, points: [...byStep.values()].sort((a, b) => a.step - b.step) };
}

function describe(batch: Batch): string {
  const e = batch.entry;
  switch (e.op) {
    case 'loss':
      return `loss steps ${batch.points![0]?.step}–${batch.points!.at(-1)?.step}`;
    case 'checkpoint':
      return `the checkpoint at step ${e.input.step}`;
    case 'sample':
      return `the sample at step ${e.input.step} (prompt ${e.input.promptIndex})`;
    case 'complete':
      return `completion as ${e.outcome}`;
    default:
      return e.op;
  }
}

export interface ReporterOptions extends SenderOptions {
  lossBatchMs?: number;
  lossBatchPoints?: number;
}

/** The reports of one attempt, in the order they happen. */
export class Reporter {
  readonly sender: SpoolSender;
  readonly counts = { points: 0, checkpoints: 0, samples: 0 };
  private buffer = new Map<number, LossPointInput>();
  private timer: NodeJS.Timeout | null = null;
  private readonly batchMs: number;
  private readonly batchPoints: number;
  private readonly untrack: () => void;

  constructor(private readonly o: ReporterOptions) {
    this.untrack = trackSpool(o.spool);
    this.batchMs = o.lossBatchMs ?? 500;
    this.batchPoints = Math.min(o.lossBatchPoints ?? 1000, MAX_POINTS_PER_CALL);
    this.sender = new SpoolSender(o);
  }

  get spool(): Spool {
    return this.o.spool;
  }

  start(): void {
    this.append({ op: 'start' });
  }

  loss(point: LossPointInput): void {
    if (this.o.spool.abandoned) return;
    // One step twice in a batch is refused by the server; the later value is the one to keep.
    if (!this.buffer.has(point.step)) {
      this.counts.points++;
      countTrainerStep();
    }
    this.buffer.set(point.step, point);
    if (this.buffer.size >= this.batchPoints) this.flushLoss();
    else this.timer ??= setTimeout(() => this.flushLoss(), this.batchMs);
  }

  flushLoss(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.buffer.size === 0) return;
    const points = [...this.buffer.values()];
    this.buffer = new Map();
    this.append({ op: 'loss', points });
  }

  checkpoint(input: CheckpointInput): void {
    if (!input.pruned) this.counts.checkpoints++;
    this.append({ op: 'checkpoint', input });
  }

  sample(input: SampleInput): void {
    this.counts.samples++;
    this.append({ op: 'sample', input });
  }

  complete(outcome: RunOutcome, error: RunErrorInput | null): void {
    this.append({ op: 'complete', outcome, error });
  }

  /** Resolves once everything reported so far reached the server (or cannot any more). */
  drain(): Promise<DrainResult> {
    this.flushLoss();
    return this.sender.idle();
  }

  /** The lease is gone: drop what is unsent. */
  abandon(reason: string): void {
    this.clearTimer();
    this.buffer.clear();
    this.o.spool.abandon(reason);
    this.sender.stop();
  }

  /** Stops sending and closes the spool; unsent reports stay in it for the next start. */
  close(): void {
    this.clearTimer();
    this.sender.stop();
    this.o.spool.close();
    this.untrack();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private append(op: Parameters<Spool['append']>[0]): void {
    if (op.op !== 'loss') this.flushLoss();
    if (this.o.spool.abandoned) return;
    this.o.spool.append(op);
    this.sender.notify();
  }
}

export interface HeartbeaterOptions {
  api: ApiClient;
  runId: string;
  leaseToken: string;
  intervalMs: number;
  progress: () => Promise<ProgressInput | null>;
  onCancel: () => void;
  onLeaseLost: (err: ApiError) => void;
  log: (line: string) => void;
}

/** Extends the lease every interval, carrying progress; hears about cancel requests. */
export class Heartbeater {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private failing = false;
  private readonly controller = new AbortController();

  constructor(private readonly o: HeartbeaterOptions) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.controller.abort();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.beat().finally(() => this.schedule()), this.o.intervalMs);
  }

  private async beat(): Promise<void> {
    const { api, runId, leaseToken } = this.o;
    try {
      const progress = await this.o.progress();
      if (this.stopped) return;
      // A heartbeat that takes longer than the interval is worth nothing; the next one is due.
      const result = await api.heartbeat(runId, leaseToken, progress, AbortSignal.any([this.controller.signal, AbortSignal.timeout(Math.max(1000, Math.round(this.o.intervalMs)))]));
      if (this.failing) this.o.log(`heartbeats of run ${runId} get through again`);
      this.failing = false;
      if (result.cancelRequested) this.o.onCancel();
    } catch (err) {
      if (this.stopped) return;
      if (isLeaseLost(err)) {
        this.stop();
        this.o.onLeaseLost(err as ApiError);
        return;
      }
      if (!this.failing) this.o.log(`heartbeat of run ${runId} failed: ${(err as Error).message}`);
      this.failing = true;
    }
  }
}

/**
 * Sends what an earlier agent process left in a spool (it was killed, or stopped while the server
 * was away). Resolves when all of it was sent, or the lease turned out to be gone.
 */
export async function replaySpool(
  api: ApiClient,
  file: string,
  log: (line: string) => void,
  signal?: AbortSignal,
  options: Pick<SenderOptions, 'beforeComplete' | 'onLeaseLost' | 'maxDelayMs'> = {},
): Promise<DrainResult> {
  const spool = Spool.open(file);
  const pending = spool.pending().length;
  log(`replaying ${pending} unsent report(s) of run ${spool.header.runId} (attempt ${spool.header.attempt}) from ${file}`);
  const sender = new SpoolSender({ api, spool, log, ...options });
  const onAbort = () => sender.stop();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await sender.idle();
    if (result === 'lease_lost') log(`run ${spool.header.runId}: its lease is gone; the rest of its spool is dropped`);
    return result;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    sender.stop();
    await sender.done;
    spool.close();
  }
}
