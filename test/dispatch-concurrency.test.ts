// Dispatch under contention on PostgreSQL, where claims really run in parallel (PGlite has one
// connection and serializes everything).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { TEST_DATABASE_URL, createPostgresDatabase } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createBasics } from './helpers/fixtures.js';
import { registerAgent } from './helpers/agents.js';
import { openDatabase, rows } from '../src/db/client.js';

describe.skipIf(!TEST_DATABASE_URL)('dispatch under contention on postgres', () => {
  let t: TestServer;
  beforeAll(async () => {
    // 25 connections: each of the 20 claimers gets its own.
    t = await startTestServer('postgres', { reaperIntervalSeconds: 3600 }, { maxConnections: 25 });
  });
  afterAll(() => t?.stop());

  it('20 concurrent claimers over 200 queued runs: every run claimed exactly once', async () => {
    const basics = await createBasics(t.admin);
    await t.admin.ok(`mutation($input: QueueSweepInput!) { queueSweep(input: $input) { id } }`, {
      input: {
        base: { experimentId: basics.experimentId, datasetId: basics.datasetId, captionStrategyId: basics.strategyId },
        grid: { rank: [4, 8, 16, 32, 64], learningRate: [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4, 8e-4], steps: [1000, 2000, 3000, 4000, 5000] },
      },
    });
    // 8 GPUs each, so an agent can hold up to 8 runs at once before it completes them.
    const gpus = Array.from({ length: 8 }, (_, index) => ({ index, name: 'H100', memoryMb: 81_559 }));
    const agents = await Promise.all(Array.from({ length: 20 }, (_, i) => registerAgent(t, { name: `claimer-${i}`, gpus })));
    const claimedBy = new Map<string, string[]>();
    await Promise.all(
      agents.map(async (agent) => {
        for (;;) {
          const claim = await agent.claim();
          if (!claim) return;
          claimedBy.set(claim.run.id, [...(claimedBy.get(claim.run.id) ?? []), agent.id]);
          const done = await agent.complete(claim.run.id, claim.leaseToken, 'SUCCEEDED');
          expect(done.errors).toBeUndefined();
        }
      }),
    );
    expect(claimedBy.size).toBe(200);
    expect([...claimedBy.values()].every((holders) => holders.length === 1)).toBe(true);
    const [counts] = await rows<{ succeeded: number; max_attempt: number }>(
      t.server.db.orm,
      sql`select count(*) filter (where status = 'SUCCEEDED')::int as succeeded, max(attempt)::int as max_attempt from runs`,
    );
    expect(counts).toEqual({ succeeded: 200, max_attempt: 1 });
  });

  it('never gives one agent more runs than GPUs, however fast it claims', async () => {
    const basics = await createBasics(t.admin);
    await t.admin.ok(`mutation($input: QueueSweepInput!) { queueSweep(input: $input) { id } }`, {
      input: { base: { experimentId: basics.experimentId, datasetId: basics.datasetId, captionStrategyId: basics.strategyId }, grid: { rank: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] } },
    });
    const agent = await registerAgent(t, { gpus: [{ index: 0, name: 'A', memoryMb: 24_000 }, { index: 1, name: 'B', memoryMb: 24_000 }] });
    const claims = await Promise.all(Array.from({ length: 10 }, () => agent.claim()));
    expect(claims.filter(Boolean)).toHaveLength(2);
  });
});

describe.skipIf(!TEST_DATABASE_URL)('two servers on one postgres', () => {
  it('both run the reaper, and each expired run is handled once', async () => {
    const pg = await createPostgresDatabase();
    const databases = await Promise.all([0, 1].map(() => openDatabase({ kind: 'postgres', url: pg.url })));
    const wrap = (db: (typeof databases)[number]) => ({ db, drop: () => db.close() });
    // Both sweep every 50 ms, on top of the explicit sweeps below.
    // One admin key for both: only the first start of the empty database creates it.
    const shared = { reaperIntervalSeconds: 0.05, retryBackoffSeconds: 0, adminKey: `llk_test_shared_${Date.now()}_0123456789` };
    const [a, b] = await Promise.all(databases.map((db) => startTestServer('postgres', shared, { database: wrap(db) })));
    try {
      const basics = await createBasics(a!.admin);
      await a!.admin.ok(`mutation($input: QueueSweepInput!) { queueSweep(input: $input) { id } }`, {
        input: { base: { experimentId: basics.experimentId, datasetId: basics.datasetId, captionStrategyId: basics.strategyId }, grid: { rank: Array.from({ length: 50 }, (_, i) => i + 1) } },
      });
      const agent = await registerAgent(b!, { gpus: Array.from({ length: 50 }, (_, index) => ({ index, name: 'A', memoryMb: 24_000 })) });
      for (let i = 0; i < 50; i++) expect(await agent.claim()).not.toBeNull();
      await a!.server.db.orm.execute(sql`update runs set lease_expires_at = now() - interval '1 second'`);
      await Promise.all([a!.server.reaper.sweep(), b!.server.reaper.sweep(), a!.server.reaper.sweep(), b!.server.reaper.sweep()]);
      // The interval sweeps may still be finishing: wait until no lease is expired.
      for (let i = 0; i < 100; i++) {
        const [left] = await rows<{ n: number }>(a!.server.db.orm, sql`select count(*)::int as n from runs where status = 'CLAIMED'`);
        if (left!.n === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const perRun = await rows<{ n: number }>(
        a!.server.db.orm,
        sql`select count(e.id)::int as n from runs r left join run_events e on e.run_id = r.id and e.type = 'LEASE_EXPIRED' group by r.id`,
      );
      expect(perRun).toHaveLength(50);
      expect(perRun.every((r) => r.n === 1)).toBe(true);
      const [queued] = await rows<{ n: number }>(a!.server.db.orm, sql`select count(*)::int as n from runs where status = 'QUEUED'`);
      expect(queued!.n).toBe(50);
    } finally {
      await Promise.all([a?.server.close(), b?.server.close()]);
      await Promise.all(databases.map((db) => db.close()));
      await pg.drop();
    }
  });
});
