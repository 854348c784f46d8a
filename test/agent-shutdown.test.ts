// Stopping an agent process: SIGTERM (or SIGINT) lets running runs finish and claims nothing more;
// a second signal cancels what still runs; an idle agent leaves its long poll at once.
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { createExperiment, createStrategy } from './helpers/fixtures.js';
import { agentProcess, createDatasetAt, killAgentProcesses, runState, tempFolder, waitFor, waitForStatus, type AgentProcess } from './helpers/gpu-agent.js';
import { startTestServer, type TestServer } from './helpers/server.js';

describe.each(databaseKinds)('stopping an agent on %s', (kind) => {
  let t: TestServer;
  let root: string;
  let cleanup: () => Promise<void>;
  let ids: { experimentId: string; datasetId: string; captionStrategyId: string };
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    t = await startTestServer(kind, { leaseTtlSeconds: 6, reaperIntervalSeconds: 0.5 });
    ({ dir: root, cleanup } = await tempFolder('agent-stop'));
    const [experimentId, datasetId, captionStrategyId] = await Promise.all([
      createExperiment(t.admin),
      createDatasetAt(t.admin, path.join(root, 'dataset')),
      createStrategy(t.admin, { kind: 'TRIGGER_ONLY', triggerWord: 'p3r5on' }),
    ]);
    ids = { experimentId, datasetId, captionStrategyId };
  }, 180_000);
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') for (const a of agents) console.log(a.output());
    killAgentProcesses();
    agents.length = 0;
  });
  afterAll(async () => {
    await t?.stop();
    await cleanup?.();
  }, 180_000);

  async function queue(name: string, hyperparameters: Record<string, unknown>) {
    const { queueRun } = await t.admin.ok(`mutation($input: QueueRunInput!) { queueRun(input: $input) { id } }`, {
      input: { ...ids, name, hyperparameters },
    });
    return queueRun.id as string;
  }

  async function start(name: string, extra: string[] = []) {
    const key = await t.as('AGENT');
    const a = agentProcess(['--server', t.url, '--token', key.key!, '--work-dir', path.join(root, name), '--name', name, '--fake-trainer', ...extra]);
    agents.push(a);
    await waitFor(`${name} to register`, async () => a.output().includes('registered as agent'));
    return a;
  }

  it('an idle agent leaves its long poll at once on SIGTERM and exits 0', { timeout: 120_000 }, async () => {
    const a = await start('idle-box', ['--gpus', '0:Fake GPU:24000', '--claim-wait-seconds', '60']);
    a.child.kill('SIGTERM');
    let exited: { code: number | null } | null = null;
    void a.exited.then((e) => (exited = e));
    // Well before its 60 s claim would have ended on its own.
    await waitFor('the agent to exit', async () => exited !== null, 30_000);
    expect(exited).toEqual({ code: 0, signal: null });
    expect(a.output()).toContain('stopping');
  });

  it('the first SIGTERM lets running runs finish and claims no more; the second cancels the rest', { timeout: 180_000 }, async () => {
    const short = await queue('short', { steps: 60, saveEvery: 1000, sampleEvery: 1000, extra: { loralab_fake_trainer: { stepMs: 50 } } });
    const long = await queue('long', { steps: 5000, saveEvery: 1000, sampleEvery: 1000, extra: { loralab_fake_trainer: { stepMs: 20 } } });
    // Heartbeats at their default, a third of the 6 s lease.
    const a = await start('busy-box', ['--gpus', '0:Fake GPU:24000,1:Fake GPU:24000', '--concurrency', '2', '--claim-wait-seconds', '2', '--cancel-grace-seconds', '5']);
    for (const id of [short, long]) await waitFor('both training', async () => (await runState(t.admin, id)).lossSummary.points >= 3);
    // A heartbeat got through with the trainer's progress.
    await waitFor('progress', async () => (await runState(t.admin, long, 'progress { step totalSteps }')).progress?.totalSteps === 5000);

    a.child.kill('SIGTERM');
    await waitFor('draining', async () => a.output().includes('claiming no more runs'));
    const later = await queue('queued after the signal', { steps: 10 });
    expect(await waitForStatus(t.admin, short, ['SUCCEEDED', 'FAILED', 'CANCELLED'])).toMatchObject({ status: 'SUCCEEDED' });
    expect((await runState(t.admin, long)).status).toBe('RUNNING');
    expect(await runState(t.admin, later, 'status attempt')).toEqual({ status: 'QUEUED', attempt: 0 });
    const { agents: listed } = await t.admin.ok(`{ agents { name status } }`);
    expect(listed.find((x: any) => x.name === 'busy-box').status).toBe('DRAINING');
    expect(a.child.exitCode).toBeNull();

    a.child.kill('SIGTERM');
    expect(await waitForStatus(t.admin, long, ['SUCCEEDED', 'FAILED', 'CANCELLED'])).toMatchObject({ status: 'CANCELLED' });
    expect(await a.exited).toEqual({ code: 0, signal: null });
    expect(await runState(t.admin, later, 'status attempt')).toEqual({ status: 'QUEUED', attempt: 0 });
  });
});
