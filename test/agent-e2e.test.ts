// The GPU agent end to end: server + agent + fake trainer. The agent runs in this process (its
// trainer is a real child process); the fake trainer prints and writes what ai-toolkit does.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { parse } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { lossText } from '../agents/fake-trainer.js';
import { databaseKinds } from './helpers/databases.js';
import { createExperiment, createStrategy } from './helpers/fixtures.js';
import {
  agentConfig,
  agentInProcess,
  agentProcess,
  allLossPoints,
  createDatasetAt,
  isAlive,
  killAgentProcesses,
  runState,
  tempFolder,
  trainerPid,
  waitFor,
  waitForStatus,
  type InProcessAgent,
} from './helpers/gpu-agent.js';
import { collect, flatPoints, wsClient } from './helpers/live.js';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const steps = (n: number) => Array.from({ length: n }, (_, i) => i);

describe.each(databaseKinds)('the GPU agent on %s', (kind) => {
  let t: TestServer;
  let root: string;
  let cleanup: () => Promise<void>;
  let agentKey: GqlClient;
  let agent: InProcessAgent;
  let workDir: string;
  let experimentId: string;
  let datasetId: string;
  let strategyId: string;

  beforeAll(async () => {
    // Heartbeats every second against a 6 s lease: a cancel arrives within about a second, and a
    // busy machine can stall for seconds without losing a lease.
    t = await startTestServer(kind, { leaseTtlSeconds: 6, reaperIntervalSeconds: 0.5 });
    ({ dir: root, cleanup } = await tempFolder('agent-e2e'));
    workDir = path.join(root, 'work');
    agentKey = await t.as('AGENT');
    [experimentId, datasetId, strategyId] = await Promise.all([
      createExperiment(t.admin),
      createDatasetAt(t.admin, path.join(root, 'dataset')),
      createStrategy(t.admin, { kind: 'TRIGGER_ONLY', triggerWord: 'p3r5on' }),
    ]);
    agent = agentInProcess(
      agentConfig({
        server: t.url,
        token: agentKey.key,
        workDir,
        name: 'e2e-box',
        gpus: '0:Fake GPU:24000,1:Fake GPU:24000',
        concurrency: '2',
        heartbeatSeconds: '1',
        cancelGraceSeconds: '1',
      }),
    );
  }, 180_000);

  afterAll(async () => {
    agent?.stop();
    agent?.stop(); // and cancel whatever a failed test left running
    await agent?.done;
    await t?.stop();
    await cleanup?.();
  }, 180_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.log(agent.lines.join('\n'));
  });

  async function queue(hyperparameters: Record<string, unknown>, input: Record<string, unknown> = {}) {
    const { queueRun } = await t.admin.ok(`mutation($input: QueueRunInput!) { queueRun(input: $input) { id name } }`, {
      input: { experimentId, datasetId, captionStrategyId: strategyId, hyperparameters, ...input },
    });
    return queueRun as { id: string; name: string };
  }

  it('trains a queued run to SUCCEEDED, recording every loss point, checkpoint and sample, seen live by a runLoss subscriber', { timeout: 120_000 }, async () => {
    const total = 40;
    const prompts = ['[trigger] on a beach', 'a portrait of [trigger]'];
    const client = wsClient(t.url, t.admin.key);
    // One timeline of what a dashboard sees: loss batches and status changes, in arrival order.
    const seen: string[] = [];
    const run = await queue({
      steps: total,
      saveEvery: 10,
      sampleEvery: 10,
      checkpointsToKeep: 1,
      samplePrompts: prompts,
      seed: 7,
      extra: { loralab_fake_trainer: { stepMs: 40 } },
    });
    const loss = collect(client, `subscription($id: ID!) { runLoss(runId: $id, sinceStep: -1) { points { step loss } } }`, { id: run.id }, (d) => {
      seen.push('loss');
      return d.runLoss;
    });
    const updates = collect(client, `subscription($id: ID!) { runUpdated(runId: $id) { status } }`, { id: run.id }, (d) => {
      seen.push(d.runUpdated.status);
      return d.runUpdated;
    });

    const done = await waitForStatus(t.admin, run.id, ['SUCCEEDED', 'FAILED', 'CANCELLED']);
    expect(done).toMatchObject({ status: 'SUCCEEDED', attempt: 1, agent: { name: 'e2e-box' }, error: null });

    // Every step's loss, exactly as the trainer printed it, with the learning rate of its bar.
    const expected = steps(total).map((step) => ({ step, loss: Number(lossText(7, step, total)), lr: 4e-4 }));
    expect(await allLossPoints(t.admin, run.id)).toEqual(expected);
    const live = flatPoints(await loss.until((b) => flatPoints(b).length >= total));
    expect(live).toEqual(expected.map(({ step, loss }) => ({ step, loss })));
    await updates.until((u) => u.some((x) => x.status === 'SUCCEEDED'));
    // The subscriber had loss while the run was still training, not all of it at the end.
    expect(seen.indexOf('loss')).toBeLessThan(seen.indexOf('SUCCEEDED'));
    loss.stop();
    updates.stop();
    await client.dispose();

    // Saves at 10, 20, 30 keeping one: 10 and 20 were pruned, 30 stays, and the final one.
    const { run: detail } = await t.admin.ok(
      `query($id: ID!) { run(id: $id) {
        trainerConfig
        checkpoints { step path sizeBytes sha256 isFinal prunedAt }
        samples { step promptIndex prompt path }
        events(first: 100) { type }
      } }`,
      { id: run.id },
    );
    const outputDir = path.dirname(detail.checkpoints.find((c: any) => c.isFinal).path);
    expect(outputDir.startsWith(path.join(workDir, 'runs', run.id, 'output'))).toBe(true);
    expect(detail.checkpoints.map((c: any) => [c.step, c.isFinal, c.prunedAt !== null])).toEqual([
      [10, false, true],
      [20, false, true],
      [30, false, false],
      [40, true, false],
    ]);
    for (const c of detail.checkpoints.filter((c: any) => c.prunedAt === null)) {
      expect(c).toMatchObject({ sizeBytes: readFileSync(c.path).length, sha256: sha256(c.path) });
    }
    // Pruned files are gone from disk; they were hashed if the agent got to them before the trainer
    // removed them (with real ai-toolkit, hundreds of steps later).
    for (const c of detail.checkpoints.filter((c: any) => c.prunedAt !== null)) {
      expect(existsSync(c.path)).toBe(false);
      if (c.sha256 !== null) expect(c.sha256).toMatch(/^[0-9a-f]{64}$/);
    }

    // Baseline samples at 0, then every 10 steps, and at the end: each prompt at each, as the
    // sampler got it (the trigger word in place of [trigger]).
    const sampled = ['p3r5on on a beach', 'a portrait of p3r5on'];
    expect(detail.samples.map((s: any) => [s.step, s.promptIndex, s.prompt])).toEqual(
      [0, 10, 20, 30, 40].flatMap((step) => sampled.map((prompt, i) => [step, i, prompt])),
    );
    for (const s of detail.samples) {
      expect(existsSync(s.path)).toBe(true);
      expect(path.basename(s.path)).toMatch(new RegExp(`^\\d{13}__${String(s.step).padStart(9, '0')}_${s.promptIndex}\\.jpg$`));
    }
    const events = detail.events.map((e: any) => e.type).reverse();
    expect(events.filter((e: string) => ['QUEUED', 'CLAIMED', 'STARTED', 'SUCCEEDED'].includes(e))).toEqual(['QUEUED', 'CLAIMED', 'STARTED', 'SUCCEEDED']);
    expect(events.at(-1)).toBe('SUCCEEDED');

    // The staged dataset: the images linked, each with the trigger word as its caption.
    const staged = path.join(workDir, 'runs', run.id, 'dataset');
    for (const name of ['img0', 'img1', 'img2']) {
      expect(lstatSync(path.join(staged, `${name}.jpg`)).isSymbolicLink()).toBe(true);
      expect(readlinkSync(path.join(staged, `${name}.jpg`))).toBe(path.join(root, 'dataset', `${name}.jpg`));
      expect(readFileSync(path.join(staged, `${name}.txt`), 'utf8')).toBe('p3r5on');
    }
    // The trainer trained from the staged folder into the run's output folder.
    const written = parse(readFileSync(path.join(workDir, 'runs', run.id, 'attempt-1', 'config.yaml'), 'utf8'));
    expect(written.config.process[0].datasets[0].folder_path).toBe(staged);
    expect(written.config.process[0].training_folder).toBe(path.join(workDir, 'runs', run.id, 'output'));
  });

  it('trains a run whose trigger word and prompts a YAML 1.1 loader or ai-toolkit would misread, as typed', { timeout: 120_000 }, async () => {
    // `on` would be a boolean (the trainer fails on it), `${HOME}` the agent's home, `no` false.
    const onStrategy = await createStrategy(t.admin, { name: 'trigger on', kind: 'TRIGGER_ONLY', triggerWord: 'on' });
    const prompts = ['[trigger] in ${HOME}', 'no', '1:20'];
    const run = await queue(
      { steps: 12, saveEvery: 6, sampleEvery: 6, samplePrompts: prompts, extra: { loralab_fake_trainer: { stepMs: 5 } } },
      { captionStrategyId: onStrategy },
    );
    const done = await waitForStatus(t.admin, run.id, ['SUCCEEDED', 'FAILED', 'CANCELLED']);
    expect(done).toMatchObject({ status: 'SUCCEEDED', error: null });
    const { run: detail } = await t.admin.ok(`query($id: ID!) { run(id: $id) { samples { step promptIndex prompt } } }`, { id: run.id });
    // Sample.prompt is the prompt as the sampler got it.
    expect(detail.samples.filter((s: any) => s.step === 0).map((s: any) => s.prompt)).toEqual(['on in ${HOME}', 'no', '1:20']);
    expect(readFileSync(path.join(workDir, 'runs', run.id, 'dataset', 'img0.txt'), 'utf8')).toBe('on');
  });

  it('cancels a running run: the trainer gets SIGINT, stops, and the run ends CANCELLED', { timeout: 120_000 }, async () => {
    const run = await queue({ steps: 5000, saveEvery: 1000, sampleEvery: 1000, extra: { loralab_fake_trainer: { stepMs: 20 } } });
    await waitFor('loss points', async () => (await runState(t.admin, run.id)).lossSummary.points >= 5);
    const pid = await waitFor('the trainer pid', async () => trainerPid(workDir, run.id) ?? undefined);
    expect(isAlive(pid)).toBe(true);

    await t.admin.ok(`mutation($id: ID!) { cancelRun(id: $id) { status } }`, { id: run.id });
    const done = await waitForStatus(t.admin, run.id, ['CANCELLED', 'FAILED', 'SUCCEEDED']);
    expect(done).toMatchObject({ status: 'CANCELLED', error: null });
    expect(isAlive(pid)).toBe(false);
    // ai-toolkit's answer to SIGINT.
    expect(readFileSync(path.join(workDir, 'runs', run.id, 'attempt-1', 'trainer.log'), 'utf8')).toContain('Job stopped');
    const events = (await runState(t.admin, run.id, 'events(first: 100) { type }')).events.map((e: any) => e.type);
    expect(events).toContain('CANCEL_REQUESTED');
  });

  it('kills a trainer that ignores SIGINT once the grace period is over', { timeout: 120_000 }, async () => {
    const run = await queue({ steps: 5000, extra: { loralab_fake_trainer: { stepMs: 20, fail: 'hang', atStep: 3 } } });
    const pid = await waitFor('the trainer pid', async () => trainerPid(workDir, run.id) ?? undefined);
    await waitFor('the hang', async () => (await runState(t.admin, run.id)).lossSummary.points >= 3);
    await t.admin.ok(`mutation($id: ID!) { cancelRun(id: $id) { status } }`, { id: run.id });
    expect(await waitForStatus(t.admin, run.id, ['CANCELLED', 'FAILED'])).toMatchObject({ status: 'CANCELLED' });
    expect(isAlive(pid)).toBe(false);
    expect(agent.lines.some((l) => l.includes(run.id.slice(0, 8)) && l.includes('SIGKILL'))).toBe(true);
  });

  it('fails a run whose trainer runs out of memory with OUT_OF_MEMORY, the trainer’s message and its last lines', { timeout: 120_000 }, async () => {
    // ai-toolkit skips three batches that run out of memory and aborts on the fourth, in its own words.
    const run = await queue({ steps: 50, extra: { loralab_fake_trainer: { stepMs: 10, fail: 'oom', atStep: 4 } } });
    const done = await waitForStatus(t.admin, run.id, ['FAILED', 'SUCCEEDED', 'CANCELLED']);
    expect(done.status).toBe('FAILED');
    expect(done.error.code).toBe('OUT_OF_MEMORY');
    expect(done.error.message).toBe('OOM during training step 3 times in a row, aborting training');
    expect(done.error.logTail).toContain('# OOM during training step, skipping batch 3/3 #');
    expect(done.error.logTail).toContain('RuntimeError: OOM during training step 3 times in a row, aborting training');
    expect(done.error.logTail.split('\n').length).toBeLessThanOrEqual(100);
    // What it trained before failing is kept; the skipped steps have no loss.
    expect((await allLossPoints(t.admin, run.id)).map((p) => p.step)).toEqual(steps(4));
  });

  it('fails with MODEL_ACCESS when the base model is gated, and TRAINER_CRASHED when the trainer dies of a signal', { timeout: 120_000 }, async () => {
    const gated = await queue({ steps: 20, extra: { loralab_fake_trainer: { fail: 'gated' } } });
    const crashed = await queue({ steps: 50, extra: { loralab_fake_trainer: { stepMs: 10, fail: 'signal', signal: 'SIGSEGV', atStep: 5 } } });
    const [g, c] = await Promise.all([
      waitForStatus(t.admin, gated.id, ['FAILED', 'SUCCEEDED']),
      waitForStatus(t.admin, crashed.id, ['FAILED', 'SUCCEEDED']),
    ]);
    expect(g.error.code).toBe('MODEL_ACCESS');
    expect(g.error.message).toContain('Cannot access gated repo');
    expect(c.error).toMatchObject({ code: 'TRAINER_CRASHED', message: 'the trainer was killed by SIGSEGV' });
  });

  it('fails with DATASET_MISSING when the dataset folder or one of its images is not on this machine', { timeout: 120_000 }, async () => {
    const missingFolder = await createDatasetAt(t.admin, path.join(root, 'gone'));
    await t.server.db.orm.execute(sql`update datasets set uri = ${path.join(root, 'not-there')} where id = ${missingFolder}`);
    const partial = await createDatasetAt(t.admin, path.join(root, 'partial'), 3);
    const { rmSync } = await import('node:fs');
    rmSync(path.join(root, 'partial', 'img1.jpg'));
    const a = await queue({ steps: 20 }, { datasetId: missingFolder });
    const b = await queue({ steps: 20 }, { datasetId: partial });
    const [ra, rb] = await Promise.all([waitForStatus(t.admin, a.id, ['FAILED', 'SUCCEEDED']), waitForStatus(t.admin, b.id, ['FAILED', 'SUCCEEDED'])]);
    expect(ra.error.code).toBe('DATASET_MISSING');
    expect(ra.error.message).toContain(path.join(root, 'not-there'));
    expect(rb.error.code).toBe('DATASET_MISSING');
    expect(rb.error.message).toContain('img1.jpg');
  });

  it('refuses caption and image names that would escape the staging folder, and writes nothing outside it', { timeout: 120_000 }, async () => {
    // The server refuses such names when a dataset is created; a row written another way (an older
    // server, a hand edit) must still not make the agent write outside its folder.
    const dir = path.join(root, 'traversal');
    const id = await createDatasetAt(t.admin, dir, 2);
    await t.server.db.orm.execute(sql`update dataset_images set file_name = '../../escape.jpg' where dataset_id = ${id} and file_name = 'img1.jpg'`);
    const run = await queue({ steps: 20 }, { datasetId: id });
    const done = await waitForStatus(t.admin, run.id, ['FAILED', 'SUCCEEDED']);
    expect(done.error.code).toBe('UNSAFE_PATH');
    expect(done.error.message).toContain('"../../escape.jpg"');
    expect(existsSync(path.join(workDir, 'runs', 'escape.txt'))).toBe(false);
    expect(existsSync(path.join(workDir, 'runs', run.id, 'escape.txt'))).toBe(false);
    expect(existsSync(path.join(workDir, 'runs', run.id, 'dataset', 'img0.txt'))).toBe(false);
  });
});

describe.each(databaseKinds)('an agent started in an 80-column terminal on %s', (kind) => {
  let t: TestServer;
  let root: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    t = await startTestServer(kind, { leaseTtlSeconds: 6, reaperIntervalSeconds: 0.5 });
    ({ dir: root, cleanup } = await tempFolder('agent-columns'));
  }, 180_000);
  afterAll(async () => {
    killAgentProcesses();
    await t?.stop();
    await cleanup?.();
  }, 180_000);

  it('records every loss and ends at 60/60: the trainer never sees COLUMNS, LINES or TQDM_*', { timeout: 120_000 }, async () => {
    const key = await t.as('AGENT');
    const [experimentId, datasetId, captionStrategyId] = await Promise.all([
      createExperiment(t.admin),
      createDatasetAt(t.admin, path.join(root, 'dataset')),
      createStrategy(t.admin, { kind: 'TRIGGER_ONLY', triggerWord: 'p3r5on' }),
    ]);
    const { queueRun: run } = await t.admin.ok(`mutation($input: QueueRunInput!) { queueRun(input: $input) { id } }`, {
      input: {
        experimentId,
        datasetId,
        captionStrategyId,
        name: 'portrait of p3r5on at rank 32 with descriptive captions',
        // Steps as long as a GPU's on the bars' clock, so tqdm draws each step twice.
        hyperparameters: { steps: 60, saveEvery: 20, sampleEvery: 20, seed: 3, extra: { loralab_fake_trainer: { stepMs: 5, secondsPerStep: 2 } } },
      },
    });
    // What an ordinary terminal (or tmux) puts in the agent's environment.
    const agent = agentProcess(
      ['--server', t.url, '--token', key.key!, '--work-dir', path.join(root, 'work'), '--fake-trainer', '--gpus', '0:Fake GPU:24000', '--heartbeat-seconds', '1'],
      { COLUMNS: '80', LINES: '24', TQDM_NCOLS: '79', TQDM_DISABLE: '1' },
    );
    try {
      const done = await waitForStatus(t.admin, run.id, ['SUCCEEDED', 'FAILED', 'CANCELLED']);
      expect(done).toMatchObject({ status: 'SUCCEEDED', error: null });
      expect(await allLossPoints(t.admin, run.id)).toEqual(steps(60).map((step) => ({ step, loss: Number(lossText(3, step, 60)), lr: 4e-4 })));
      expect((await runState(t.admin, run.id, 'progress { step totalSteps }')).progress).toEqual({ step: 60, totalSteps: 60 });
      // The trainer drew whole lines: none was cut at 79 columns.
      const log = readFileSync(path.join(root, 'work', 'runs', run.id, 'attempt-1', 'trainer.log'), 'utf8');
      const bars = log.split(/[\r\n]/).filter((l) => l.includes('| 30/60 ['));
      expect(bars.length).toBeGreaterThan(0);
      expect(bars.every((l) => l.trimEnd().endsWith(']') && [...l.trimEnd()].length > 79)).toBe(true);
    } catch (err) {
      console.log(agent.output());
      throw err;
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });
});

describe.each(databaseKinds)('the trainer command on %s', (kind) => {
  let t: TestServer;
  let root: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    t = await startTestServer(kind, { leaseTtlSeconds: 6, reaperIntervalSeconds: 0.5 });
    ({ dir: root, cleanup } = await tempFolder('agent-cmd'));
  }, 180_000);
  afterAll(async () => {
    await t?.stop();
    await cleanup?.();
  }, 180_000);

  it('runs in the ai-toolkit folder with the config’s absolute path last, its GPU, HF_TOKEN and PYTHONUNBUFFERED, no terminal size, and no shell', { timeout: 120_000 }, async () => {
    const aiToolkit = path.join(root, 'ai-toolkit');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(aiToolkit);
    const script = path.resolve('test/agents/fixtures/record-trainer.mjs');
    const key = await t.as('AGENT');
    const [experimentId, datasetId, captionStrategyId] = await Promise.all([
      createExperiment(t.admin),
      createDatasetAt(t.admin, path.join(root, 'dataset')),
      createStrategy(t.admin, { kind: 'NONE', name: 'none' }),
    ]);
    const { queueRun: run } = await t.admin.ok(`mutation($input: QueueRunInput!) { queueRun(input: $input) { id } }`, {
      input: { experimentId, datasetId, captionStrategyId, hyperparameters: { steps: 10 } },
    });
    const agent = agentInProcess(
      agentConfig({
        server: `${t.url}/graphql`,
        token: key.key,
        workDir: path.join(root, 'work'),
        fakeTrainer: false,
        aiToolkit,
        gpus: '3:Fake GPU:24000',
        trainerCommand: `"${process.execPath}" ${script} '$(touch pwned)' "two words"`,
        hfToken: 'hf_from_the_agent',
      }),
      { ...process.env, PYTHONUNBUFFERED: '0', COLUMNS: '80', LINES: '24', TQDM_NCOLS: '79', TQDM_MININTERVAL: '5' },
    );
    // It timed out once on a busy machine, without a trace: the agent's own account, if it fails again.
    onTestFailed(() => console.log(agent.lines.join('\n')));
    try {
      const done = await waitForStatus(t.admin, run.id, ['FAILED', 'SUCCEEDED']);
      // The stand-in fails like ai-toolkit does on an OOM.
      expect(done.error).toMatchObject({ code: 'OUT_OF_MEMORY', message: 'CUDA out of memory. Tried to allocate 20.00 MiB' });
      const configPath = path.join(root, 'work', 'runs', run.id, 'attempt-1', 'config.yaml');
      const started = JSON.parse(readFileSync(`${configPath}.started.json`, 'utf8'));
      expect(started).toEqual({
        argv: ['$(touch pwned)', 'two words', configPath],
        cwd: aiToolkit,
        // Nothing that would size or change tqdm's bar: the agent's terminal is not the trainer's.
        env: { CUDA_VISIBLE_DEVICES: '3', CUDA_DEVICE_ORDER: 'PCI_BUS_ID', HF_TOKEN: 'hf_from_the_agent', PYTHONUNBUFFERED: '1' },
      });
      expect(existsSync(path.join(aiToolkit, 'pwned'))).toBe(false);
      // NONE: no caption files staged.
      expect(existsSync(path.join(root, 'work', 'runs', run.id, 'dataset', 'img0.txt'))).toBe(false);
    } finally {
      agent.stop();
      expect(await agent.done).toBe(0);
    }
  });
});

describe.each(databaseKinds)('the docker compose demo agent on %s', (kind) => {
  let t: TestServer;
  let root: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    t = await startTestServer(kind, { leaseTtlSeconds: 6, reaperIntervalSeconds: 0.5 });
    ({ dir: root, cleanup } = await tempFolder('agent-demo'));
  }, 180_000);
  afterAll(async () => {
    killAgentProcesses();
    await t?.stop();
    await cleanup?.();
  }, 180_000);

  it('makes itself an AGENT key with the admin key, queues one demo run and trains it', { timeout: 120_000 }, async () => {
    const env = {
      LORALAB_SERVER: t.url,
      LORALAB_ADMIN_KEY: t.admin.key!,
      LORALAB_TOKEN: '',
      LORALAB_AGENT_NAME: 'demo-agent',
      LORALAB_FAKE_TRAINER: 'true',
      LORALAB_GPUS: '0:Fake GPU:24000',
      LORALAB_WORK_DIR: path.join(root, 'work'),
      FAKE_STEP_MS: '2',
    };
    const demo = agentProcess([], env, 'agents/demo.ts');
    try {
      const run = await waitFor('the demo run', async () => {
        const { runs } = await t.admin.ok(`{ runs(first: 5) { edges { node { id name status } } } }`);
        return runs.edges.map((e: any) => e.node).find((r: any) => r.name === 'demo: p3r5on concept' && r.status === 'SUCCEEDED');
      });
      expect((await runState(t.admin, run.id)).lossSummary.points).toBe(600);
      demo.child.kill('SIGTERM');
      expect((await demo.exited).code).toBe(0);
      // Started again (a container restart): the same agent, and the same run, not a second one.
      const again = agentProcess([], env, 'agents/demo.ts');
      await waitFor('the agent to register again', async () => again.output().includes('waiting for runs'));
      again.child.kill('SIGTERM');
      expect((await again.exited).code).toBe(0);
      const { agents, runs } = await t.admin.ok(`{ agents { name } runs { totalCount } }`);
      expect(agents.map((a: any) => a.name)).toEqual(['demo-agent']);
      expect(runs.totalCount).toBe(1);
    } catch (err) {
      console.log(demo.output());
      throw err;
    }
  });
});
