// Resume anywhere, and train on from any checkpoint, end to end: server + real agents + the fake
// trainer (which resumes as ai-toolkit does, from the newest save in its training folder). An agent
// killed with kill -9 after a stored checkpoint: another agent, whose work folder is empty, claims
// the requeued run, fetches the checkpoint and its optimizer state from the store and trains on
// from that step. continueRun trains a finished run further from its final checkpoint.
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expireLease, registerAgent } from './helpers/agents.js';
import { databaseKinds } from './helpers/databases.js';
import { createBasics, createExperiment, createStrategy, queueRun, type Basics } from './helpers/fixtures.js';
import { uploadRunFile } from './helpers/uploads.js';
import {
  agentConfig,
  agentInProcess,
  agentProcess,
  allLossPoints,
  createDatasetAt,
  killAgentProcesses,
  runState,
  tempFolder,
  trainerPid,
  waitFor,
  waitForStatus,
  type InProcessAgent,
} from './helpers/gpu-agent.js';
import { motoInstalled, startMoto, type Moto } from './helpers/moto.js';
import { startTestServer, testConfig, type GqlClient, type TestServer } from './helpers/server.js';

const LEASE_TTL_SECONDS = 30;
const HOURLY_COST = 3.6; // USD: one GPU-second costs a thousandth of a dollar
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const CONTINUE = `mutation($r: ID!, $c: ID, $s: Int!) { continueRun(runId: $r, checkpointId: $c, steps: $s) { id status parent { id } resumedFrom { id step run { id } } hyperparameters { steps } } }`;
const AFTER = `id status attempt gpuSeconds costUsd startedAt finishedAt resumedSteps resumedFrom { step run { id } }
  events(first: 100) { type message data } checkpoints { step isFinal } artifacts(kind: TRAINER_LOG) { url }`;

async function download(url: string) {
  const res = await fetch(url);
  expect(res.status, url).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

const drivers = ['file', 's3'] as const;
const cases = databaseKinds.flatMap((kind) => drivers.map((driver) => [kind, driver] as const));

describe.each(cases)('resuming on %s with the %s store', (kind, driver) => {
  const skip = driver === 's3' && !motoInstalled;
  let t: TestServer;
  let moto: Moto | null = null;
  let root: string;
  let cleanup: () => Promise<void>;
  let agentKey: GqlClient;
  let experimentId: string;
  let strategyId: string;
  let agentB: InProcessAgent | null = null;

  beforeAll(async () => {
    if (skip) return;
    ({ dir: root, cleanup } = await tempFolder(`resume-${driver}`));
    if (driver === 's3') moto = await startMoto();
    const defaults = testConfig().artifacts;
    t = await startTestServer(kind, {
      leaseTtlSeconds: LEASE_TTL_SECONDS,
      reaperIntervalSeconds: 0.5,
      retryBackoffSeconds: 0,
      artifacts: {
        ...defaults,
        ...(moto ? { store: { kind: 's3', bucket: moto.bucket, prefix: `resume-${randomBytes(4).toString('hex')}` }, s3Endpoint: moto.endpoint, s3ForcePathStyle: true } : {}),
      },
    });
    agentKey = await t.as('AGENT');
    [experimentId, strategyId] = await Promise.all([createExperiment(t.admin), createStrategy(t.admin, { kind: 'TRIGGER_ONLY', triggerWord: 'p3r5on' })]);
  }, 120_000);

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail' && agentB) console.log(agentB.lines.join('\n'));
    killAgentProcesses();
    agentB?.stop();
    agentB?.stop();
    await agentB?.done;
    agentB = null;
  });

  afterAll(async () => {
    await t?.stop();
    await moto?.stop();
    await cleanup?.();
  }, 120_000);

  /**
   * A 60-step run (saves at 20 and 40) whose trainer hangs at step 50 when it started from scratch;
   * agent A, a process of its own, trains it until its step-40 checkpoint and optimizer state are
   * stored, then dies with kill -9 (its trainer too, as when the machine goes).
   */
  async function runKilledAfterStep40(name: string) {
    const dir = path.join(root, name);
    const datasetId = await createDatasetAt(t.admin, path.join(dir, 'dataset'));
    const { queueRun: run } = await t.admin.ok(`mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`, {
      i: {
        experimentId,
        datasetId,
        captionStrategyId: strategyId,
        hyperparameters: { steps: 60, saveEvery: 20, sampleEvery: 1000, checkpointsToKeep: 5, extra: { loralab_fake_trainer: { stepMs: 15, fail: 'hang', atStep: 50, fromScratchOnly: true } } },
      },
    });
    const workA = path.join(dir, 'work-a');
    const a = agentProcess([
      '--server', t.url, '--token', agentKey.key!, '--work-dir', workA, '--name', `a-${name}`, '--fake-trainer',
      '--gpus', '0:Fake GPU:24000', '--heartbeat-seconds', '1', '--claim-wait-seconds', '2', '--hourly-cost', String(HOURLY_COST),
    ]);
    await waitFor('the step-40 checkpoint and its optimizer state stored, and the trainer past step 45', async () => {
      const state = await runState(t.admin, run.id, 'lossSummary { lastStep } artifacts { kind step stored }');
      const stored = (kind: string) => state.artifacts.some((x: any) => x.kind === kind && x.step === 40 && x.stored);
      return stored('CHECKPOINT') && stored('OPTIMIZER_STATE') && state.lossSummary.lastStep >= 45;
    }, 90_000, 100);
    const trainer = trainerPid(workA, run.id);
    a.child.kill('SIGKILL');
    await a.exited;
    if (trainer) process.kill(-trainer, 'SIGKILL');
    const killed = await runState(t.admin, run.id, 'status attempt startedAt');
    expect(killed).toMatchObject({ status: 'RUNNING', attempt: 1 });
    return { runId: run.id as string, startedA: new Date(killed.startedAt).getTime(), killedAt: Date.now() };
  }

  /**
   * Agent A stopped heartbeating: as if all of it had happened one lease earlier (its lease, start and
   * claim moved back together), so the lease has run out and the attempt's GPU time is what it was.
   * The reaper requeues the run.
   */
  async function leaseRunsOut(runId: string) {
    await t.server.db.orm.execute(sql`update runs set
      lease_expires_at = lease_expires_at - make_interval(secs => ${LEASE_TTL_SECONDS}),
      started_at = started_at - make_interval(secs => ${LEASE_TTL_SECONDS}),
      claimed_at = claimed_at - make_interval(secs => ${LEASE_TTL_SECONDS})
      where id = ${runId}`);
    return waitFor('the run requeued', async () => {
      const r = await runState(t.admin, runId, 'status gpuSeconds costUsd');
      return r.status === 'QUEUED' ? r : undefined;
    });
  }

  const startAgentB = (name: string) => {
    agentB = agentInProcess(
      agentConfig({ server: t.url, token: agentKey.key, workDir: path.join(root, name, 'work-b'), name: `b-${name}`, heartbeatSeconds: '1', hourlyCost: String(HOURLY_COST) }),
    );
    return agentB;
  };

  let finishedRun: string | null = null;

  it.skipIf(skip)(
    'kill -9 after the step-40 checkpoint: an agent with an empty work folder resumes the requeued run at step 40 with its optimizer state',
    { timeout: 180_000 },
    async () => {
      const { runId, startedA, killedAt } = await runKilledAfterStep40('with-optimizer');
      const requeued = await leaseRunsOut(runId);
      // Attempt 1's GPU time (from its start to its last heartbeat) is counted already.
      expect(requeued.gpuSeconds).toBeGreaterThan(0);
      expect(requeued.gpuSeconds).toBeLessThanOrEqual((killedAt - startedA) / 1000 + 0.5);
      expect(requeued.gpuSeconds).toBeGreaterThanOrEqual((killedAt - startedA) / 1000 - 2.5);

      const b = startAgentB('with-optimizer');
      const done = await waitForStatus(t.admin, runId, ['SUCCEEDED', 'FAILED', 'CANCELLED']);
      expect(done).toMatchObject({ status: 'SUCCEEDED', attempt: 2, error: null });
      const run = await runState(t.admin, runId, AFTER);
      expect(run.resumedFrom).toEqual({ step: 40, run: { id: runId } });
      expect(run.resumedSteps).toBe(40);
      const resumed = run.events.filter((e: any) => e.type === 'RESUMED');
      expect(resumed).toHaveLength(1);
      expect(resumed[0].data).toMatchObject({ fromStep: 40, attempt: 2, weightsOnly: false });
      // The trainer says it started at step 40, with the optimizer state beside the checkpoint.
      const log = (await download(run.artifacts[0].url)).toString('utf8');
      expect(log).toMatch(/#### IMPORTANT RESUMING FROM .*_000000040\.safetensors ####/);
      expect(log).toContain('Found step 40 in metadata, starting from there');
      expect(log).toMatch(/Loading optimizer state from .*optimizer\.pt/);
      expect(b.lines.some((l) => l.includes('resuming from step 40 (weights and optimizer state)'))).toBe(true);
      // Every step's loss exactly once: 0..39 from attempt 1, 40..59 from attempt 2.
      expect((await allLossPoints(t.admin, runId)).map((p) => p.step)).toEqual(range(0, 60));
      // The placed checkpoint was not reported again as one this attempt saved.
      expect(run.checkpoints.map((c: any) => [c.step, c.isFinal])).toEqual([[20, false], [40, false], [60, true]]);
      // Both attempts are paid for: attempt 1 as counted at the requeue, attempt 2 from its start to its end.
      const attempt2 = (new Date(run.finishedAt).getTime() - new Date(run.startedAt).getTime()) / 1000;
      expect(run.gpuSeconds).toBeCloseTo(requeued.gpuSeconds + attempt2, 0);
      expect(run.costUsd).toBeCloseTo((run.gpuSeconds / 3600) * HOURLY_COST, 6);
      finishedRun = runId;
    },
  );

  it.skipIf(skip)('the same with the optimizer state gone: the resume is weights-only, and the run events say so', { timeout: 180_000 }, async () => {
    const { runId } = await runKilledAfterStep40('weights-only');
    // Retention dropped the optimizer state's bytes (the record stays, pruned).
    await t.server.db.orm.execute(sql`update artifacts set pruned_at = now() where run_id = ${runId} and kind = 'OPTIMIZER_STATE'`);
    await leaseRunsOut(runId);
    startAgentB('weights-only');
    expect(await waitForStatus(t.admin, runId, ['SUCCEEDED', 'FAILED', 'CANCELLED'])).toMatchObject({ status: 'SUCCEEDED', attempt: 2, error: null });
    const run = await runState(t.admin, runId, AFTER);
    expect(run.resumedFrom.step).toBe(40);
    const resumed = run.events.find((e: any) => e.type === 'RESUMED');
    expect(resumed.data).toMatchObject({ fromStep: 40, weightsOnly: true });
    expect(resumed.message).toContain('weights only');
    const log = (await download(run.artifacts[0].url)).toString('utf8');
    expect(log).toContain('Found step 40 in metadata, starting from there');
    expect(log).not.toContain('Loading optimizer state');
    expect((await allLossPoints(t.admin, runId)).map((p) => p.step)).toEqual(range(0, 60));
  });

  it.skipIf(skip)('continueRun trains a finished 60-step run on to 80 steps from its final checkpoint, as a new run linked to it', { timeout: 180_000 }, async () => {
    expect(finishedRun, 'the first test finished a run').not.toBeNull();
    const parentId = finishedRun!;
    const editor = await t.as('EDITOR');
    const { continueRun: child } = await editor.ok(CONTINUE, { r: parentId, s: 80 });
    expect(child).toMatchObject({ status: 'QUEUED', parent: { id: parentId }, resumedFrom: { step: 60, run: { id: parentId } }, hyperparameters: { steps: 80 } });
    startAgentB('continued');
    expect(await waitForStatus(t.admin, child.id, ['SUCCEEDED', 'FAILED', 'CANCELLED'])).toMatchObject({ status: 'SUCCEEDED', attempt: 1, error: null });
    const run = await runState(t.admin, child.id, `${AFTER} parent { id continuations { id } }`);
    expect(run.parent).toEqual({ id: parentId, continuations: [{ id: child.id }] });
    expect(run.resumedFrom).toEqual({ step: 60, run: { id: parentId } });
    expect(run.events.find((e: any) => e.type === 'RESUMED').data).toMatchObject({ fromStep: 60, checkpointRunId: parentId, weightsOnly: false });
    const log = (await download(run.artifacts[0].url)).toString('utf8');
    expect(log).toContain('Found step 60 in metadata, starting from there');
    // Its loss continues the parent's steps; the parent's points stay the parent's.
    expect((await allLossPoints(t.admin, child.id)).map((p) => p.step)).toEqual(range(60, 80));
    expect((await allLossPoints(t.admin, parentId)).map((p) => p.step)).toEqual(range(0, 60));
    // Only what it trained itself: the parent's checkpoint it started from is not listed as its own.
    expect(run.checkpoints.map((c: any) => [c.step, c.isFinal])).toEqual([[80, true]]);
    // Its final checkpoint is a real continuation: ai-toolkit's metadata says step 80.
    const { run: withUrl } = await t.admin.ok(`query($id: ID!) { run(id: $id) { checkpoints { downloadUrl sha256 } } }`, { id: child.id });
    const bytes = await download(withUrl.checkpoints[0].downloadUrl);
    expect(sha256(bytes)).toBe(withUrl.checkpoints[0].sha256);
    const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'));
    expect(JSON.parse(header.__metadata__.training_info).step).toBe(80);
  });

  it.skipIf(skip)('continueRun refuses a checkpoint without stored bytes, one of another run, and steps not past the checkpoint, writing nothing', { timeout: 60_000 }, async () => {
    expect(finishedRun, 'the first test finished a run').not.toBeNull();
    const parentId = finishedRun!;
    const editor = await t.as('EDITOR');
    const { run } = await t.admin.ok(`query($id: ID!) { run(id: $id) { checkpoints { id step isFinal } } }`, { id: parentId });
    const byStep = (step: number) => run.checkpoints.find((c: any) => c.step === step).id as string;
    // Retention drops step 20 and 40 (the final one always stays).
    await editor.ok(`mutation($r: ID!) { pruneArtifacts(runId: $r, keep: 1) { pruned { step } } }`, { r: parentId });
    const countRuns = async () => (await t.admin.ok(`{ runs(first: 1) { totalCount } }`)).runs.totalCount as number;
    const before = await countRuns();
    await editor.fails('BAD_USER_INPUT', CONTINUE, { r: parentId, c: byStep(20), s: 80 }, 'checkpointId');
    await editor.fails('BAD_USER_INPUT', CONTINUE, { r: parentId, s: 60 }, 'steps');
    await editor.fails('BAD_USER_INPUT', CONTINUE, { r: parentId, c: byStep(60), s: 30 }, 'steps');
    const { runs } = await t.admin.ok(`{ runs(first: 50) { edges { node { id checkpoints { id } } } } }`);
    const otherCheckpoint = runs.edges.find((e: any) => e.node.id !== parentId && e.node.checkpoints.length > 0).node.checkpoints[0].id;
    await editor.fails('BAD_USER_INPUT', CONTINUE, { r: parentId, c: otherCheckpoint, s: 100 }, 'checkpointId');
    await (await t.as('VIEWER')).fails('FORBIDDEN', CONTINUE, { r: parentId, s: 100 });
    expect(await countRuns()).toBe(before);
  });
});

describe.each(databaseKinds)('what a claim hands over to resume from, on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600, retryBackoffSeconds: 0 });
    basics = await createBasics(t.admin);
  });
  afterAll(() => t?.stop());

  const CLAIM = `mutation($id: ID!) { claimRun(agentId: $id) { leaseToken attempt run { id resumedFrom { step } }
    resume { step checkpoint { id step } checkpointUrl checkpointSha256 checkpointSizeBytes optimizerStateUrl optimizerStateSha256 optimizerStateSizeBytes } } }`;
  const REPORT_CHECKPOINT = `mutation($r: ID!, $t: String!, $i: CheckpointInput!) { reportCheckpoint(runId: $r, leaseToken: $t, input: $i) { id } }`;

  /** The run's lease lapses and the reaper requeues it. */
  async function requeue(runId: string) {
    await expireLease(t, runId);
    expect(await t.server.reaper.sweep()).toBe(1);
  }

  it('the newest checkpoint whose bytes are stored, with signed URLs for it and its optimizer state; nothing stored: from scratch', async () => {
    const agent = await registerAgent(t);
    const run = await queueRun(t.admin, basics, { hyperparameters: { steps: 100, saveEvery: 20 } });
    const first = await agent.client.ok(CLAIM, { id: agent.id });
    expect(first.claimRun).toMatchObject({ attempt: 1, resume: null, run: { resumedFrom: null } });
    const token = first.claimRun.leaseToken;
    const weights = { 20: randomBytes(3000), 40: randomBytes(3000) };
    const optimizerState = randomBytes(5000);
    for (const step of [20, 40]) {
      await agent.client.ok(REPORT_CHECKPOINT, { r: run.id, t: token, i: { step, path: `/out/lora_${step}.safetensors` } });
    }
    await uploadRunFile(agent.client, run.id, token, weights[20], { kind: 'CHECKPOINT', fileName: 'lora_000000020.safetensors', step: 20 });
    await uploadRunFile(agent.client, run.id, token, optimizerState, { kind: 'OPTIMIZER_STATE', fileName: 'optimizer.pt', step: 20 });
    // Step 40's bytes never reached the store: it cannot be resumed from.
    await requeue(run.id);

    const second = (await agent.client.ok(CLAIM, { id: agent.id })).claimRun;
    expect(second).toMatchObject({ attempt: 2, run: { resumedFrom: { step: 20 } } });
    expect(second.resume).toMatchObject({
      step: 20,
      checkpoint: { step: 20 },
      checkpointSha256: createHash('sha256').update(weights[20]).digest('hex'),
      checkpointSizeBytes: 3000,
      optimizerStateSha256: createHash('sha256').update(optimizerState).digest('hex'),
      optimizerStateSizeBytes: 5000,
    });
    expect(await download(second.resume.checkpointUrl)).toEqual(weights[20]);
    expect(await download(second.resume.optimizerStateUrl)).toEqual(optimizerState);
    const { run: after } = await t.admin.ok(`query($id: ID!) { run(id: $id) { resumedSteps events(first: 10) { type data } } }`, { id: run.id });
    expect(after.resumedSteps).toBe(20);
    expect(after.events.filter((e: any) => e.type === 'RESUMED').map((e: any) => e.data)).toEqual([
      { fromStep: 20, attempt: 2, weightsOnly: false, checkpointId: second.resume.checkpoint.id, checkpointRunId: run.id },
    ]);

    // Step 40 stored now, without its optimizer state: the next attempt resumes from it, weights only.
    await uploadRunFile(agent.client, run.id, second.leaseToken, weights[40], { kind: 'CHECKPOINT', fileName: 'lora_000000040.safetensors', step: 40 });
    await requeue(run.id);
    const third = (await agent.client.ok(CLAIM, { id: agent.id })).claimRun;
    expect(third.resume).toMatchObject({ step: 40, optimizerStateUrl: null, optimizerStateSha256: null });
    expect(await download(third.resume.checkpointUrl)).toEqual(weights[40]);
    const { run: last } = await t.admin.ok(`query($id: ID!) { run(id: $id) { resumedSteps events(first: 1) { type message data } } }`, { id: run.id });
    expect(last.resumedSteps).toBe(60);
    expect(last.events[0]).toMatchObject({ type: 'RESUMED', data: { fromStep: 40, weightsOnly: true } });
    expect(last.events[0].message).toContain('weights only');
  });
});
