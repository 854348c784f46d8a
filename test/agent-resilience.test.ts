// The agent when things go wrong around it: the agent process is killed, the server goes away for a
// while, an agent restarts with reports its predecessor could not send. Agents run as child
// processes here (`node --import tsx agents/cli.ts …`), as `npm run agent` runs them, except where
// a test needs to look inside one.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { lossText } from '../agents/fake-trainer.js';
import { Spool } from '../agents/spool.js';
import { startServer, type RunningServer } from '../src/server.js';
import { registerAgent } from './helpers/agents.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from './helpers/databases.js';
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
  type AgentProcess,
} from './helpers/gpu-agent.js';
import { GqlClient, startTestServer, testConfig, type TestServer } from './helpers/server.js';

const steps = (n: number) => Array.from({ length: n }, (_, i) => i);
const expectedLoss = (seed: number, total: number) => steps(total).map((step) => ({ step, loss: Number(lossText(seed, step, total)), lr: 4e-4 }));

async function queueRun(admin: GqlClient, datasetDir: string, hyperparameters: Record<string, unknown>) {
  const [experimentId, datasetId, captionStrategyId] = await Promise.all([
    createExperiment(admin),
    createDatasetAt(admin, datasetDir),
    createStrategy(admin, { kind: 'TRIGGER_ONLY', triggerWord: 'p3r5on' }),
  ]);
  const { queueRun } = await admin.ok(`mutation($input: QueueRunInput!) { queueRun(input: $input) { id } }`, {
    input: { experimentId, datasetId, captionStrategyId, hyperparameters },
  });
  return { id: queueRun.id as string, experimentId, datasetId, captionStrategyId };
}

/**
 * Moves attempt `attempt`'s lease into the past until the reaper has requeued the run. The leases
 * themselves are long (60 s), so a machine slowed by the rest of the suite never loses one by
 * accident; and a heartbeat the agent had in flight when it stopped may still land and extend the
 * lease once, hence the loop. Only that attempt's lease: the next agent's stays untouched.
 */
async function outliveLease(t: TestServer, runId: string, attempt: number) {
  await waitFor(`attempt ${attempt}'s lease to be reaped`, async () => {
    await t.server.db.orm.execute(
      sql`update runs set lease_expires_at = now() - interval '1 second' where id = ${runId} and attempt = ${attempt} and lease_expires_at > now()`,
    );
    const run = await runState(t.admin, runId, 'status attempt');
    return run.attempt > attempt || run.status === 'QUEUED';
  });
}

const agentArgs = (server: string, token: string, workDir: string, name: string) => [
  '--server', server, '--token', token, '--work-dir', workDir, '--name', name,
  '--fake-trainer', '--gpus', '0:Fake GPU:24000', '--heartbeat-seconds', '1', '--claim-wait-seconds', '2',
];

describe.each(databaseKinds)('agent resilience on %s', (kind) => {
  let root: string;
  let cleanup: () => Promise<void>;
  const agents: AgentProcess[] = [];
  beforeAll(async () => {
    ({ dir: root, cleanup } = await tempFolder('agent-resilience'));
  }, 180_000);
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail' || process.env.AGENT_TEST_OUTPUT) for (const a of agents) console.log(a.output());
    killAgentProcesses();
    agents.length = 0;
  });
  afterAll(() => cleanup?.());

  function startAgentProcess(args: string[]) {
    const a = agentProcess(args);
    agents.push(a);
    return a;
  }

  it('kill -9 of an agent mid-run: the lease expires, the run is queued again and a second agent completes it', { timeout: 180_000 }, async () => {
    const t: TestServer = await startTestServer(kind, { leaseTtlSeconds: 60, reaperIntervalSeconds: 0.5, retryBackoffSeconds: 0 });
    try {
      const dir = path.join(root, 'kill9');
      const run = await queueRun(t.admin, path.join(dir, 'dataset'), {
        steps: 50,
        saveEvery: 20,
        sampleEvery: 1000,
        seed: 3,
        extra: { loralab_fake_trainer: { stepMs: 100 } },
      });
      const [keyA, keyB] = await Promise.all([t.as('AGENT'), t.as('AGENT')]);
      const a = startAgentProcess(agentArgs(t.url, keyA.key!, path.join(dir, 'a'), 'box-a'));
      await waitFor('box-a training', async () => (await runState(t.admin, run.id)).lossSummary.points >= 5);
      const trainer = trainerPid(path.join(dir, 'a'), run.id)!;

      a.child.kill('SIGKILL');
      expect(await a.exited).toEqual({ code: null, signal: 'SIGKILL' });
      // The machine is gone, and its trainer with it.
      process.kill(-trainer, 'SIGKILL');
      await outliveLease(t, run.id, 1);

      const b = startAgentProcess(agentArgs(t.url, keyB.key!, path.join(dir, 'b'), 'box-b'));
      const done = await waitForStatus(t.admin, run.id, ['SUCCEEDED', 'FAILED', 'CANCELLED']);
      expect(done).toMatchObject({ status: 'SUCCEEDED', attempt: 2, agent: { name: 'box-b' }, error: null });
      expect(await allLossPoints(t.admin, run.id)).toEqual(expectedLoss(3, 50));
      const { events, checkpoints } = await runState(t.admin, run.id, 'events(first: 100) { type } checkpoints { step isFinal path }');
      expect(events.map((e: any) => e.type).reverse()).toEqual(
        expect.arrayContaining(['CLAIMED', 'STARTED', 'LEASE_EXPIRED', 'SUCCEEDED']),
      );
      const final = checkpoints.find((c: any) => c.isFinal);
      expect(final.step).toBe(50);
      expect(final.path.startsWith(path.join(dir, 'b'))).toBe(true);

      b.child.kill('SIGTERM');
      expect((await b.exited).code).toBe(0);
    } finally {
      await t.stop();
    }
  });

  it('an agent that stalled past its lease learns LEASE_LOST when it wakes: it kills its trainer and completes nothing', { timeout: 180_000 }, async () => {
    const t: TestServer = await startTestServer(kind, { leaseTtlSeconds: 60, reaperIntervalSeconds: 0.5, retryBackoffSeconds: 0 });
    try {
      const dir = path.join(root, 'zombie');
      const run = await queueRun(t.admin, path.join(dir, 'dataset'), { steps: 5000, saveEvery: 1000, sampleEvery: 1000, extra: { loralab_fake_trainer: { stepMs: 20 } } });
      const [keyA, keyB] = await Promise.all([t.as('AGENT'), t.as('AGENT')]);
      const a = startAgentProcess(agentArgs(t.url, keyA.key!, path.join(dir, 'a'), 'box-a'));
      await waitFor('box-a training', async () => (await runState(t.admin, run.id)).lossSummary.points >= 5);
      const trainer = trainerPid(path.join(dir, 'a'), run.id)!;

      // box-a stops answering (a stalled VM, a debugger): its lease runs out and box-b takes the run.
      a.child.kill('SIGSTOP');
      await outliveLease(t, run.id, 1);
      const b = startAgentProcess(agentArgs(t.url, keyB.key!, path.join(dir, 'b'), 'box-b'));
      await waitFor('box-b to hold the run', async () => {
        const r = await runState(t.admin, run.id);
        return r.attempt === 2 && r.agent?.name === 'box-b' && r.status === 'RUNNING';
      });
      a.child.kill('SIGCONT');
      await waitFor('box-a to learn it lost the lease', async () => a.output().includes('lease lost'));
      await waitFor('box-a’s trainer to be killed', async () => !isAlive(trainer));
      expect(await runState(t.admin, run.id, 'status attempt')).toEqual({ status: 'RUNNING', attempt: 2 });

      await t.admin.ok(`mutation($id: ID!) { cancelRun(id: $id) { status } }`, { id: run.id });
      expect(await waitForStatus(t.admin, run.id, ['CANCELLED', 'FAILED', 'SUCCEEDED'])).toMatchObject({ status: 'CANCELLED', attempt: 2, agent: { name: 'box-b' } });
      // One ending only: box-b's. box-a completed nothing.
      const { events } = await runState(t.admin, run.id, 'events(first: 100) { type }');
      expect(events.map((e: any) => e.type).filter((type: string) => ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(type))).toEqual(['CANCELLED']);
      expect(a.output()).not.toMatch(/attempt 1: (SUCCEEDED|FAILED|CANCELLED)/);

      for (const agent of [a, b]) agent.child.kill('SIGTERM');
      expect((await a.exited).code).toBe(0);
      expect((await b.exited).code).toBe(0);
    } finally {
      await t.stop();
    }
  });

  it('keeps training while the server is down for 5 s and sends everything when it is back: no loss point missing', { timeout: 180_000 }, async () => {
    const database: TestDatabase = await createTestDatabase(kind);
    const config = testConfig({ leaseTtlSeconds: 30, reaperIntervalSeconds: 0.5 });
    const log = pino({ level: 'silent' });
    let server: RunningServer = await startServer({ config, db: database.db, log });
    try {
      const admin = new GqlClient(server.url, config.adminKey!);
      const dir = path.join(root, 'outage');
      const run = await queueRun(admin, path.join(dir, 'dataset'), { steps: 100, saveEvery: 50, sampleEvery: 1000, seed: 5, extra: { loralab_fake_trainer: { stepMs: 80 } } });
      const { createApiKey } = await admin.ok(`mutation { createApiKey(role: AGENT, name: "box") { key } }`);
      const workDir = path.join(dir, 'work');
      const agent = startAgentProcess(agentArgs(server.url, createApiKey.key, workDir, 'box'));
      await waitFor('training', async () => (await runState(admin, run.id)).lossSummary.points >= 10);

      const spoolFile = path.join(workDir, 'runs', run.id, 'attempt-1', 'spool.jsonl');
      await server.close(); // the HTTP server only: the database stays, as a restarted server finds it
      const atStop = Spool.open(spoolFile);
      const reportsAtStop = atStop.pending().length + readFileSync(spoolFile, 'utf8').split('\n').length;
      atStop.close();
      // The outage itself (the scenario, not a way to move time).
      await new Promise((r) => setTimeout(r, 5000));
      // Meanwhile the trainer trained on, and its reports waited in the spool.
      const during = Spool.open(spoolFile);
      expect(during.pending().some((e) => e.op === 'loss')).toBe(true);
      expect(during.pending().length + readFileSync(spoolFile, 'utf8').split('\n').length).toBeGreaterThan(reportsAtStop);
      during.close();
      expect(trainerPid(workDir, run.id)).not.toBeNull();

      server = await startServer({ config: { ...config, port: server.port }, db: database.db, log });
      const done = await waitForStatus(admin, run.id, ['SUCCEEDED', 'FAILED', 'CANCELLED']);
      expect(done).toMatchObject({ status: 'SUCCEEDED', attempt: 1, error: null });
      expect(await allLossPoints(admin, run.id)).toEqual(expectedLoss(5, 100));
      expect(agent.output()).toContain('server unreachable');
      agent.child.kill('SIGTERM');
      expect((await agent.exited).code).toBe(0);
    } finally {
      await server.close();
      await database.drop();
    }
  });

  it('an agent restarted mid-run stops the trainer left behind and sends its spool before it claims again', { timeout: 120_000 }, async () => {
    const t = await startTestServer(kind, { leaseTtlSeconds: 30, reaperIntervalSeconds: 0.5 });
    try {
      const dir = path.join(root, 'restart');
      const workDir = path.join(dir, 'work');
      const key = await t.as('AGENT');
      const gpus = [0, 1].map((index) => ({ index, name: 'Fake GPU', memoryMb: 24_000 }));
      // The first life of agent "box": it claimed a run, reported some of it, and died with the
      // rest of its reports in the spool and its trainer still running.
      const first = await queueRun(t.admin, path.join(dir, 'dataset'), { steps: 100 });
      const before = await registerAgent(t, { name: 'box', gpus }, key);
      const claim = (await before.claim())!;
      const attemptDir = path.join(workDir, 'runs', first.id, 'attempt-1');
      await mkdir(attemptDir, { recursive: true });
      const spool = Spool.create(path.join(attemptDir, 'spool.jsonl'), { runId: first.id, leaseToken: claim.leaseToken, attempt: 1 });
      const sent = steps(60).map((step) => ({ step, loss: 1 / (step + 1), lr: 4e-4 }));
      spool.append({ op: 'start' });
      spool.append({ op: 'loss', points: sent });
      await before.start(first.id, claim.leaseToken);
      await key.ok(`mutation($r: ID!, $t: String!, $p: [LossPointInput!]!) { reportLoss(runId: $r, leaseToken: $t, points: $p) { accepted } }`, {
        r: first.id,
        t: claim.leaseToken,
        p: sent,
      });
      spool.ack([1, 2]);
      spool.append({ op: 'loss', points: steps(40).map((i) => ({ step: 60 + i, loss: 1 / (61 + i), lr: 4e-4 })) });
      spool.append({ op: 'sample', input: { step: 50, promptIndex: 0, prompt: 'a prompt', path: path.join(attemptDir, 'sample.jpg') } });
      spool.close();
      const configPath = path.join(attemptDir, 'config.yaml');
      const orphan = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', configPath], { detached: true, stdio: 'ignore' });
      await writeFile(path.join(attemptDir, 'trainer.pid'), JSON.stringify({ pid: orphan.pid, configPath }));
      const orphanExit = new Promise((resolve) => orphan.once('exit', (_code, signal) => resolve(signal)));

      const second = await queueRun(t.admin, path.join(dir, 'dataset2'), { steps: 10, extra: { loralab_fake_trainer: { stepMs: 10 } } });
      const agent = agentInProcess(
        agentConfig({ server: t.url, token: key.key, workDir, name: 'box', gpus: '0:Fake GPU:24000,1:Fake GPU:24000', heartbeatSeconds: '1' }),
      );
      try {
        await waitForStatus(t.admin, second.id, ['SUCCEEDED', 'FAILED']);
        expect(await orphanExit).toBe('SIGKILL');
        expect(isAlive(orphan.pid!)).toBe(false);
        // Everything the spool held reached the server: the start, and every point, once.
        const replayed = await runState(t.admin, first.id, 'status lossSummary { points lastStep }');
        expect(replayed).toEqual({ status: 'RUNNING', lossSummary: { points: 100, lastStep: 99 } });
        expect((await allLossPoints(t.admin, first.id)).map((p) => p.step)).toEqual(steps(100));
        const { samples } = await runState(t.admin, first.id, 'samples { step promptIndex prompt }');
        expect(samples).toEqual([{ step: 50, promptIndex: 0, prompt: 'a prompt' }]);
        const replayedAt = agent.lines.findIndex((l) => l.startsWith(`replaying 2 unsent report(s) of run ${first.id}`));
        const claimedAt = agent.lines.findIndex((l) => l.includes(second.id.slice(0, 8)) && l.includes('claimed'));
        expect(replayedAt).toBeGreaterThanOrEqual(0);
        expect(replayedAt).toBeLessThan(claimedAt);
      } finally {
        agent.stop();
        await agent.done;
      }
    } finally {
      await t.stop();
    }
  });
});
