import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createBasics, createStrategy, type Basics } from './helpers/fixtures.js';
import { registerAgent, type TestAgent, REPORT_LOSS } from './helpers/agents.js';

const report = REPORT_LOSS;
const reportCheckpoint = `mutation($r: ID!, $t: String!, $i: CheckpointInput!) { reportCheckpoint(runId: $r, leaseToken: $t, input: $i) { id step emaLoss } }`;
const rate = `mutation($c: ID!, $s: Int!, $n: String) { rateCheckpoint(checkpointId: $c, score: $s, notes: $n) { id score notes checkpoint { id meanRating } } }`;
const RUN_FIELDS = `id rank: hyperparameters { rank learningRate steps optimizer batchSize } status costUsd startedAt finishedAt captionStrategy { id } dataset { id } lossSummary { lastLoss minLoss emaLoss } checkpoints { id step meanRating }`;

function mean(xs: (number | null | undefined)[]) {
  const v = xs.filter((x): x is number => x != null);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

describe.each(databaseKinds)('comparing runs and rating checkpoints on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  let agent: TestAgent;
  let sweepId: string;
  let experimentId: string;
  let runs: any[];
  const ratingsByCheckpoint = new Map<string, number[]>();

  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600 });
    basics = await createBasics(t.admin);
    experimentId = basics.experimentId;
    const descriptive = await createStrategy(t.admin, { name: 'descriptive', kind: 'STORED', style: 'DESCRIPTIVE', triggerWord: 'p3r5on' });
    const { queueSweep } = await t.admin.ok(`mutation($input: QueueSweepInput!) { queueSweep(input: $input) { id sweep { id } } }`, {
      input: {
        base: { experimentId, datasetId: basics.datasetId, captionStrategyId: basics.strategyId, hyperparameters: { saveEvery: 50 } },
        grid: { rank: [8, 16], learningRate: [1e-4, 4e-4], steps: [100, 200], captionStrategyId: [basics.strategyId, descriptive] },
      },
    });
    expect(queueSweep).toHaveLength(16);
    sweepId = queueSweep[0].sweep.id;
    agent = await registerAgent(t, { gpus: Array.from({ length: 16 }, (_, index) => ({ index, name: 'A', memoryMb: 24_000 })), hourlyCostUsd: 1.6 });
    // Train 12 of the 16 runs: loss falling at a rate that depends on rank and LR, two checkpoints each.
    for (let i = 0; i < 12; i++) {
      const claim = (await agent.claim())!;
      const { run } = await t.admin.ok(`query($id: ID!) { run(id: $id) { hyperparameters { rank learningRate steps } } }`, { id: claim.run.id });
      const hp = run.hyperparameters;
      await agent.start(claim.run.id, claim.leaseToken);
      const points = Array.from({ length: hp.steps }, (_, step) => ({ step, loss: 0.05 + 1 / (1 + step * hp.learningRate * hp.rank * 10) + ((step * 7919 + i) % 13) / 1000 }));
      await agent.client.ok(report, { r: claim.run.id, t: claim.leaseToken, p: points });
      for (const step of [50, hp.steps]) {
        const { reportCheckpoint: c } = await agent.client.ok(reportCheckpoint, {
          r: claim.run.id,
          t: claim.leaseToken,
          i: { step, path: `/out/${i}/${step}.safetensors`, isFinal: step === hp.steps },
        });
        const scores = [((i + step) % 5) + 1, ((i * 3 + step) % 5) + 1];
        ratingsByCheckpoint.set(c.id, scores);
        for (const score of scores) await t.admin.ok(rate, { c: c.id, s: score, n: `run ${i}` });
      }
      await agent.complete(claim.run.id, claim.leaseToken, i % 4 === 3 ? 'FAILED' : 'SUCCEEDED', i % 4 === 3 ? { code: 'OUT_OF_MEMORY', message: 'CUDA out of memory' } : undefined);
    }
    ({ runs } = await t.admin.ok(`query($f: RunFilter) { runs(filter: $f, first: 100) { edges { node { ${RUN_FIELDS} } } } }`, { f: { experimentId } }).then((d) => ({ runs: d.runs.edges.map((e: any) => e.node) })));
  }, 120_000);
  afterAll(() => t?.stop());

  function expectedGroups(keyOf: (r: any) => string) {
    const groups = new Map<string, any[]>();
    for (const r of runs) groups.set(keyOf(r), [...(groups.get(keyOf(r)) ?? []), r]);
    return groups;
  }

  function checkGroup(group: any, members: any[]) {
    expect(group.runCount).toBe(members.length);
    expect(group.succeeded).toBe(members.filter((r) => r.status === 'SUCCEEDED').length);
    const close = (a: number | null, b: number | null) => (b == null ? expect(a).toBeNull() : expect(a).toBeCloseTo(b, 9));
    close(group.meanLastLoss, mean(members.map((r) => r.lossSummary.lastLoss)));
    close(group.meanEmaLoss, mean(members.map((r) => r.lossSummary.emaLoss)));
    close(group.minLoss, members.some((r) => r.lossSummary.minLoss != null) ? Math.min(...members.filter((r) => r.lossSummary.minLoss != null).map((r) => r.lossSummary.minLoss)) : null);
    close(group.meanCostUsd, mean(members.map((r) => r.costUsd)));
    const ratingMeans = members.flatMap((r) => r.checkpoints.map((c: any) => c.meanRating)).filter((m: any) => m != null);
    close(group.bestMeanRating, ratingMeans.length ? Math.max(...ratingMeans) : null);
    const durations = members.filter((r) => r.finishedAt && r.startedAt).map((r) => (Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 1000);
    if (durations.length) expect(group.meanDurationSeconds).toBeCloseTo(mean(durations)!, 1);
    else expect(group.meanDurationSeconds).toBeNull();
    expect(group.runs.map((r: any) => r.id).sort()).toEqual(members.map((r) => r.id).sort());
  }

  it('groups by rank × learning rate with values equal to a recomputation from the runs', async () => {
    const { compareRuns } = await t.admin.ok(
      `query($f: RunFilter) { compareRuns(filter: $f, groupBy: [RANK, LEARNING_RATE]) { key { rank learningRate steps captionStrategy { id } } runCount succeeded meanLastLoss minLoss meanEmaLoss bestMeanRating meanCostUsd meanDurationSeconds runs { id } } }`,
      { f: { experimentId } },
    );
    const expected = expectedGroups((r) => `${r.rank.rank}/${r.rank.learningRate}`);
    expect(compareRuns).toHaveLength(expected.size);
    for (const group of compareRuns) {
      expect(group.key.steps).toBeNull();
      expect(group.key.captionStrategy).toBeNull();
      checkGroup(group, expected.get(`${group.key.rank}/${group.key.learningRate}`)!);
    }
    expect(compareRuns.map((g: any) => [g.key.rank, g.key.learningRate])).toEqual([[8, 1e-4], [8, 4e-4], [16, 1e-4], [16, 4e-4]]);
  });

  it('groups by steps and caption strategy, and by nothing', async () => {
    const { compareRuns } = await t.admin.ok(
      `query($f: RunFilter) { compareRuns(filter: $f, groupBy: [STEPS, CAPTION_STRATEGY]) { key { steps captionStrategy { id } } runCount succeeded meanLastLoss minLoss meanEmaLoss bestMeanRating meanCostUsd meanDurationSeconds runs { id } } }`,
      { f: { experimentId } },
    );
    const expected = expectedGroups((r) => `${r.rank.steps}/${r.captionStrategy.id}`);
    expect(compareRuns).toHaveLength(4);
    for (const group of compareRuns) checkGroup(group, expected.get(`${group.key.steps}/${group.key.captionStrategy.id}`)!);
    const all = await t.admin.ok(`query($f: RunFilter) { compareRuns(filter: $f, groupBy: []) { runCount succeeded } }`, { f: { experimentId } });
    expect(all.compareRuns).toEqual([{ runCount: 16, succeeded: 9 }]);
  });

  it('filters with IN, ranges and AND across fields', async () => {
    const query = `query($f: RunFilter) { runs(filter: $f, first: 100) { totalCount edges { node { hyperparameters { rank learningRate steps } status } } } }`;
    const pick = async (f: object) => (await t.admin.ok(query, { f: { experimentId, ...f } })).runs;
    expect((await pick({ rank: { in: [8] } })).totalCount).toBe(8);
    expect((await pick({ rank: { in: [8] }, learningRate: { gte: 2e-4 } })).totalCount).toBe(4);
    expect((await pick({ rank: { in: [8, 16] }, learningRate: { gte: 2e-4, lte: 3e-4 } })).totalCount).toBe(0);
    expect((await pick({ steps: { eq: 200 }, status: ['SUCCEEDED'] })).edges.every((e: any) => e.node.hyperparameters.steps === 200 && e.node.status === 'SUCCEEDED')).toBe(true);
    expect((await pick({ optimizer: ['adamw8bit'], batchSize: { eq: 1 }, alpha: { in: [8, 16] } })).totalCount).toBe(16);
    expect((await pick({ optimizer: ['prodigy'] })).totalCount).toBe(0);
  });

  it('orders runs by EMA loss, best rating and cost', async () => {
    for (const [field, value, direction] of [
      ['EMA_LOSS', (r: any) => r.lossSummary.emaLoss, 'ASC'],
      ['BEST_RATING', (r: any) => Math.max(...r.checkpoints.map((c: any) => c.meanRating ?? -1), -1), 'DESC'],
      ['COST_USD', (r: any) => r.costUsd, 'DESC'],
    ] as const) {
      const { runs: page } = await t.admin.ok(`query($f: RunFilter, $o: RunOrder) { runs(filter: $f, orderBy: $o, first: 100) { edges { node { ${RUN_FIELDS} } } } }`, {
        f: { experimentId, status: ['SUCCEEDED', 'FAILED'] },
        o: { field, direction },
      });
      const values = page.edges.map((e: any) => value(e.node));
      const sorted = [...values].sort((a, b) => (direction === 'ASC' ? a - b : b - a));
      expect(values).toEqual(sorted);
    }
  });

  it('builds the checkpoint × step matrix with mean ratings and EMA loss at each step', async () => {
    const { checkpointMatrix } = await t.admin.ok(
      `query($f: RunFilter) { checkpointMatrix(filter: $f) { steps rows { run { id hyperparameters { steps } } cells { step meanRating emaLoss checkpoint { id step } } } } }`,
      { f: { experimentId } },
    );
    expect(checkpointMatrix.steps).toEqual([50, 100, 200]);
    expect(checkpointMatrix.rows).toHaveLength(16);
    for (const row of checkpointMatrix.rows) {
      expect(row.cells).toHaveLength(3);
      const run = runs.find((r) => r.id === row.run.id);
      const byStep = new Map(run.checkpoints.map((c: any) => [c.step, c]));
      row.cells.forEach((cell: any, i: number) => {
        const step = checkpointMatrix.steps[i];
        const checkpoint: any = byStep.get(step);
        if (!checkpoint) return expect(cell).toBeNull();
        expect(cell.checkpoint).toEqual({ id: checkpoint.id, step });
        expect(cell.meanRating).toBeCloseTo(mean(ratingsByCheckpoint.get(checkpoint.id)!)!, 9);
        expect(cell.emaLoss).toBeGreaterThan(0);
      });
    }
    // The EMA at step 50 is the EMA over points 0..50, not the run's final EMA.
    const trained = checkpointMatrix.rows.find((r: any) => r.cells[0]);
    const { run } = await t.admin.ok(`query($id: ID!) { run(id: $id) { lossPoints(first: 51) { loss } } }`, { id: trained.run.id });
    const ema = run.lossPoints.reduce((e: number | null, p: any) => (e == null ? p.loss : 0.1 * p.loss + 0.9 * e), null);
    expect(trained.cells[0].emaLoss).toBeCloseTo(ema, 9);
  });

  it('rates checkpoints 1–5 (EDITOR), keeps every rating, and picks the best checkpoint', async () => {
    const run = runs.find((r) => r.checkpoints.length === 2)!;
    const [early] = run.checkpoints;
    await t.admin.fails('BAD_USER_INPUT', rate, { c: early.id, s: 6 }, 'score');
    await t.admin.fails('BAD_USER_INPUT', rate, { c: early.id, s: 0 }, 'score');
    await t.admin.fails('NOT_FOUND', rate, { c: '00000000-0000-0000-0000-000000000000', s: 3 }, 'checkpointId');
    const viewer = await t.as('VIEWER');
    await viewer.fails('FORBIDDEN', rate, { c: early.id, s: 3 });

    // A run of its own, two checkpoints, no ratings yet.
    const { createExperiment } = await t.admin.ok(`mutation { createExperiment(input: { name: "ratings", goal: STYLE }) { id } }`);
    await t.admin.ok(`mutation($input: QueueRunInput!) { queueRun(input: $input) { id } }`, {
      input: { experimentId: createExperiment.id, datasetId: basics.datasetId, captionStrategyId: basics.strategyId, hyperparameters: { steps: 100 }, priority: 100 },
    });
    const claim = (await agent.claim())!;
    const ids: string[] = [];
    for (const step of [50, 100]) {
      const { reportCheckpoint: c } = await agent.client.ok(reportCheckpoint, { r: claim.run.id, t: claim.leaseToken, i: { step, path: `/out/r/${step}`, isFinal: step === 100 } });
      ids.push(c.id);
    }
    await agent.complete(claim.run.id, claim.leaseToken, 'SUCCEEDED');
    const best = async () => (await t.admin.ok(`query($id: ID!) { run(id: $id) { bestCheckpoint { id } } }`, { id: claim.run.id })).run.bestCheckpoint?.id ?? null;
    expect(await best()).toBeNull();
    for (const score of [4, 4]) await t.admin.ok(rate, { c: ids[0], s: score });
    const editor = await t.as('EDITOR');
    for (const score of [5, 3]) await editor.ok(rate, { c: ids[1], s: score, n: 'crisp, a bit overcooked' });
    expect(await best()).toBe(ids[1]); // 4.0 each: the tie goes to the later step
    const { rateCheckpoint } = await t.admin.ok(rate, { c: ids[0], s: 5 });
    expect(rateCheckpoint.checkpoint.meanRating).toBeCloseTo(13 / 3, 9);
    expect(await best()).toBe(ids[0]);
    const { run: rated } = await t.admin.ok(`query($id: ID!) { run(id: $id) { checkpoints { ratings { score notes } } } }`, { id: claim.run.id });
    expect(rated.checkpoints[1].ratings).toEqual([{ score: 5, notes: 'crisp, a bit overcooked' }, { score: 3, notes: 'crisp, a bit overcooked' }]);

    // A promotion wins over ratings.
    const { promoteCheckpoint } = await t.admin.ok(`mutation($r: ID!, $c: ID!) { promoteCheckpoint(runId: $r, checkpointId: $c) { bestCheckpoint { id } } }`, { r: run.id, c: early.id });
    expect(promoteCheckpoint.bestCheckpoint.id).toBe(early.id);
    const other = runs.find((r) => r.id !== run.id && r.checkpoints.length)!;
    await t.admin.fails('BAD_USER_INPUT', `mutation($r: ID!, $c: ID!) { promoteCheckpoint(runId: $r, checkpointId: $c) { id } }`, { r: run.id, c: other.checkpoints[0].id }, 'checkpointId');
  });

  it('keeps a sweep as a record with progress as its runs move, and its best run', async () => {
    const { sweep } = await t.admin.ok(`query($id: ID!) { sweep(id: $id) { grid queued running done runs { id } bestRun { id lossSummary { emaLoss } } byRating: bestRun(by: BEST_RATING) { id } experiment { sweeps { id } } } }`, { id: sweepId });
    expect(sweep).toMatchObject({ queued: 4, running: 0, done: 12 });
    expect(sweep.runs).toHaveLength(16);
    expect(sweep.experiment.sweeps.map((s: any) => s.id)).toEqual([sweepId]);
    const best = Math.min(...runs.filter((r) => r.lossSummary.emaLoss != null).map((r) => r.lossSummary.emaLoss));
    expect(sweep.bestRun.lossSummary.emaLoss).toBe(best);
    expect(sweep.byRating).not.toBeNull();
    const claim = (await agent.claim())!;
    expect((await t.admin.ok(`query($id: ID!) { sweep(id: $id) { queued running done } }`, { id: sweepId })).sweep).toEqual({ queued: 3, running: 1, done: 12 });
    await agent.complete(claim.run.id, claim.leaseToken, 'SUCCEEDED');
    expect((await t.admin.ok(`query($id: ID!) { sweep(id: $id) { queued running done } }`, { id: sweepId })).sweep).toEqual({ queued: 3, running: 0, done: 13 });
  });
});
