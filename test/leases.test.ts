import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createBasics, queueRun, type Basics } from './helpers/fixtures.js';
import { endBackoff, eventTypes, expireLease, getRun, registerAgent } from './helpers/agents.js';
import { rows } from '../src/db/client.js';

describe.each(databaseKinds)('leases, the reaper and zombie agents on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  beforeAll(async () => {
    // The interval reaper is out of the way (an hour); tests sweep when they choose.
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600, retryBackoffSeconds: 10 });
    basics = await createBasics(t.admin);
  });
  afterAll(() => t?.stop());

  async function emptyQueue() {
    await t.server.db.orm.execute(sql`update runs set status = 'CANCELLED' where status in ('QUEUED', 'CLAIMED', 'RUNNING', 'CANCELLING')`);
  }

  it('extends the lease on every heartbeat', async () => {
    await emptyQueue();
    const agent = await registerAgent(t);
    await queueRun(t.admin, basics);
    const claim = (await agent.claim())!;
    await expireLease(t, claim.run.id);
    const beat = await agent.heartbeat(claim.run.id, claim.leaseToken);
    expect(new Date(beat.data.heartbeat.leaseExpiresAt).getTime()).toBeGreaterThan(Date.now() + 30_000);
    expect(await t.server.reaper.sweep()).toBe(0);
    expect((await getRun(t.admin, claim.run.id)).status).toBe('CLAIMED');
  });

  it('requeues a run whose lease expired, after a backoff, then fails it with LEASE_EXPIRED when attempts run out', async () => {
    await emptyQueue();
    const agent = await registerAgent(t);
    const queued = await queueRun(t.admin, basics, { maxAttempts: 2 });

    const first = (await agent.claim())!;
    await agent.start(queued.id, first.leaseToken);
    await expireLease(t, queued.id);
    expect(await t.server.reaper.sweep()).toBe(1);
    const requeued = await getRun(t.admin, queued.id);
    expect(requeued).toMatchObject({ status: 'QUEUED', attempt: 1 });
    const [backoff] = await rows<{ seconds: number }>(t.server.db.orm, sql`select extract(epoch from not_before - now())::float8 as seconds from runs where id = ${queued.id}`);
    // First backoff: 10 s with ±20 % jitter.
    expect(backoff!.seconds).toBeGreaterThan(7);
    expect(backoff!.seconds).toBeLessThanOrEqual(12);
    expect(await agent.claim()).toBeNull(); // still backing off

    await endBackoff(t, queued.id);
    const second = (await agent.claim())!;
    expect(second.attempt).toBe(2);
    await expireLease(t, queued.id);
    expect(await t.server.reaper.sweep()).toBe(1);
    const failed = await getRun(t.admin, queued.id);
    expect(failed.status).toBe('FAILED');
    expect(failed.error.code).toBe('LEASE_EXPIRED');
    expect(failed.finishedAt).toBeTruthy();
    expect(await eventTypes(t.admin, queued.id)).toEqual(['QUEUED', 'CLAIMED', 'STARTED', 'LEASE_EXPIRED', 'CLAIMED', 'LEASE_EXPIRED']);
  });

  it('doubles the backoff with each attempt', async () => {
    await emptyQueue();
    const agent = await registerAgent(t);
    const queued = await queueRun(t.admin, basics, { maxAttempts: 5 });
    for (let i = 0; i < 2; i++) {
      await endBackoff(t, queued.id);
      await agent.claim();
      await expireLease(t, queued.id);
      await t.server.reaper.sweep();
    }
    const [backoff] = await rows<{ seconds: number }>(t.server.db.orm, sql`select extract(epoch from not_before - now())::float8 as seconds from runs where id = ${queued.id}`);
    expect(backoff!.seconds).toBeGreaterThan(15); // 20 s ± 20 %
    expect(backoff!.seconds).toBeLessThanOrEqual(24);
  });

  it('cancels a CANCELLING run whose agent vanished', async () => {
    await emptyQueue();
    const agent = await registerAgent(t);
    const queued = await queueRun(t.admin, basics);
    await agent.claim();
    await t.admin.ok(`mutation($id: ID!) { cancelRun(id: $id) { status } }`, { id: queued.id });
    await expireLease(t, queued.id);
    await t.server.reaper.sweep();
    expect((await getRun(t.admin, queued.id)).status).toBe('CANCELLED');
  });

  it('fences a zombie agent: after its run is requeued and claimed by another agent, nothing it sends changes the run', async () => {
    await emptyQueue();
    const zombie = await registerAgent(t);
    const successor = await registerAgent(t);
    const queued = await queueRun(t.admin, basics);
    const old = (await zombie.claim())!;
    await zombie.start(queued.id, old.leaseToken);
    await expireLease(t, queued.id);
    await t.server.reaper.sweep();
    await endBackoff(t, queued.id);
    const current = (await successor.claim())!;
    expect(current.attempt).toBe(2);
    await successor.start(queued.id, current.leaseToken);
    await successor.heartbeat(queued.id, current.leaseToken, { step: 42, totalSteps: 3000 });
    const before = await getRun(t.admin, queued.id, 'status attempt agent { id } progress { step } startedAt finishedAt error { code }');

    for (const call of [
      zombie.heartbeat(queued.id, old.leaseToken, { step: 999 }),
      zombie.start(queued.id, old.leaseToken),
      zombie.complete(queued.id, old.leaseToken, 'FAILED', { code: 'TRAINER_ERROR', message: 'late' }),
      zombie.complete(queued.id, old.leaseToken, 'SUCCEEDED'),
    ]) {
      const result = await call;
      expect(result.errors![0]!.extensions!.code).toBe('LEASE_LOST');
    }
    expect(await getRun(t.admin, queued.id, 'status attempt agent { id } progress { step } startedAt finishedAt error { code }')).toEqual(before);
    expect(before).toMatchObject({ status: 'RUNNING', attempt: 2, agent: { id: successor.id }, progress: { step: 42 } });
  });

  it('answers LEASE_LOST to a token that never held the run, and FORBIDDEN to a key acting for another agent', async () => {
    await emptyQueue();
    const holder = await registerAgent(t);
    const queued = await queueRun(t.admin, basics);
    const claim = (await holder.claim())!;
    const stranger = await registerAgent(t);
    expect((await stranger.heartbeat(queued.id, 'not-the-token')).errors![0]!.extensions!.code).toBe('LEASE_LOST');
    // The right token from a key that is not the holder's: the lease is fine, the key is not.
    expect((await stranger.heartbeat(queued.id, claim.leaseToken)).errors![0]!.extensions!.code).toBe('FORBIDDEN');
    expect((await stranger.complete(queued.id, claim.leaseToken, 'SUCCEEDED')).errors![0]!.extensions!.code).toBe('FORBIDDEN');
    expect((await getRun(t.admin, queued.id)).status).toBe('CLAIMED');
  });

  it('lists an agent as OFFLINE once it has missed three heartbeats', async () => {
    const agent = await registerAgent(t);
    await t.server.db.orm.execute(sql`update agents set last_seen_at = now() - interval '10 minutes' where id = ${agent.id}`);
    const { agents } = await t.admin.ok(`{ agents { id status lastSeenAt } }`);
    expect(agents.find((a: any) => a.id === agent.id).status).toBe('OFFLINE');
    await agent.client.ok(`mutation($id: ID!) { setAgentDraining(agentId: $id, draining: true) { id } }`, { id: agent.id });
    await agent.claim(); // a claim is a sign of life, and a draining agent is handed nothing
    const after = await t.admin.ok(`{ agents { id status } }`);
    expect(after.agents.find((a: any) => a.id === agent.id).status).toBe('DRAINING');
  });
});
