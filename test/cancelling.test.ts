import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createBasics, queueRun, type Basics } from './helpers/fixtures.js';
import { eventTypes, getRun, registerAgent } from './helpers/agents.js';

const cancel = `mutation($id: ID!) { cancelRun(id: $id) { id status finishedAt } }`;
const retry = `mutation($id: ID!) { retryRun(id: $id) { id status attempt maxAttempts error { code } finishedAt } }`;

describe.each(databaseKinds)('cancelling and retrying runs on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600 });
    basics = await createBasics(t.admin);
  });
  afterAll(() => t?.stop());

  it('cancels a QUEUED run at once; no agent ever gets it', async () => {
    const run = await queueRun(t.admin, basics);
    const { cancelRun } = await t.admin.ok(cancel, { id: run.id });
    expect(cancelRun.status).toBe('CANCELLED');
    expect(cancelRun.finishedAt).toBeTruthy();
    const agent = await registerAgent(t);
    expect(await agent.claim()).toBeNull();
  });

  it('asks the agent to stop a CLAIMED or RUNNING run on its next heartbeat; the agent then completes it as CANCELLED', async () => {
    for (const started of [false, true]) {
      const agent = await registerAgent(t);
      const run = await queueRun(t.admin, basics);
      const claim = (await agent.claim())!;
      if (started) await agent.start(run.id, claim.leaseToken);
      expect((await t.admin.ok(cancel, { id: run.id })).cancelRun.status).toBe('CANCELLING');
      // Asking twice is harmless.
      expect((await t.admin.ok(cancel, { id: run.id })).cancelRun.status).toBe('CANCELLING');
      const beat = await agent.heartbeat(run.id, claim.leaseToken, { step: 10 });
      expect(beat.data.heartbeat.cancelRequested).toBe(true);
      const done = await agent.complete(run.id, claim.leaseToken, 'CANCELLED');
      expect(done.data.completeRun.status).toBe('CANCELLED');
      expect(await eventTypes(t.admin, run.id)).toEqual(['QUEUED', 'CLAIMED', ...(started ? ['STARTED'] : []), 'CANCEL_REQUESTED', 'CANCELLED']);
    }
  });

  it('refuses to cancel a finished run', async () => {
    const agent = await registerAgent(t);
    const run = await queueRun(t.admin, basics);
    const claim = (await agent.claim())!;
    await agent.complete(run.id, claim.leaseToken, 'SUCCEEDED');
    const error = await t.admin.fails('INVALID_TRANSITION', cancel, { id: run.id });
    expect(error.message).toContain('SUCCEEDED');
    expect((await getRun(t.admin, run.id)).status).toBe('SUCCEEDED');
  });

  it('retries a FAILED or CANCELLED run with a new attempt budget', async () => {
    const agent = await registerAgent(t);
    const run = await queueRun(t.admin, basics, { maxAttempts: 1 });
    const claim = (await agent.claim())!;
    await agent.complete(run.id, claim.leaseToken, 'FAILED', { code: 'OUT_OF_MEMORY', message: 'CUDA out of memory' });
    const { retryRun } = await t.admin.ok(retry, { id: run.id });
    expect(retryRun).toEqual({ id: run.id, status: 'QUEUED', attempt: 1, maxAttempts: 1, error: null, finishedAt: null });
    const again = (await agent.claim())!;
    expect(again.attempt).toBe(2);
    await agent.complete(run.id, again.leaseToken, 'CANCELLED');
    expect((await t.admin.ok(retry, { id: run.id })).retryRun.status).toBe('QUEUED');

    const cancelledBeforeClaim = await queueRun(t.admin, basics);
    await t.admin.ok(cancel, { id: cancelledBeforeClaim.id });
    expect((await t.admin.ok(retry, { id: cancelledBeforeClaim.id })).retryRun.status).toBe('QUEUED');
  });

  it('refuses to retry a run that has not ended', async () => {
    const run = await queueRun(t.admin, basics);
    await t.admin.fails('INVALID_TRANSITION', retry, { id: run.id });
  });

  it('answers NOT_FOUND for an unknown run and BAD_USER_INPUT for a malformed id', async () => {
    await t.admin.fails('NOT_FOUND', cancel, { id: '00000000-0000-0000-0000-000000000000' }, 'id');
    await t.admin.fails('BAD_USER_INPUT', retry, { id: 'run-1' }, 'id');
  });

  it('lets VIEWER keys watch but not cancel or retry, and EDITOR keys do both', async () => {
    const run = await queueRun(t.admin, basics);
    const viewer = await t.as('VIEWER');
    await viewer.fails('FORBIDDEN', cancel, { id: run.id });
    await viewer.fails('FORBIDDEN', retry, { id: run.id });
    await viewer.fails('FORBIDDEN', `mutation($input: QueueRunInput!) { queueRun(input: $input) { id } }`, {
      input: { experimentId: basics.experimentId, datasetId: basics.datasetId, captionStrategyId: basics.strategyId },
    });
    const editor = await t.as('EDITOR');
    expect((await editor.ok(cancel, { id: run.id })).cancelRun.status).toBe('CANCELLED');
    expect((await editor.ok(retry, { id: run.id })).retryRun.status).toBe('QUEUED');
  });
});
