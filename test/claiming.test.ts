import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createBasics, queueRun, type Basics } from './helpers/fixtures.js';
import { getRun, registerAgent, storeFinalCheckpoint } from './helpers/agents.js';
import { ApiClient } from '../agents/api-client.js';

describe.each(databaseKinds)('claiming runs on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  beforeAll(async () => {
    t = await startTestServer(kind);
    basics = await createBasics(t.admin);
  });
  afterAll(() => t?.stop());

  /** Every test starts from an empty queue: earlier tests' leftovers must not be claimed. */
  async function emptyQueue() {
    await t.server.db.orm.execute(sql`update runs set status = 'CANCELLED' where status = 'QUEUED'`);
  }

  it('registers an agent, and registering the same name again updates it', async () => {
    const client = await t.as('AGENT');
    const first = await registerAgent(t, { name: 'box-1', labels: ['a'] }, client);
    const again = await registerAgent(t, { name: 'box-1', labels: ['b'], gpus: [{ index: 0, name: 'H100', memoryMb: 81_559 }] }, client);
    expect(again.id).toBe(first.id);
    const { agents } = await t.admin.ok(`{ agents { id name labels status gpus { index name memoryMb } currentRun { id } } }`);
    const box = agents.find((a: any) => a.id === first.id);
    expect(box).toEqual({ id: first.id, name: 'box-1', labels: ['b'], status: 'IDLE', gpus: [{ index: 0, name: 'H100', memoryMb: 81_559 }], currentRun: null });
    const { viewer } = await client.ok(`{ viewer { role agent { id } } }`);
    expect(viewer).toEqual({ role: 'AGENT', agent: { id: first.id } });
  });

  it('refuses an agent without GPUs or with one GPU listed twice', async () => {
    const client = await t.as('AGENT');
    const register = `mutation($input: RegisterAgentInput!) { registerAgent(input: $input) { id } }`;
    await client.fails('BAD_USER_INPUT', register, { input: { name: 'x', gpus: [] } }, 'input.gpus');
    await client.fails(
      'BAD_USER_INPUT',
      register,
      { input: { name: 'x', gpus: [{ index: 0, name: 'a', memoryMb: 1 }, { index: 0, name: 'b', memoryMb: 1 }] } },
      'input.gpus.1.index',
    );
  });

  it('only AGENT keys speak the agent protocol, and only as their own agents', async () => {
    await emptyQueue();
    const mine = await registerAgent(t);
    const other = await t.as('AGENT');
    await other.fails('FORBIDDEN', `mutation($id: ID!) { claimRun(agentId: $id) { leaseToken } }`, { id: mine.id });
    const editor = await t.as('EDITOR');
    await editor.fails('FORBIDDEN', `mutation($id: ID!) { claimRun(agentId: $id) { leaseToken } }`, { id: mine.id });
    await editor.fails('FORBIDDEN', `mutation { registerAgent(input: { name: "x", gpus: [{ index: 0, name: "a", memoryMb: 1 }] }) { id } }`);
  });

  it('hands out runs by priority, then oldest first, and null when nothing is queued', async () => {
    await emptyQueue();
    const agent = await registerAgent(t);
    const low1 = await queueRun(t.admin, basics, { priority: 0, name: 'low-1' });
    const high = await queueRun(t.admin, basics, { priority: 5, name: 'high' });
    const low2 = await queueRun(t.admin, basics, { priority: 0, name: 'low-2' });
    const order: string[] = [];
    for (let i = 0; i < 3; i++) {
      const claim = await agent.claim();
      order.push(claim!.run.id);
      await agent.complete(claim!.run.id, claim!.leaseToken, 'SUCCEEDED');
    }
    expect(order).toEqual([high.id, low1.id, low2.id]);
    expect(await agent.claim()).toBeNull();
  });

  it('matches VRAM, GPU count and labels', async () => {
    await emptyQueue();
    const big = await queueRun(t.admin, basics, { name: 'needs 40 GB', requirements: { minVramMb: 40_000 } });
    const pair = await queueRun(t.admin, basics, { name: 'needs 2 GPUs', requirements: { gpuCount: 2 } });
    const labelled = await queueRun(t.admin, basics, { name: 'needs fast-disk', requirements: { labels: ['fast-disk', 'eu'] } });
    const small = await registerAgent(t, { gpus: [{ index: 0, name: 'RTX 4090', memoryMb: 24_564 }], labels: ['fast-disk'] });
    expect(await small.claim()).toBeNull();

    const h100 = await registerAgent(t, { gpus: [{ index: 0, name: 'H100', memoryMb: 81_559 }] });
    expect((await h100.claim())!.run.id).toBe(big.id);

    const twoGpus = await registerAgent(t, { gpus: [{ index: 0, name: 'A', memoryMb: 24_000 }, { index: 1, name: 'B', memoryMb: 24_000 }] });
    expect((await twoGpus.claim())!.run.id).toBe(pair.id);

    const eu = await registerAgent(t, { labels: ['eu', 'fast-disk', 'spot'] });
    expect((await eu.claim())!.run.id).toBe(labelled.id);
  });

  it('gives an agent at most one run per GPU', async () => {
    await emptyQueue();
    const agent = await registerAgent(t, { gpus: [{ index: 0, name: 'A', memoryMb: 24_000 }, { index: 1, name: 'B', memoryMb: 24_000 }] });
    for (let i = 0; i < 3; i++) await queueRun(t.admin, basics, { name: `gpu-slot-${i}` });
    const first = await agent.claim();
    const second = await agent.claim();
    expect(first).not.toBeNull();
    expect(second).not.toBeNull();
    expect(await agent.claim()).toBeNull();
    await agent.complete(first!.run.id, first!.leaseToken, 'SUCCEEDED');
    expect(await agent.claim()).not.toBeNull();
  });

  it('returns the assignment: lease, attempt, trainer config and the captions to stage', async () => {
    await emptyQueue();
    const stored = await t.admin.ok(
      `mutation { createCaptionStrategy(input: { name: "descriptive", kind: STORED, triggerWord: "p3r5on", template: "photo of [trigger], {caption}" }) { id } }`,
    );
    const strategyId = stored.createCaptionStrategy.id;
    await t.admin.ok(`mutation($d: ID!, $s: ID!) { setCaptions(datasetId: $d, strategyId: $s, captions: [{ fileName: "img0.jpg", text: "a man smiling" }, { fileName: "img2.jpg", text: "a man in a hat" }]) }`, {
      d: basics.datasetId,
      s: strategyId,
    });
    const run = await queueRun(t.admin, { ...basics, strategyId }, { hyperparameters: { rank: 32, steps: 1200 } });
    const agent = await registerAgent(t);
    const claim = await agent.claim();
    expect(claim!.run).toMatchObject({ id: run.id, status: 'CLAIMED' });
    expect(claim!.attempt).toBe(1);
    expect(claim!.leaseToken.length).toBeGreaterThan(20);
    expect(claim!.trainerConfig).toContain('linear: 32');
    expect(claim!.trainerConfig).toContain('steps: 1200');
    expect(claim!.captions).toEqual([
      { fileName: 'img0.jpg', text: 'photo of p3r5on, a man smiling' },
      { fileName: 'img2.jpg', text: 'photo of p3r5on, a man in a hat' },
    ]);
    await agent.complete(run.id, claim!.leaseToken, 'SUCCEEDED');

    await emptyQueue();
    const triggerRun = await queueRun(t.admin, basics);
    const triggerClaim = await agent.claim();
    expect(triggerClaim!.run.id).toBe(triggerRun.id);
    expect(triggerClaim!.captions).toEqual([0, 1, 2].map((i) => ({ fileName: `img${i}.jpg`, text: 'p3r5on' })));
  });

  it("answers the agent's own claim document from the claim's one round trip", async () => {
    await emptyQueue();
    const agent = await registerAgent(t);
    const api = new ApiClient({ server: t.url, token: agent.client.key! });
    expect(await api.claimRun(agent.id, 0)).toBeNull(); // the key is now remembered
    const run = await queueRun(t.admin, basics);
    const before = t.server.db.stats.statements;
    const claim = (await api.claimRun(agent.id, 0))!;
    // The touch and the claim, sent together: the run's strategy and dataset came with the claim.
    expect(t.server.db.stats.statements - before).toBe(2);
    expect(claim.run).toMatchObject({ id: run.id, captionStrategy: { kind: 'TRIGGER_ONLY' }, dataset: { id: basics.datasetId, imageCount: 3 } });
    expect(claim.trainerConfig).toContain('trigger_word: "p3r5on"');
    expect(claim.captions).toHaveLength(3);
  });

  it('runs through start, heartbeat and completion with timings, cost and events', async () => {
    await emptyQueue();
    const agent = await registerAgent(t, { hourlyCostUsd: 0.72 });
    const queued = await queueRun(t.admin, basics);
    const claim = (await agent.claim())!;
    const started = await agent.start(queued.id, claim.leaseToken);
    expect(started.data.startRun).toMatchObject({ status: 'RUNNING', attempt: 1, agent: { id: agent.id } });
    expect(started.data.startRun.startedAt).toBeTruthy();
    const beat = await agent.heartbeat(queued.id, claim.leaseToken, { step: 120, totalSteps: 3000, secondsPerStep: 2.5, vramUsedMb: 20_100, gpuUtilization: 97 });
    expect(beat.data.heartbeat.cancelRequested).toBe(false);
    expect(new Date(beat.data.heartbeat.leaseExpiresAt).getTime()).toBeGreaterThan(Date.now());
    const { run: progress } = await t.admin.ok(`query($id: ID!) { run(id: $id) { progress { step totalSteps secondsPerStep etaSeconds vramUsedMb gpuUtilization } agent { status currentRun { id } } } }`, { id: queued.id });
    expect(progress.progress).toEqual({ step: 120, totalSteps: 3000, secondsPerStep: 2.5, etaSeconds: 2880 * 2.5, vramUsedMb: 20_100, gpuUtilization: 97 });
    expect(progress.agent).toEqual({ status: 'BUSY', currentRun: { id: queued.id } });

    // An hour of training, by back-dating the start.
    await t.server.db.orm.execute(sql`update runs set started_at = now() - interval '1 hour' where id = ${queued.id}`);
    const done = await agent.complete(queued.id, claim.leaseToken, 'SUCCEEDED');
    const run = done.data.completeRun;
    expect(run.status).toBe('SUCCEEDED');
    expect(run.finishedAt).toBeTruthy();
    expect(run.gpuSeconds).toBeCloseTo(3600, -1);
    expect(run.costUsd).toBeCloseTo(0.72, 2);
    expect(run.agent.id).toBe(agent.id); // still names the last holder
    // Its progress is the whole run, not the last heartbeat's 120 steps.
    const { run: finished } = await t.admin.ok(`query($id: ID!) { run(id: $id) { progress { step totalSteps etaSeconds } } }`, { id: queued.id });
    expect(finished.progress).toEqual({ step: 3000, totalSteps: 3000, etaSeconds: null });

    const { run: withEvents } = await t.admin.ok(`query($id: ID!) { run(id: $id) { events { type } } }`, { id: queued.id });
    expect(withEvents.events.map((e: any) => e.type).reverse()).toEqual(['QUEUED', 'CLAIMED', 'STARTED', 'CHECKPOINT_SAVED', 'CHECKPOINT_STORED', 'SUCCEEDED']);
  });

  it('completes a run as SUCCEEDED only once its final checkpoint is stored; FAILED and CANCELLED need none', async () => {
    await emptyQueue();
    const agent = await registerAgent(t);
    const queued = await queueRun(t.admin, basics);
    const claim = (await agent.claim())!;
    await agent.start(queued.id, claim.leaseToken);
    const complete = (outcome: string) =>
      agent.client.request(`mutation($r: ID!, $t: String!, $o: RunOutcome!) { completeRun(runId: $r, leaseToken: $t, outcome: $o) { id status } }`, {
        r: queued.id,
        t: claim.leaseToken,
        o: outcome,
      });
    const early = await complete('SUCCEEDED');
    expect(early.errors![0]!.extensions).toMatchObject({ code: 'CONFLICT', field: 'outcome', reason: 'FINAL_CHECKPOINT_NOT_STORED' });
    const steps = (await getRun(t.admin, queued.id, 'hyperparameters { steps }')).hyperparameters.steps as number;
    expect(early.errors![0]!.message).toContain(`step ${steps}`);
    // A stored checkpoint that is not the final one does not count.
    const bytes = Buffer.from('an intermediate checkpoint');
    const { beginRunUpload } = await agent.client.ok(
      `mutation($r: ID!, $t: String!, $i: ArtifactUploadInput!) { beginRunUpload(runId: $r, leaseToken: $t, input: $i) { artifact { id } parts { url } } }`,
      { r: queued.id, t: claim.leaseToken, i: { kind: 'CHECKPOINT', fileName: 'a_000000010.safetensors', step: 10, sizeBytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') } },
    );
    const put = await fetch(beginRunUpload.parts[0].url, { method: 'PUT', body: new Uint8Array(bytes) });
    await agent.client.ok(`mutation($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { stored } }`, {
      a: beginRunUpload.artifact.id,
      p: [{ number: 1, etag: put.headers.get('etag') }],
    });
    expect((await complete('SUCCEEDED')).errors![0]!.extensions!.reason).toBe('FINAL_CHECKPOINT_NOT_STORED');
    expect((await getRun(t.admin, queued.id)).status).toBe('RUNNING');

    // Stored: the same call succeeds, and the final checkpoint downloads.
    const stored = await storeFinalCheckpoint(agent.client, queued.id, claim.leaseToken);
    const done = await complete('SUCCEEDED');
    expect(done.errors).toBeUndefined();
    expect(done.data.completeRun.status).toBe('SUCCEEDED');
    const { run } = await t.admin.ok(`query($id: ID!) { run(id: $id) { checkpoints { step isFinal downloadUrl } events { type } } }`, { id: queued.id });
    const final = run.checkpoints.find((c: any) => c.isFinal);
    expect(final.step).toBe(steps);
    expect(Buffer.from(await (await fetch(final.downloadUrl)).arrayBuffer())).toEqual(stored);
    expect(run.events.map((e: any) => e.type)).toContain('CHECKPOINT_STORED');

    // A failed or cancelled attempt completes with whatever it has.
    for (const outcome of ['FAILED', 'CANCELLED']) {
      const other = await queueRun(t.admin, basics);
      const c = (await agent.claim())!;
      const ended = await agent.complete(other.id, c.leaseToken, outcome, outcome === 'FAILED' ? { code: 'TRAINER_ERROR', message: 'boom' } : undefined);
      expect(ended.data.completeRun.status).toBe(outcome);
    }
  });

  it('answers a retried completeRun with the final run', async () => {
    await emptyQueue();
    const agent = await registerAgent(t);
    const queued = await queueRun(t.admin, basics);
    const claim = (await agent.claim())!;
    await agent.start(queued.id, claim.leaseToken);
    const error = { code: 'OUT_OF_MEMORY', message: 'CUDA out of memory. Tried to allocate 2.00 GiB', logTail: 'line 1\nline 2' };
    const first = await agent.complete(queued.id, claim.leaseToken, 'FAILED', error);
    const retried = await agent.complete(queued.id, claim.leaseToken, 'FAILED', error);
    expect(retried.errors).toBeUndefined();
    expect(retried.data.completeRun).toEqual(first.data.completeRun);
    expect(first.data.completeRun.error).toEqual(error);
    // A failed run keeps the progress it had: here none was reported.
    expect((await t.admin.ok(`query($id: ID!) { run(id: $id) { progress { step } } }`, { id: queued.id })).run.progress).toBeNull();
    // A different outcome for the finished attempt changes nothing either.
    const late = await agent.complete(queued.id, claim.leaseToken, 'SUCCEEDED');
    expect(late.data.completeRun.status).toBe('FAILED');
    // But starting it again is not a transition the lifecycle has.
    const restart = await agent.start(queued.id, claim.leaseToken);
    expect(restart.errors![0]!.extensions!.code).toBe('INVALID_TRANSITION');
  });

  it('requires an error for a FAILED outcome and checks progress values', async () => {
    await emptyQueue();
    const agent = await registerAgent(t);
    await queueRun(t.admin, basics);
    const claim = (await agent.claim())!;
    const noError = await agent.complete(claim.run.id, claim.leaseToken, 'FAILED');
    expect(noError.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'error' });
    const badProgress = await agent.heartbeat(claim.run.id, claim.leaseToken, { step: -1 });
    expect(badProgress.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'progress.step' });
    expect((await getRun(t.admin, claim.run.id)).status).toBe('CLAIMED');
  });

  it('lets claimRun(waitSeconds) answer as soon as a run is queued elsewhere', async () => {
    await emptyQueue();
    const agent = await registerAgent(t);
    const waiting = agent.claim(10);
    let answered = false;
    void waiting.then(() => (answered = true));
    await new Promise((r) => setTimeout(r, 300)); // let the claim start waiting
    expect(answered).toBe(false);
    const editor = await t.as('EDITOR');
    const started = Date.now();
    const queued = await queueRun(editor, basics);
    const claim = await waiting;
    expect(claim!.run.id).toBe(queued.id);
    // Woken by NOTIFY rather than the deadline: well inside the 10 s wait.
    expect(Date.now() - started).toBeLessThan(9000);
  });

  it('answers null when the wait is over', async () => {
    await emptyQueue();
    const agent = await registerAgent(t);
    expect(await agent.claim(1)).toBeNull();
  });

  it('leaves no run CLAIMED by nobody when the client of a long poll goes away', async () => {
    await emptyQueue();
    const agent = await registerAgent(t);
    const controller = new AbortController();
    const abandoned = fetch(`${t.url}/graphql`, {
      method: 'POST',
      signal: controller.signal,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${agent.client.key}` },
      body: JSON.stringify({ query: `mutation($id: ID!) { claimRun(agentId: $id, waitSeconds: 30) { leaseToken } }`, variables: { id: agent.id } }),
    }).catch(() => null);
    await new Promise((r) => setTimeout(r, 300));
    controller.abort();
    await abandoned;
    await new Promise((r) => setTimeout(r, 100)); // the server sees the socket close
    const run = await queueRun(t.admin, basics);
    const other = await registerAgent(t);
    const claim = await other.claim(5);
    expect(claim!.run.id).toBe(run.id);
    expect(claim!.attempt).toBe(1);
  });

  it('rejects a wait over 60 seconds', async () => {
    const agent = await registerAgent(t);
    await agent.client.fails('BAD_USER_INPUT', `mutation($id: ID!) { claimRun(agentId: $id, waitSeconds: 61) { leaseToken } }`, { id: agent.id }, 'waitSeconds');
  });
});
