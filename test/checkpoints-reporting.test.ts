import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createBasics, queueRun, type Basics } from './helpers/fixtures.js';
import { registerAgent, type TestAgent } from './helpers/agents.js';

const reportCheckpoint = `mutation($r: ID!, $t: String!, $i: CheckpointInput!) { reportCheckpoint(runId: $r, leaseToken: $t, input: $i) { id step path sizeBytes sha256 isFinal prunedAt } }`;
const reportSample = `mutation($r: ID!, $t: String!, $i: SampleInput!) { reportSample(runId: $r, leaseToken: $t, input: $i) { id step promptIndex prompt path } }`;
const sha = (c: string) => c.repeat(64);

describe.each(databaseKinds)('checkpoints and samples on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  let agent: TestAgent;
  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600 });
    basics = await createBasics(t.admin);
    agent = await registerAgent(t, { gpus: [0, 1, 2, 3].map((index) => ({ index, name: 'A', memoryMb: 24_000 })) });
  });
  afterAll(() => t?.stop());

  async function claimed(steps = 500) {
    const run = await queueRun(t.admin, basics, { hyperparameters: { steps, saveEvery: 250 } });
    const claim = (await agent.claim())!;
    return { runId: run.id, token: claim.leaseToken };
  }

  it('records checkpoints idempotently per step, links samples of the same step, and keeps pruned ones listed', async () => {
    const { runId, token } = await claimed();
    const first = { step: 250, path: '/out/lora_000000250.safetensors', sizeBytes: 171_966_464, sha256: sha('a') };
    const a = await agent.client.ok(reportCheckpoint, { r: runId, t: token, i: first });
    const again = await agent.client.ok(reportCheckpoint, { r: runId, t: token, i: first });
    expect(again.reportCheckpoint.id).toBe(a.reportCheckpoint.id);
    for (const promptIndex of [0, 1]) {
      const input = { step: 250, promptIndex, prompt: `prompt ${promptIndex}`, path: `/out/samples/1732700000000__000000250_${promptIndex}.jpg` };
      const s1 = await agent.client.ok(reportSample, { r: runId, t: token, i: input });
      const s2 = await agent.client.ok(reportSample, { r: runId, t: token, i: input });
      expect(s2.reportSample.id).toBe(s1.reportSample.id);
    }
    await agent.client.ok(reportSample, { r: runId, t: token, i: { step: 0, promptIndex: 0, path: '/out/samples/baseline.jpg' } });
    const final = await agent.client.ok(reportCheckpoint, { r: runId, t: token, i: { step: 500, path: '/out/lora.safetensors', sizeBytes: 171_966_464, sha256: sha('b'), isFinal: true } });
    expect(final.reportCheckpoint.isFinal).toBe(true);
    const pruned = await agent.client.ok(reportCheckpoint, { r: runId, t: token, i: { step: 250, path: first.path, pruned: true } });
    expect(pruned.reportCheckpoint.prunedAt).toBeTruthy();
    expect(pruned.reportCheckpoint.sha256).toBe(sha('a'));

    const { run } = await t.admin.ok(
      `query($id: ID!) { run(id: $id) { checkpoints { step isFinal prunedAt samples { promptIndex prompt } } samples { step } events { type } } }`,
      { id: runId },
    );
    expect(run.checkpoints.map((c: any) => [c.step, c.isFinal, c.prunedAt != null])).toEqual([
      [250, false, true],
      [500, true, false],
    ]);
    expect(run.checkpoints[0].samples).toEqual([
      { promptIndex: 0, prompt: 'prompt 0' },
      { promptIndex: 1, prompt: 'prompt 1' },
    ]);
    expect(run.samples.map((s: any) => s.step)).toEqual([0, 250, 250]);
    expect(run.events.map((e: any) => e.type).filter((type: string) => type.startsWith('CHECKPOINT'))).toEqual(['CHECKPOINT_PRUNED', 'CHECKPOINT_SAVED', 'CHECKPOINT_SAVED']);
  });

  it('gives a checkpoint late in a long run its EMA loss (weights that underflow are cut, not an error)', async () => {
    const { runId, token } = await claimed(10_000);
    const points = Array.from({ length: 8000 }, (_, step) => ({ step, loss: 0.2 + 0.1 * Math.cos(step / 10) }));
    for (let i = 0; i < points.length; i += 5000) {
      await agent.client.ok(`mutation($r: ID!, $t: String!, $p: [LossPointInput!]!) { reportLoss(runId: $r, leaseToken: $t, points: $p) { accepted } }`, { r: runId, t: token, p: points.slice(i, i + 5000) });
    }
    const { reportCheckpoint: c } = await agent.client.ok(`mutation($r: ID!, $t: String!, $i: CheckpointInput!) { reportCheckpoint(runId: $r, leaseToken: $t, input: $i) { emaLoss } }`, {
      r: runId,
      t: token,
      i: { step: 7500, path: '/out/lora_000007500.safetensors' },
    });
    const ema = points.slice(0, 7501).reduce((e: number | null, p) => (e == null ? p.loss : 0.1 * p.loss + 0.9 * e), null)!;
    expect(c.emaLoss).toBeCloseTo(ema, 12);
  });

  it("puts the final checkpoint at the run's total steps", async () => {
    const { runId, token } = await claimed(500);
    await agent.client.fails('BAD_USER_INPUT', reportCheckpoint, { r: runId, t: token, i: { step: 499, path: '/out/lora.safetensors', isFinal: true } }, 'input.step');
  });

  it('refuses a checkpoint or sample from a token that does not hold the run', async () => {
    const { runId } = await claimed();
    await agent.client.fails('LEASE_LOST', reportCheckpoint, { r: runId, t: 'stale', i: { step: 250, path: '/x' } });
    await agent.client.fails('LEASE_LOST', reportSample, { r: runId, t: 'stale', i: { step: 250, promptIndex: 0, path: '/x' } });
    const { run } = await t.admin.ok(`query($id: ID!) { run(id: $id) { checkpoints { id } samples { id } } }`, { id: runId });
    expect(run).toEqual({ checkpoints: [], samples: [] });
  });
});
