import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { createBasics, createExperiment, createStrategy, queueRun, type Basics } from './helpers/fixtures.js';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';

const QUEUE_RUN = `mutation($input: QueueRunInput!) {
  queueRun(input: $input) {
    id name status priority attempt maxAttempts tags notes queuedAt
    experiment { id } dataset { id } captionStrategy { id }
    requirements { minVramMb gpuCount labels }
    hyperparameters {
      baseModel rank alpha learningRate steps batchSize gradientAccumulation optimizer lrScheduler
      noiseScheduler resolutions saveEvery checkpointsToKeep sampleEvery samplePrompts sampleSeed
      sampleWidth sampleHeight guidanceScale sampleSteps quantize dtype seed extra
    }
  }
}`;

const QUEUE_SWEEP = `mutation($input: QueueSweepInput!) {
  queueSweep(input: $input) { id name status sweep { id } captionStrategy { id } hyperparameters { rank alpha learningRate steps batchSize } }
}`;

const runCount = async (client: GqlClient) => (await client.ok(`{ runs { totalCount } }`)).runs.totalCount as number;

describe.each(databaseKinds)('queueing runs on %s', (kind) => {
  let t: TestServer;
  let editor: GqlClient;
  let basics: Basics;
  const input = (extra: Record<string, unknown> = {}) => ({
    experimentId: basics.experimentId,
    datasetId: basics.datasetId,
    captionStrategyId: basics.strategyId,
    ...extra,
  });

  beforeAll(async () => {
    t = await startTestServer(kind);
    editor = await t.as('EDITOR');
    basics = await createBasics(editor);
  });
  afterAll(() => t?.stop());

  it('queues a run with every hyperparameter left to the defaults of the field write-up', async () => {
    const { queueRun } = await editor.ok(QUEUE_RUN, { input: input() });
    expect(queueRun).toMatchObject({
      status: 'QUEUED',
      priority: 0,
      attempt: 0,
      maxAttempts: 3,
      tags: [],
      notes: null,
      experiment: { id: basics.experimentId },
      dataset: { id: basics.datasetId },
      captionStrategy: { id: basics.strategyId },
      requirements: { minVramMb: 0, gpuCount: 1, labels: [] },
      hyperparameters: {
        baseModel: 'black-forest-labs/FLUX.1-dev',
        rank: 16,
        alpha: 16,
        learningRate: 4e-4,
        steps: 3000,
        batchSize: 1,
        gradientAccumulation: 1,
        optimizer: 'adamw8bit',
        lrScheduler: 'constant',
        noiseScheduler: 'flowmatch',
        resolutions: [512, 768, 1024],
        saveEvery: 250,
        checkpointsToKeep: 4,
        sampleEvery: 250,
        sampleSeed: 42,
        sampleWidth: 1024,
        sampleHeight: 1024,
        guidanceScale: 4,
        sampleSteps: 20,
        quantize: true,
        dtype: 'bf16',
        seed: null,
        extra: null,
      },
    });
    expect(queueRun.hyperparameters.samplePrompts.length).toBeGreaterThan(0);
    expect(queueRun.name).toContain('r16');
    const { run } = await editor.ok(`query($id: ID!) { run(id: $id) { id status hyperparameters { rank } } }`, { id: queueRun.id });
    expect(run).toEqual({ id: queueRun.id, status: 'QUEUED', hyperparameters: { rank: 16 } });
  });

  it('keeps the hyperparameters, requirements and labels it is given; alpha follows the rank unless set', async () => {
    const hyperparameters = {
      rank: 32,
      learningRate: 1e-4,
      steps: 4000,
      batchSize: 2,
      resolutions: [1024],
      saveEvery: 500,
      sampleEvery: 1000,
      samplePrompts: ['[trigger] on a beach'],
      seed: 7,
      extra: { train: { skip_first_sample: true } },
    };
    const { queueRun } = await editor.ok(QUEUE_RUN, {
      input: input({
        name: 'rank 32 slow',
        hyperparameters,
        requirements: { minVramMb: 24000, gpuCount: 1, labels: ['4090', '4090'] },
        priority: 5,
        maxAttempts: 1,
        tags: ['fine-detail'],
        notes: 'finer detail at a lower LR',
      }),
    });
    expect(queueRun).toMatchObject({
      name: 'rank 32 slow',
      priority: 5,
      maxAttempts: 1,
      tags: ['fine-detail'],
      notes: 'finer detail at a lower LR',
      requirements: { minVramMb: 24000, gpuCount: 1, labels: ['4090'] },
      hyperparameters: { ...hyperparameters, alpha: 32 },
    });
    const { queueRun: withAlpha } = await editor.ok(QUEUE_RUN, { input: input({ hyperparameters: { rank: 32, alpha: 16 } }) });
    expect(withAlpha.hyperparameters).toMatchObject({ rank: 32, alpha: 16 });
  });

  it('answers a repeated idempotency key with the run the first call queued', async () => {
    const before = await runCount(editor);
    const first = await queueRun(editor, basics, { idempotencyKey: 'nightly-42', name: 'first' });
    const again = await queueRun(editor, basics, { idempotencyKey: 'nightly-42', name: 'second', hyperparameters: { rank: 64 } });
    expect(again).toEqual(first);
    expect(await runCount(editor)).toBe(before + 1);
    const other = await queueRun(editor, basics, { idempotencyKey: 'nightly-43' });
    expect(other.id).not.toBe(first.id);
  });

  it('queues a sweep as the grid product, each run named after its point, under one Sweep', async () => {
    const strategyB = await createStrategy(editor, { name: 'descriptive', kind: 'STORED', style: 'DESCRIPTIVE', template: '[trigger], {caption}' });
    const before = await runCount(editor);
    const { queueSweep } = await editor.ok(QUEUE_SWEEP, {
      input: {
        base: input({ name: 'p3r5on sweep', hyperparameters: { batchSize: 2 }, tags: ['sweep'] }),
        grid: { rank: [16, 32], learningRate: [1e-4, 4e-4], steps: [2000, 3000], captionStrategyId: [basics.strategyId, strategyB] },
      },
    });
    expect(queueSweep).toHaveLength(16);
    expect(await runCount(editor)).toBe(before + 16);

    const points = queueSweep.map((r: any) => [r.hyperparameters.rank, r.hyperparameters.learningRate, r.hyperparameters.steps, r.captionStrategy.id].join('|'));
    const expected = [16, 32].flatMap((rank) =>
      [1e-4, 4e-4].flatMap((lr) => [2000, 3000].flatMap((steps) => [basics.strategyId, strategyB].map((s) => [rank, lr, steps, s].join('|')))),
    );
    expect(new Set(points)).toEqual(new Set(expected));
    for (const r of queueSweep) {
      expect(r.status).toBe('QUEUED');
      expect(r.hyperparameters.batchSize).toBe(2); // from the base
      expect(r.hyperparameters.alpha).toBe(r.hyperparameters.rank);
      expect(r.name.startsWith('p3r5on sweep · ')).toBe(true);
    }
    expect(new Set(queueSweep.map((r: any) => r.name)).size).toBe(16);
    const sweepIds = new Set(queueSweep.map((r: any) => r.sweep.id));
    expect(sweepIds.size).toBe(1);

    const [sweepId] = [...sweepIds];
    const { sweep, experiment } = await editor.ok(
      `query($id: ID!, $e: ID!) {
        sweep(id: $id) { id queued running done grid experiment { id } base { batchSize } runs { id } }
        experiment(id: $e) { sweeps { id } }
      }`,
      { id: sweepId, e: basics.experimentId },
    );
    expect(sweep).toMatchObject({ id: sweepId, queued: 16, running: 0, done: 0, experiment: { id: basics.experimentId }, base: { batchSize: 2 } });
    expect(sweep.grid).toMatchObject({ rank: [16, 32], learningRate: [1e-4, 4e-4], steps: [2000, 3000] });
    expect(new Set(sweep.runs.map((r: any) => r.id))).toEqual(new Set(queueSweep.map((r: any) => r.id)));
    expect(experiment.sweeps.map((s: any) => s.id)).toContain(sweepId);
  });

  it('writes nothing of a sweep when one grid value is out of range', async () => {
    const experimentId = await createExperiment(editor, { name: 'atomic sweep' });
    const before = await runCount(editor);
    await editor.fails(
      'BAD_USER_INPUT',
      QUEUE_SWEEP,
      { input: { base: input({ experimentId }), grid: { rank: [8, 16, 512], learningRate: [1e-4, 4e-4] } } },
      'input.grid.rank',
    );
    await editor.fails(
      'NOT_FOUND',
      QUEUE_SWEEP,
      { input: { base: input({ experimentId }), grid: { rank: [8], captionStrategyId: [basics.strategyId, '00000000-0000-4000-8000-000000000000'] } } },
      'input.grid.captionStrategyId.1',
    );
    await editor.fails(
      'BAD_USER_INPUT',
      QUEUE_SWEEP,
      { input: { base: input({ experimentId }), grid: { rank: [8, 16, 8] } } },
      'input.grid.rank.2',
    );
    expect(await runCount(editor)).toBe(before);
    const { experiment } = await editor.ok(`query($id: ID!) { experiment(id: $id) { sweeps { id } runs { totalCount } } }`, { id: experimentId });
    expect(experiment).toEqual({ sweeps: [], runs: { totalCount: 0 } });
  });

  it('refuses a sweep of more than 1,000 runs', async () => {
    const before = await runCount(editor);
    const range = (n: number, from: number) => Array.from({ length: n }, (_, i) => from + i);
    // 11 × 10 × 10 = 1,100 runs.
    await editor.fails(
      'BAD_USER_INPUT',
      QUEUE_SWEEP,
      { input: { base: input(), grid: { rank: range(11, 1), learningRate: range(10, 1).map((i) => i * 1e-5), steps: range(10, 1000) } } },
      'input.grid',
    );
    expect(await runCount(editor)).toBe(before);
  });

  describe('refuses hyperparameters out of range, naming the field and writing nothing', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['rank 0', { rank: 0 }, 'rank'],
      ['rank 257', { rank: 257 }, 'rank'],
      ['alpha 0', { alpha: 0 }, 'alpha'],
      ['alpha 513', { alpha: 513 }, 'alpha'],
      ['learning rate 0', { learningRate: 0 }, 'learningRate'],
      ['negative learning rate', { learningRate: -1e-4 }, 'learningRate'],
      ['learning rate 1', { learningRate: 1 }, 'learningRate'],
      ['0 steps', { steps: 0 }, 'steps'],
      ['100,001 steps', { steps: 100_001 }, 'steps'],
      ['batch size 0', { batchSize: 0 }, 'batchSize'],
      ['batch size 65', { batchSize: 65 }, 'batchSize'],
      ['resolution 192 (below 256)', { resolutions: [192] }, 'resolutions.0'],
      ['resolution 2112 (above 2048)', { resolutions: [512, 2112] }, 'resolutions.1'],
      ['resolution 500 (not a multiple of 64)', { resolutions: [1024, 512, 500] }, 'resolutions.2'],
      ['no resolution', { resolutions: [] }, 'resolutions'],
      ['saveEvery 0', { saveEvery: 0 }, 'saveEvery'],
      ['sampleEvery 0', { sampleEvery: 0 }, 'sampleEvery'],
      ['extra that is not an object', { extra: [1, 2] }, 'extra'],
    ];
    it.each(cases)('%s', async (_, hyperparameters, field) => {
      const before = await runCount(editor);
      await editor.fails('BAD_USER_INPUT', QUEUE_RUN, { input: input({ hyperparameters }) }, `input.hyperparameters.${field}`);
      expect(await runCount(editor)).toBe(before);
    });
  });

  it('accepts the edges of every range', async () => {
    const { queueRun } = await editor.ok(QUEUE_RUN, {
      input: input({
        hyperparameters: { rank: 256, alpha: 512, learningRate: 0.999, steps: 100_000, batchSize: 64, resolutions: [256, 2048], saveEvery: 1, sampleEvery: 1 },
      }),
    });
    expect(queueRun.hyperparameters).toMatchObject({ rank: 256, alpha: 512, steps: 100_000, batchSize: 64, resolutions: [256, 2048] });
    const { queueRun: low } = await editor.ok(QUEUE_RUN, { input: input({ hyperparameters: { rank: 1, alpha: 1, steps: 1, batchSize: 1 } }) });
    expect(low.hyperparameters).toMatchObject({ rank: 1, alpha: 1, steps: 1, batchSize: 1 });
  });

  it('refuses empty and overlong run names', async () => {
    const before = await runCount(editor);
    await editor.fails('BAD_USER_INPUT', QUEUE_RUN, { input: input({ name: '  ' }) }, 'input.name');
    await editor.fails('BAD_USER_INPUT', QUEUE_RUN, { input: input({ name: 'r'.repeat(201) }) }, 'input.name');
    expect(await runCount(editor)).toBe(before);
    const { queueRun } = await editor.ok(QUEUE_RUN, { input: input({ name: 'r'.repeat(200) }) });
    expect(queueRun.name).toHaveLength(200);
  });

  it('answers NOT_FOUND for an experiment, dataset or caption strategy that does not exist', async () => {
    const before = await runCount(editor);
    const missing = '00000000-0000-4000-8000-000000000000';
    await editor.fails('NOT_FOUND', QUEUE_RUN, { input: input({ experimentId: missing }) }, 'input.experimentId');
    await editor.fails('NOT_FOUND', QUEUE_RUN, { input: input({ datasetId: missing }) }, 'input.datasetId');
    await editor.fails('NOT_FOUND', QUEUE_RUN, { input: input({ captionStrategyId: missing }) }, 'input.captionStrategyId');
    await editor.fails('BAD_USER_INPUT', QUEUE_RUN, { input: input({ datasetId: 'not-an-id' }) }, 'input.datasetId');
    expect(await runCount(editor)).toBe(before);
    const data = await editor.ok(`query($id: ID!) { run(id: $id) { id } bad: run(id: "nope") { id } }`, { id: missing });
    expect(data).toEqual({ run: null, bad: null });
  });
});
