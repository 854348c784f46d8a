import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { createDataset, createExperiment, createStrategy } from './helpers/fixtures.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { registerAgent, REPORT_LOSS } from './helpers/agents.js';

const PAGE = `query($first: Int!) {
  runs(first: $first, filter: { status: [QUEUED, SUCCEEDED] }, orderBy: { field: LEARNING_RATE, direction: DESC }) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id name status
      experiment { id name }
      dataset { id name imageCount }
      captionStrategy { id name kind }
      agent { id name }
      checkpoints { id step path }
      lossSummary { points minLoss lastLoss }
      hyperparameters { rank learningRate steps }
    } }
  }
}`;

describe.each(databaseKinds)('statements per runs page on %s', (kind) => {
  let t: TestServer;

  beforeAll(async () => {
    // Statements are counted on the server's database: keep the reaper's sweeps out of the count.
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600 });
    const editor = t.admin;
    const [experiments, datasets, strategies] = await Promise.all([
      Promise.all([0, 1, 2].map((i) => createExperiment(editor, { name: `experiment ${i}` }))),
      Promise.all([0, 1].map((i) => createDataset(editor, 4, { name: `dataset ${i}` }))),
      Promise.all([0, 1, 2].map((i) => createStrategy(editor, { name: `strategy ${i}` }))),
    ]);
    // 3 sweeps of 6 × 2 × 3 = 36 runs: 108 runs over every experiment, dataset and strategy.
    for (const [i, experimentId] of experiments.entries()) {
      await editor.ok(`mutation($input: QueueSweepInput!) { queueSweep(input: $input) { id } }`, {
        input: {
          base: { experimentId, datasetId: datasets[i % 2], captionStrategyId: strategies[0] },
          grid: { rank: [4, 8, 16, 32, 64, 128], learningRate: [1e-4 * (i + 1), 5e-4 * (i + 1)], captionStrategyId: strategies },
        },
      });
    }
    // What agents would have reported: a holder, checkpoints and loss for every other run.
    const { createApiKey } = await editor.ok(`mutation { createApiKey(role: AGENT, name: "gpu box") { id } }`);
    const db = t.server.db.orm;
    await db.execute(sql`
      insert into agents (api_key_id, name, gpus, max_gpu_memory_mb, gpu_count)
      values (${createApiKey.id}, 'gpu-box-1', '[{"index":0,"name":"RTX 4090","memoryMb":24564}]', 24564, 1)`);
    await db.execute(sql`
      with picked as (select id from runs order by id limit 54)
      update runs set status = 'SUCCEEDED', agent_id = (select id from agents limit 1), attempt = 1
      where id in (select id from picked)`);
    await db.execute(sql`
      insert into checkpoints (run_id, step, path, attempt)
      select r.id, s, 'output/ckpt_' || s || '.safetensors', 1
      from runs r cross join generate_series(250, 1000, 250) as s
      where r.status = 'SUCCEEDED'`);
    await db.execute(sql`
      update run_summaries set points = 1000, last_step = 999, last_loss = 0.3, min_loss = 0.25
      where run_id in (select id from runs where status = 'SUCCEEDED')`);
  });
  afterAll(() => t?.stop());

  async function statementsFor(first: number) {
    const before = t.server.db.stats.statements;
    const { runs } = await t.admin.ok(PAGE, { first });
    return { statements: t.server.db.stats.statements - before, runs };
  }

  it('reads a page of 100 runs with their experiment, dataset, strategy, agent, checkpoints and loss in a few statements', async () => {
    const { statements, runs } = await statementsFor(100);
    expect(runs.totalCount).toBe(108);
    expect(runs.edges).toHaveLength(100);
    const nodes = runs.edges.map((e: any) => e.node);
    // The page really holds every kind of nested record.
    expect(new Set(nodes.map((n: any) => n.experiment.id)).size).toBe(3);
    expect(new Set(nodes.map((n: any) => n.dataset.id)).size).toBe(2);
    expect(new Set(nodes.map((n: any) => n.captionStrategy.id)).size).toBe(3);
    expect(nodes.some((n: any) => n.agent?.name === 'gpu-box-1')).toBe(true);
    expect(nodes.some((n: any) => n.checkpoints.length === 4)).toBe(true);
    expect(nodes.some((n: any) => n.lossSummary.minLoss === 0.25)).toBe(true);
    expect(statements).toBeLessThanOrEqual(10);
  });

  it('queues a sweep of 250 runs in as many statements as a sweep of 2 (its events announced in one)', async () => {
    const { runs } = await t.admin.ok(`{ runs(first: 1) { edges { node { experiment { id } dataset { id } captionStrategy { id } } } } }`);
    const base = runs.edges[0].node;
    const statementsForSweep = async (ranks: number[]) => {
      const before = t.server.db.stats.statements;
      const { queueSweep } = await t.admin.ok(`mutation($input: QueueSweepInput!) { queueSweep(input: $input) { id } }`, {
        input: { base: { experimentId: base.experiment.id, datasetId: base.dataset.id, captionStrategyId: base.captionStrategy.id }, grid: { rank: ranks } },
      });
      expect(queueSweep).toHaveLength(ranks.length);
      return t.server.db.stats.statements - before;
    };
    const small = await statementsForSweep([4, 8]);
    const large = await statementsForSweep(Array.from({ length: 250 }, (_, i) => i + 1));
    expect(large).toBe(small);
  });

  it('sends as many statements for 10 runs as for 100', async () => {
    const ten = await statementsFor(10);
    const hundred = await statementsFor(100);
    expect(ten.runs.edges).toHaveLength(10);
    expect(ten.statements).toBe(hundred.statements);
  });

  // Last: it claims one of the queued runs the tests above count.
  it('takes a checkpoint report (saved, final or pruned) or a sample in one statement, as a heartbeat or a loss batch', async () => {
    const agent = await registerAgent(t, { gpus: [{ index: 0, name: 'H100', memoryMb: 81_559 }] });
    const claim = (await agent.claim())!;
    const [r, tk] = [claim.run.id, claim.leaseToken];
    const { run } = await t.admin.ok(`query($id: ID!) { run(id: $id) { hyperparameters { steps } } }`, { id: r });
    const steps = run.hyperparameters.steps as number;
    const counted = async (call: () => Promise<unknown>) => {
      const before = t.server.db.stats.statements;
      await call();
      return t.server.db.stats.statements - before;
    };
    expect(await counted(() => agent.heartbeat(r, tk, { step: 10 }))).toBe(1);
    const points = Array.from({ length: 300 }, (_, step) => ({ step, loss: 0.5 - step / 1000 }));
    expect(await counted(() => agent.client.ok(REPORT_LOSS, { r, t: tk, p: points }))).toBe(1);
    const report = `mutation($r: ID!, $t: String!, $i: CheckpointInput!) { reportCheckpoint(runId: $r, leaseToken: $t, input: $i) { step emaLoss isFinal prunedAt } }`;
    let answer: any;
    const reported = (i: Record<string, unknown>) => counted(async () => (answer = (await agent.client.ok(report, { r, t: tk, i })).reportCheckpoint));
    expect(await reported({ step: 250, path: '/out/lora_250.safetensors' })).toBe(1);
    expect(answer.emaLoss).toEqual(expect.any(Number));
    expect(await reported({ step: 250, path: '/out/lora_250.safetensors' })).toBe(1); // a retry: nothing changes
    expect(await reported({ step: steps, path: '/out/lora.safetensors', isFinal: true })).toBe(1);
    expect(answer.isFinal).toBe(true);
    expect(await reported({ step: 250, path: '/out/lora_250.safetensors', pruned: true })).toBe(1);
    expect(answer.prunedAt).toBeTruthy();
    // A sample, the other file the trainer reports as it goes: one statement too, new or again
    // (selected as the agent does; promptIndex would read the run for its sample strengths).
    const sample = `mutation($r: ID!, $t: String!, $i: SampleInput!) { reportSample(runId: $r, leaseToken: $t, input: $i) { id step path } }`;
    for (let i = 0; i < 2; i++) {
      expect(await counted(() => agent.client.ok(sample, { r, t: tk, i: { step: 250, promptIndex: 0, prompt: 'p3r5on', path: '/out/samples/250_0.jpg' } })), `report ${i}`).toBe(1);
    }
    const { run: after } = await t.admin.ok(`query($id: ID!) { run(id: $id) { events { type } } }`, { id: r });
    expect(after.events.map((e: { type: string }) => e.type).filter((type: string) => type.startsWith('CHECKPOINT'))).toEqual([
      'CHECKPOINT_PRUNED',
      'CHECKPOINT_SAVED',
      'CHECKPOINT_SAVED',
    ]);
  });
});
