// One arithmetic for loss summaries: a run's summary, its loss blocks (fine and coarse) and its checkpoints' EMA are
// computed by four pieces of code (the JavaScript fast path for appends, recordLossBatch folding a
// batch in SQL, recomputeSummary and rebuildLossBlocks starting again from the points, and
// refreshCheckpointEma), all from src/modules/metrics/summary-arithmetic.ts. The same seeded random
// batches (appends with gaps, points sent out of order, retries, fill-ins of earlier gaps, batches
// overlapping the last step, and newer attempts rewriting earlier steps) go to three runs, each
// written by other paths, and after every batch each run must hold what a recomputation here from
// the points gives.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { rows } from '../src/db/client.js';
import { afterLossBatch, lockLossSummary, markLossRewritten, recordLossBatch, recordedLoss } from '../src/modules/metrics/metrics.store.js';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createBasics, queueRun, type Basics } from './helpers/fixtures.js';
import { endBackoff, expireLease, registerAgent, REPORT_LOSS, type TestAgent } from './helpers/agents.js';

const REPORT_COLUMNS = `mutation($r: ID!, $t: String!, $s: [Int!]!, $l: [Float!]!, $lr: [Float]) { reportLossColumns(runId: $r, leaseToken: $t, steps: $s, losses: $l, lrs: $lr) { accepted duplicates } }`;
const REPORT_CHECKPOINT = `mutation($r: ID!, $t: String!, $i: CheckpointInput!) { reportCheckpoint(runId: $r, leaseToken: $t, input: $i) { step emaLoss } }`;
const STATE = `query($id: ID!) { run(id: $id) {
  lossSummary { points lastStep lastLoss minLoss minLossStep emaLoss }
  checkpoints { step emaLoss }
} }`;

const ALPHA = 0.1;
const BLOCK_STEPS = 100;
/** The levels of loss_coarse_blocks. */
const COARSE_STEPS = [1_000, 10_000];
const MAX_STEP = 2_147_483_647;

type Point = { step: number; loss: number };
type Batch = { kind: string; points: Point[] };

/** mulberry32: a small seeded generator, so that a failing seed can be run again. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The loss_points of a run as kept here: a point is replaced only by a newer attempt's. */
class Model {
  readonly points = new Map<number, { loss: number; attempt: number }>();
  checkpoints: number[] = [];

  write(batch: Point[], attempt: number) {
    let written = 0;
    for (const p of batch) {
      const old = this.points.get(p.step);
      if (old && old.attempt >= attempt) continue;
      this.points.set(p.step, { loss: p.loss, attempt });
      written++;
    }
    return written;
  }

  sorted(upTo = MAX_STEP): Point[] {
    return [...this.points.entries()].filter(([step]) => step <= upTo).sort((a, b) => a[0] - b[0]).map(([step, p]) => ({ step, loss: p.loss }));
  }

  get lastStep() {
    return Math.max(-1, ...this.points.keys());
  }

  /** The EMA step by step, seeded with the first point: the definition, not a closed form. */
  ema(upTo = MAX_STEP) {
    let ema: number | null = null;
    for (const p of this.sorted(upTo)) ema = ema == null ? p.loss : ALPHA * p.loss + (1 - ALPHA) * ema;
    return ema;
  }

  summary() {
    const sorted = this.sorted();
    let min = sorted[0]!;
    for (const p of sorted) if (p.loss < min.loss) min = p;
    return { points: sorted.length, lastStep: sorted.at(-1)!.step, lastLoss: sorted.at(-1)!.loss, minLoss: min.loss, minLossStep: min.step, emaLoss: this.ema() };
  }

  blocks(steps = BLOCK_STEPS) {
    const byBlock = new Map<number, Point[]>();
    for (const p of this.sorted()) {
      const b = Math.floor(p.step / steps);
      byBlock.set(b, [...(byBlock.get(b) ?? []), p]);
    }
    return [...byBlock.entries()].map(([block, ps]) => ({
      block,
      points: ps.length,
      lossSum: ps.reduce((s, p) => s + p.loss, 0),
      minLoss: Math.min(...ps.map((p) => p.loss)),
      maxLoss: Math.max(...ps.map((p) => p.loss)),
      firstStep: ps[0]!.step,
      lastStep: ps.at(-1)!.step,
      lastLoss: ps.at(-1)!.loss,
    }));
  }
}

/**
 * The batches of one seed. Losses are often rounded to 0.05 so that equal minima occur (the
 * minimum's step is the lowest step holding it). Appends leave gaps for later fill-ins; a batch's
 * points are sometimes sent in shuffled order; every tenth or so batch a newer attempt resumes
 * from an earlier step (the caller bumps the attempt first).
 */
function* batchesOf(seed: number, count: number): Generator<Batch> {
  const rnd = random(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const loss = () => (rnd() < 0.4 ? Math.round((0.05 + rnd() * 1.5) * 20) / 20 : 0.05 + rnd() * 1.5);
  const shuffled = (ps: Point[]) => (rnd() < 0.3 ? [...ps].sort(() => rnd() - 0.5) : ps);
  const sent: Point[][] = [];
  const written = new Set<number>();
  let last = -1;
  const append = (): Point[] => {
    const ps: Point[] = [];
    let step = last + int(1, 3);
    for (let n = int(1, 260); n > 0; n--, step += rnd() < 0.1 ? int(2, 40) : 1) ps.push({ step, loss: loss() });
    return ps;
  };
  for (let i = 0; i < count; i++) {
    const roll = rnd();
    let batch: Batch;
    if (i === 0 || roll < 0.45) batch = { kind: 'append', points: shuffled(append()) };
    else if (roll < 0.55) batch = { kind: 'retry', points: sent[int(0, sent.length - 1)]!.map((p) => ({ ...p, loss: loss() })) };
    else if (roll < 0.7) {
      const gaps = Array.from({ length: last + 1 }, (_, s) => s).filter((s) => !written.has(s));
      if (!gaps.length) batch = { kind: 'append', points: append() };
      else {
        const from = int(0, gaps.length - 1);
        batch = { kind: 'fill', points: shuffled(gaps.slice(from, from + int(1, 30)).map((step) => ({ step, loss: loss() }))) };
      }
    } else if (roll < 0.8) {
      const from = Math.max(0, last - int(0, 20));
      batch = { kind: 'overlap', points: Array.from({ length: int(2, 60) }, (_, k) => ({ step: from + k, loss: loss() })) };
    } else if (roll < 0.9) {
      // A newer attempt resumes from a checkpoint: it rewrites from there, and may go past the end.
      const from = int(0, Math.max(0, last));
      batch = { kind: 'rewrite', points: shuffled(Array.from({ length: int(1, 250) }, (_, k) => ({ step: from + k, loss: loss() }))) };
    } else batch = { kind: 'checkpoint', points: [] };
    for (const p of batch.points) written.add(p.step);
    if (batch.points.length) {
      sent.push(batch.points);
      last = Math.max(last, ...batch.points.map((p) => p.step));
    }
    yield batch;
  }
}

/** How each of the three runs writes a batch. */
type Path = 'api' | 'sqlFold' | 'recompute';
const PATHS: Path[] = ['api', 'sqlFold', 'recompute'];

describe.each(databaseKinds)('one arithmetic for loss summaries on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  let agent: TestAgent;
  let agentKeyId: string;
  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600, retryBackoffSeconds: 0 });
    basics = await createBasics(t.admin);
    agent = await registerAgent(t, { gpus: Array.from({ length: 12 }, (_, index) => ({ index, name: 'H100', memoryMb: 81_559 })) });
    const [row] = await rows<{ api_key_id: string }>(t.server.db.orm, sql`select api_key_id from agents where id = ${agent.id}`);
    agentKeyId = row!.api_key_id;
  });
  afterAll(() => t?.stop());

  /** Every run's lease lost and claimed again by the agent: a newer attempt of each. */
  async function newAttempt(runs: Map<Path, { runId: string; token: string }>) {
    for (const { runId } of runs.values()) await expireLease(t, runId);
    await t.server.reaper.sweep();
    for (const { runId } of runs.values()) await endBackoff(t, runId);
    for (let i = 0; i < runs.size; i++) {
      const claim = (await agent.claim())!;
      const held = [...runs.values()].find((r) => r.runId === claim.run.id)!;
      held.token = claim.leaseToken;
    }
  }

  /** The batch written by `path`: the agent's call, or the store's statements as the service would send them. */
  async function write(path: Path, run: { runId: string; token: string }, points: Point[], viaColumns: boolean) {
    if (path === 'api') {
      const result = viaColumns
        ? (await agent.client.ok(REPORT_COLUMNS, { r: run.runId, t: run.token, s: points.map((p) => p.step), l: points.map((p) => p.loss), lr: points.map(() => 4e-4) })).reportLossColumns
        : (await agent.client.ok(REPORT_LOSS, { r: run.runId, t: run.token, p: points })).reportLoss;
      return result.accepted as number;
    }
    const fence = { runId: run.runId, leaseToken: run.token, apiKeyId: agentKeyId };
    const columns = { steps: points.map((p) => p.step), losses: points.map((p) => p.loss), lrs: points.map(() => 4e-4) };
    // sqlFold: recordLossBatch folds what only appends and recomputes the rest, as a batch the fast path turned down.
    // recompute: every batch marked as rewriting every step, so the summary, blocks and EMAs are always recomputed.
    const [, recorded] = await t.server.db.batch([
      lockLossSummary(run.runId),
      recordLossBatch(fence, columns),
      ...(path === 'recompute' ? [markLossRewritten(0, MAX_STEP)] : []),
      ...afterLossBatch(run.runId),
    ]);
    return recordedLoss(recorded!)!.written;
  }

  async function expectMatches(path: Path, runId: string, model: Model, context: string) {
    const { run } = await t.admin.ok(STATE, { id: runId });
    const want = model.summary();
    const got = run.lossSummary;
    expect({ ...got, emaLoss: 0 }, `${context}: ${path}'s summary`).toEqual({ ...want, emaLoss: 0 });
    expect(Math.abs(got.emaLoss - want.emaLoss!) / Math.abs(want.emaLoss!), `${context}: ${path}'s EMA ${got.emaLoss} vs ${want.emaLoss}`).toBeLessThan(1e-9);
    const columns = sql`block, points, loss_sum as "lossSum", min_loss as "minLoss", max_loss as "maxLoss", first_step as "firstStep",
            last_step as "lastStep", last_loss as "lastLoss"`;
    const levels = [
      [BLOCK_STEPS, sql`select ${columns} from loss_blocks where run_id = ${runId} order by block`],
      ...COARSE_STEPS.map((steps) => [steps, sql`select ${columns} from loss_coarse_blocks where run_id = ${runId} and steps = ${steps} order by block`] as const),
    ] as const;
    for (const [steps, query] of levels) {
      const blocks = await rows<Record<string, number>>(t.server.db.orm, query);
      const wanted = model.blocks(steps);
      expect(blocks.map((b) => ({ ...b, lossSum: 0 })), `${context}: ${path}'s blocks of ${steps}`).toEqual(wanted.map((b) => ({ ...b, lossSum: 0 })));
      for (const [i, b] of blocks.entries()) {
        expect(Math.abs(b.lossSum! - wanted[i]!.lossSum) / wanted[i]!.lossSum, `${context}: ${path}'s block ${b.block} of ${steps} sum`).toBeLessThan(1e-12);
      }
    }
    expect(run.checkpoints.map((c: { step: number }) => c.step)).toEqual([...model.checkpoints].sort((a, b) => a - b));
    for (const c of run.checkpoints as { step: number; emaLoss: number }[]) {
      const ema = model.ema(c.step)!;
      expect(Math.abs(c.emaLoss - ema) / Math.abs(ema), `${context}: ${path}'s checkpoint at ${c.step}: ${c.emaLoss} vs ${ema}`).toBeLessThan(1e-9);
    }
  }

  it.each([1, 2, 3])('seed %i: the agent, the SQL fold and the recomputation agree with the points after every batch', async (seed) => {
    const runs = new Map<Path, { runId: string; token: string }>();
    for (const path of PATHS) {
      const queued = await queueRun(t.admin, basics, { maxAttempts: 100, name: `seed ${seed} ${path}` });
      const claim = (await agent.claim())!;
      expect(claim.run.id).toBe(queued.id);
      runs.set(path, { runId: queued.id, token: claim.leaseToken });
    }
    const model = new Model();
    let attempt = 1;
    const rnd = random(seed * 7919);
    const seen = new Set<string>();
    for (const [i, batch] of [...batchesOf(seed, 36)].entries()) {
      const context = `seed ${seed}, batch ${i} (${batch.kind}, ${batch.points.length} points)`;
      if (batch.kind === 'checkpoint') {
        if (model.lastStep < 0) continue;
        // The agent flushes loss before it reports a checkpoint: one at a step that has loss.
        const steps = [...model.points.keys()];
        const step = steps[Math.floor(rnd() * steps.length)]!;
        if (!model.checkpoints.includes(step)) model.checkpoints.push(step);
        for (const run of runs.values()) {
          await agent.client.ok(REPORT_CHECKPOINT, { r: run.runId, t: run.token, i: { step, path: `/out/ckpt_${step}.safetensors` } });
        }
      } else {
        if (batch.kind === 'rewrite') {
          await newAttempt(runs);
          attempt++;
        }
        const written = model.write(batch.points, attempt);
        const viaColumns = rnd() < 0.5;
        for (const path of PATHS) expect(await write(path, runs.get(path)!, batch.points, viaColumns), `${context}: ${path} wrote`).toBe(written);
      }
      seen.add(batch.kind);
      if (model.lastStep < 0) continue;
      for (const path of PATHS) await expectMatches(path, runs.get(path)!.runId, model, context);
    }
    // Every kind of batch came up.
    expect([...seen].sort()).toEqual(['append', 'checkpoint', 'fill', 'overlap', 'retry', 'rewrite']);
  });
});
