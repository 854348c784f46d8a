import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createBasics, type Basics } from './helpers/fixtures.js';
import { claimNewRun, endBackoff, expireLease, registerAgent, type TestAgent, REPORT_LOSS } from './helpers/agents.js';
import { rows } from '../src/db/client.js';

const report = REPORT_LOSS;
const reportColumns = `mutation($r: ID!, $t: String!, $s: [Int!]!, $l: [Float!]!, $lr: [Float]) { reportLossColumns(runId: $r, leaseToken: $t, steps: $s, losses: $l, lrs: $lr) { accepted duplicates } }`;
const columnsOf = (points: { step: number; loss: number; lr?: number | null }[]) => ({ s: points.map((p) => p.step), l: points.map((p) => p.loss), lr: points.map((p) => p.lr ?? null) });
const summaryQuery = `query($id: ID!) { run(id: $id) { lossSummary { points lastStep lastLoss minLoss minLossStep emaLoss } } }`;

/** The summary recomputed here from the raw points, independently of the server. */
function expectedSummary(points: { step: number; loss: number }[]) {
  const sorted = [...points].sort((a, b) => a.step - b.step);
  let ema: number | null = null;
  let min = sorted[0]!;
  for (const p of sorted) {
    ema = ema == null ? p.loss : 0.1 * p.loss + 0.9 * ema;
    if (p.loss < min.loss) min = p;
  }
  return { points: sorted.length, lastStep: sorted.at(-1)!.step, lastLoss: sorted.at(-1)!.loss, minLoss: min.loss, minLossStep: min.step, emaLoss: ema };
}

const curve = (from: number, to: number, seed = 1) =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ step: from + i, loss: 0.1 + 0.5 * Math.exp(-(from + i) / 400) + 0.05 * Math.sin((from + i) * seed), lr: 4e-4 }));

describe.each(databaseKinds)('reporting loss on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  let agent: TestAgent;
  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600, retryBackoffSeconds: 0 });
    basics = await createBasics(t.admin);
    agent = await registerAgent(t, { gpus: Array.from({ length: 12 }, (_, index) => ({ index, name: 'H100', memoryMb: 81_559 })) });
  });
  afterAll(() => t?.stop());

  async function runningRun() {
    const claimed = await claimNewRun(t, basics, agent);
    await agent.start(claimed.runId, claimed.token);
    return claimed;
  }

  it('records a batch and keeps the summary equal to a recomputation from the raw points', async () => {
    const { runId, token } = await runningRun();
    const points = curve(0, 999);
    points[500]!.loss = 0.001; // the minimum
    for (let i = 0; i < points.length; i += 250) {
      const { reportLoss } = await agent.client.ok(report, { r: runId, t: token, p: points.slice(i, i + 250) });
      expect(reportLoss).toEqual({ accepted: 250, duplicates: 0 });
    }
    const { run } = await t.admin.ok(summaryQuery, { id: runId });
    const expected = expectedSummary(points);
    expect(run.lossSummary).toMatchObject({ points: 1000, lastStep: 999, minLoss: 0.001, minLossStep: 500, lastLoss: expected.lastLoss });
    expect(run.lossSummary.emaLoss).toBeCloseTo(expected.emaLoss!, 12);
  });

  it('is idempotent: the same batch twice changes nothing and counts duplicates', async () => {
    const { runId, token } = await runningRun();
    const batch = curve(0, 99);
    await agent.client.ok(report, { r: runId, t: token, p: batch });
    const before = await t.admin.ok(summaryQuery, { id: runId });
    const again = await agent.client.ok(report, { r: runId, t: token, p: batch.map((p) => ({ ...p, loss: p.loss + 1 })) });
    expect(again.reportLoss).toEqual({ accepted: 0, duplicates: 100 });
    expect(await t.admin.ok(summaryQuery, { id: runId })).toEqual(before);
    const partly = await agent.client.ok(report, { r: runId, t: token, p: curve(90, 109) });
    expect(partly.reportLoss).toEqual({ accepted: 10, duplicates: 10 });
    const { run } = await t.admin.ok(summaryQuery, { id: runId });
    expect(run.lossSummary.points).toBe(110);
    expect(run.lossSummary.emaLoss).toBeCloseTo(expectedSummary(curve(0, 109)).emaLoss!, 12);
  });

  it("lets a newer attempt replace an older attempt's points, and never the reverse", async () => {
    const { runId, token } = await runningRun();
    await agent.client.ok(report, { r: runId, t: token, p: curve(0, 199) });
    await expireLease(t, runId);
    await t.server.reaper.sweep();
    await endBackoff(t, runId);
    const second = (await agent.claim())!;
    expect(second.run.id).toBe(runId);
    // The second attempt resumes from a checkpoint at step 100 with different values.
    const resumed = curve(100, 149, 7).map((p) => ({ ...p, loss: p.loss + 0.2 }));
    const { reportLoss } = await agent.client.ok(report, { r: runId, t: second.leaseToken, p: resumed });
    expect(reportLoss).toEqual({ accepted: 50, duplicates: 0 });
    const stored = await rows<{ step: number; loss: number; attempt: number }>(t.server.db.orm, sql`select step, loss, attempt from loss_points where run_id = ${runId} order by step`);
    expect(stored).toHaveLength(200);
    expect(stored.filter((p) => p.attempt === 2).map((p) => p.step)).toEqual(resumed.map((p) => p.step));
    expect(stored[120]!.loss).toBeCloseTo(resumed[20]!.loss, 12);
    // The summary follows what is stored now.
    const { run } = await t.admin.ok(summaryQuery, { id: runId });
    const expected = expectedSummary(stored);
    expect(run.lossSummary.points).toBe(200);
    expect(run.lossSummary.emaLoss).toBeCloseTo(expected.emaLoss!, 10);
    expect(run.lossSummary.minLoss).toBeCloseTo(expected.minLoss, 12);
    // The first attempt, now a zombie, can write nothing.
    // Neither over the steps it wrote nor after the last one (a batch that only appends).
    for (const batch of [curve(0, 10), curve(500, 510)]) {
      const zombie = await agent.client.request(report, { r: runId, t: token, p: batch.map((p) => ({ ...p, loss: 9 })) });
      expect(zombie.errors![0]!.extensions!.code).toBe('LEASE_LOST');
    }
    const [max] = await rows<{ m: number; n: number }>(t.server.db.orm, sql`select max(loss) as m, count(*)::int as n from loss_points where run_id = ${runId}`);
    expect(max).toEqual({ m: expect.any(Number), n: 200 });
    expect(max!.m).toBeLessThan(9);
    expect((await t.admin.ok(summaryQuery, { id: runId })).run.lossSummary.points).toBe(200);
  });

  it('refuses non-finite loss, negative steps and steps repeated within a batch, writing nothing', async () => {
    const { runId, token } = await runningRun();
    const cases: [unknown[], string][] = [
      [[{ step: 0, loss: 0.4 }, { step: -1, loss: 0.3 }], 'points.1.step'],
      [[{ step: 0, loss: 0.4 }, { step: 1, loss: 0.3 }, { step: 1, loss: 0.2 }], 'points'],
    ];
    for (const [points, field] of cases) {
      await agent.client.fails('BAD_USER_INPUT', report, { r: runId, t: token, p: points }, field);
    }
    // JSON has no NaN or Infinity: a huge literal is how a client sends an overflowed loss.
    const overflow = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${agent.client.key}` },
      body: `{"query": ${JSON.stringify(report)}, "variables": {"r": "${runId}", "t": "${token}", "p": [{"step": 0, "loss": 1e999}]}}`,
    }).then((r) => r.json() as Promise<any>);
    expect(overflow.errors[0].extensions.code, JSON.stringify(overflow)).toBe('BAD_USER_INPUT');
    const { run } = await t.admin.ok(summaryQuery, { id: runId });
    expect(run.lossSummary.points).toBe(0);
  });

  it('takes up to 5,000 points per call and refuses more with PAYLOAD_TOO_LARGE', async () => {
    const { runId, token } = await runningRun();
    const { reportLoss } = await agent.client.ok(report, { r: runId, t: token, p: curve(0, 4999) });
    expect(reportLoss.accepted).toBe(5000);
    await agent.client.fails('PAYLOAD_TOO_LARGE', report, { r: runId, t: token, p: curve(5000, 10_000) });
  });

  it('writes each batch with one set-based statement, not one per point', async () => {
    const { runId, token } = await runningRun();
    const before = t.server.db.stats.statements;
    await agent.client.ok(report, { r: runId, t: token, p: curve(0, 999) });
    // A batch after the run's last step: the key lookup (when not remembered) and one statement
    // that fences, inserts, updates the summary and blocks, and notifies.
    expect(t.server.db.stats.statements - before).toBeLessThanOrEqual(2);
    // A batch that rewrites steps takes the general path: the summary lock, the upsert, and the
    // recomputations it needs, all in one transaction.
    const again = t.server.db.stats.statements;
    await agent.client.ok(report, { r: runId, t: token, p: curve(500, 1499) });
    expect(t.server.db.stats.statements - again).toBeLessThanOrEqual(8);
  });

  it('takes the same points as parallel lists (reportLossColumns), with the same answers', async () => {
    const { runId, token } = await runningRun();
    const points = curve(0, 1999);
    const { reportLossColumns } = await agent.client.ok(reportColumns, { r: runId, t: token, ...columnsOf(points.slice(0, 1000)) });
    expect(reportLossColumns).toEqual({ accepted: 1000, duplicates: 0 });
    // Idempotent across both forms, and lrs may be left out.
    const again = await agent.client.ok(report, { r: runId, t: token, p: points.slice(900, 1000) });
    expect(again.reportLoss).toEqual({ accepted: 0, duplicates: 100 });
    const { lr: _, ...noLrs } = columnsOf(points.slice(950, 2000));
    const rest = await agent.client.ok(reportColumns, { r: runId, t: token, ...noLrs });
    expect(rest.reportLossColumns).toEqual({ accepted: 1000, duplicates: 50 });
    const { run } = await t.admin.ok(`query($id: ID!) { run(id: $id) { lossSummary { points lastStep emaLoss } a: lossPoints(afterStep: 998, first: 2) { step loss lr } } }`, { id: runId });
    expect(run.lossSummary).toMatchObject({ points: 2000, lastStep: 1999 });
    expect(run.lossSummary.emaLoss).toBeCloseTo(expectedSummary(points).emaLoss!, 12);
    expect(run.a).toEqual([
      { step: 999, loss: points[999]!.loss, lr: 4e-4 },
      { step: 1000, loss: points[1000]!.loss, lr: null },
    ]);
  });

  it('refuses bad parallel lists the way it refuses bad points, writing nothing', async () => {
    const { runId, token } = await runningRun();
    const cases: [Record<string, unknown>, string, string][] = [
      [{ s: [0, -1], l: [0.4, 0.3] }, 'BAD_USER_INPUT', 'steps.1'],
      [{ s: [0, 1, 1], l: [0.4, 0.3, 0.2] }, 'BAD_USER_INPUT', 'steps'],
      [{ s: [0, 1, 2], l: [0.4, 0.3] }, 'BAD_USER_INPUT', 'losses'],
      [{ s: [0, 1], l: [0.4, 0.3, 0.2] }, 'BAD_USER_INPUT', 'steps'],
      [{ s: [0, 1], l: [0.4, 0.3], lr: [1e-4] }, 'BAD_USER_INPUT', 'lrs'],
      [columnsOf(curve(0, 5000)), 'PAYLOAD_TOO_LARGE', 'steps'],
    ];
    for (const [lists, code, field] of cases) {
      await agent.client.fails(code, reportColumns, { r: runId, t: token, ...lists }, field);
    }
    const overflow = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${agent.client.key}` },
      body: `{"query": ${JSON.stringify(reportColumns)}, "variables": {"r": "${runId}", "t": "${token}", "s": [0, 1], "l": [0.3, 1e999]}}`,
    }).then((r) => r.json() as Promise<any>);
    expect(overflow.errors[0].extensions.code, JSON.stringify(overflow)).toBe('BAD_USER_INPUT');
    // Only agents report loss.
    await t.admin.fails('FORBIDDEN', reportColumns, { r: runId, t: token, s: [0], l: [0.3] });
    const { run } = await t.admin.ok(summaryQuery, { id: runId });
    expect(run.lossSummary.points).toBe(0);
    const [stored] = await rows<{ n: number }>(t.server.db.orm, sql`select count(*)::int as n from loss_points where run_id = ${runId}`);
    expect(stored!.n).toBe(0);
  });

  it('serves raw points in pages', async () => {
    const { runId, token } = await runningRun();
    await agent.client.ok(report, { r: runId, t: token, p: curve(0, 29) });
    const { run } = await t.admin.ok(`query($id: ID!) { run(id: $id) { a: lossPoints(first: 10) { step loss lr recordedAt } b: lossPoints(afterStep: 25) { step } } }`, { id: runId });
    expect(run.a.map((p: any) => p.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(run.a[0]).toMatchObject({ loss: curve(0, 0)[0]!.loss, lr: 4e-4 });
    expect(run.b.map((p: any) => p.step)).toEqual([26, 27, 28, 29]);
  });
});
