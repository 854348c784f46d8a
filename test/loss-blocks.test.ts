// Long curves are served from loss_blocks, a rollup of the points in blocks of 100 steps kept on
// every write, and from loss_coarse_blocks, the same in blocks of 1,000 and 10,000 steps, for
// ranges that span enough of those. Whatever the path and the level, a curve must equal one
// computed here from the raw points.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { rows } from '../src/db/client.js';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createBasics, type Basics } from './helpers/fixtures.js';
import { claimNewRun, endBackoff, expireLease, registerAgent, type TestAgent, REPORT_LOSS } from './helpers/agents.js';

const curveQuery = `query($id: ID!, $max: Int, $from: Int, $to: Int) { run(id: $id) { lossCurve(maxPoints: $max, fromStep: $from, toStep: $to) { step fromStep toStep min max mean last count } } }`;
const pointsQuery = `query($id: ID!, $after: Int) { run(id: $id) { lossPoints(afterStep: $after, first: 10000) { step loss } } }`;

type Point = { step: number; loss: number };
type Bucket = { step: number; fromStep: number; toStep: number; min: number; max: number; mean: number; last: number; count: number };

/** Every bucket against the raw points it covers; counts add up to the points in [lo, hi]; buckets tile in order. */
function expectCurveOfPoints(buckets: Bucket[], points: Point[], lo: number, hi: number, maxPoints: number) {
  const inRange = points.filter((p) => p.step >= lo && p.step <= hi);
  expect(buckets.length).toBeLessThanOrEqual(maxPoints);
  expect(buckets.reduce((n, b) => n + b.count, 0)).toBe(inRange.length);
  for (const [i, b] of buckets.entries()) {
    const mine = inRange.filter((p) => p.step >= b.fromStep && p.step <= b.toStep);
    expect(mine.length, `bucket ${i}`).toBe(b.count);
    expect(b.fromStep).toBe(mine[0]!.step);
    expect(b.toStep).toBe(mine.at(-1)!.step);
    expect(b.step).toBe(b.toStep);
    expect(b.min).toBe(Math.min(...mine.map((p) => p.loss)));
    expect(b.max).toBe(Math.max(...mine.map((p) => p.loss)));
    expect(b.last).toBe(mine.at(-1)!.loss);
    expect(b.mean).toBeCloseTo(mine.reduce((s, p) => s + p.loss, 0) / mine.length, 10);
    if (i > 0) expect(b.fromStep).toBeGreaterThan(buckets[i - 1]!.toStep);
  }
}

describe.each(databaseKinds)('loss blocks on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  let agent: TestAgent;
  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600, retryBackoffSeconds: 0 });
    basics = await createBasics(t.admin);
    agent = await registerAgent(t, { gpus: Array.from({ length: 10 }, (_, index) => ({ index, name: 'H100', memoryMb: 81_559 })) });
  });
  afterAll(() => t?.stop());

  const claimedRun = () => claimNewRun(t, basics, agent);

  async function report(runId: string, token: string, points: Point[]) {
    for (let i = 0; i < points.length; i += 5000) await agent.client.ok(REPORT_LOSS, { r: runId, t: token, p: points.slice(i, i + 5000) });
  }

  /** The run's points as a client reads them. */
  async function rawPoints(runId: string) {
    const all: Point[] = [];
    for (let after = -1; ; ) {
      const { run } = await t.admin.ok(pointsQuery, { id: runId, after });
      all.push(...run.lossPoints);
      if (run.lossPoints.length < 10000) return all;
      after = run.lossPoints.at(-1).step;
    }
  }

  async function curve(runId: string, max: number, from?: number, to?: number): Promise<Bucket[]> {
    return (await t.admin.ok(curveQuery, { id: runId, max, from, to })).run.lossCurve;
  }

  /** loss_blocks and every level of loss_coarse_blocks must hold exactly what a recomputation from loss_points gives. */
  async function expectBlocksMatchPoints(runId: string) {
    const levels = [
      ['loss_blocks', 100],
      ['loss_coarse_blocks', 1_000],
      ['loss_coarse_blocks', 10_000],
    ] as const;
    for (const [table, steps] of levels) {
      const query = (which: 'stored' | 'recomputed') =>
        which === 'stored'
          ? sql`select block, points, loss_sum, min_loss, max_loss, first_step, last_step, last_loss from ${sql.raw(table)}
              where run_id = ${runId} ${table === 'loss_coarse_blocks' ? sql`and steps = ${steps}` : sql``} order by block`
          : sql`select step / ${sql.raw(String(steps))} as block, count(*)::int as points, sum(loss) as loss_sum, min(loss) as min_loss, max(loss) as max_loss,
              min(step) as first_step, max(step) as last_step, (array_agg(loss order by step desc))[1] as last_loss
            from loss_points where run_id = ${runId} group by 1 order by 1`;
      const [stored, recomputed] = [await rows<any>(t.server.db.orm, query('stored')), await rows<any>(t.server.db.orm, query('recomputed'))];
      expect(stored.length, `blocks of ${steps} steps`).toBe(recomputed.length);
      for (const [i, s] of stored.entries()) {
        const r = recomputed[i];
        expect({ ...s, loss_sum: 0 }, `block ${r.block} of ${steps} steps`).toEqual({ ...r, loss_sum: 0 });
        expect(s.loss_sum).toBeCloseTo(r.loss_sum, 9);
      }
    }
    // Nothing at a level the code does not keep.
    const [other] = await rows<{ n: number }>(t.server.db.orm, sql`select count(*)::int as n from loss_coarse_blocks where run_id = ${runId} and steps not in (1000, 10000)`);
    expect(other!.n).toBe(0);
  }

  const wave = (from: number, to: number, shift = 0) =>
    Array.from({ length: to - from + 1 }, (_, i) => ({ step: from + i, loss: 0.3 + 0.2 * Math.exp(-(from + i) / 3000) + 0.02 * Math.sin((from + i) / 7 + shift) }));

  it('serves long ranges from blocks, equal to the curve of the raw points, ragged ends included', async () => {
    const { runId, token } = await claimedRun();
    const points = wave(0, 12_345);
    points[7_777]!.loss = 9.5; // a one-step spike
    // Batches that start and end inside blocks, so blocks are filled by several batches.
    for (let i = 0; i < points.length; i += 1_237) await report(runId, token, points.slice(i, i + 1_237));
    await expectBlocksMatchPoints(runId);
    const stored = await rawPoints(runId);
    expect(stored).toHaveLength(points.length);

    const cases: [number, number | undefined, number | undefined][] = [
      [50, undefined, undefined], // 124 blocks in 50 buckets
      [124, undefined, undefined], // one block per bucket
      [30, 1_234, 8_765], // both ends cut a block
      [20, 1_200, 8_799], // aligned on blocks
      [10, 150, 5_049],
      [1, 50, 150], // two cut blocks, nothing whole
      [1, 120, 180], // within one block
      [7, 333, 1_000_000], // toStep past the last point
    ];
    for (const [max, from, to] of cases) {
      const buckets = await curve(runId, max, from, to);
      expectCurveOfPoints(buckets, stored, from ?? 0, to ?? 12_345, max);
    }
    // Served from whole blocks: inner buckets start on a block.
    const aligned = await curve(runId, 30, 1_234, 8_765);
    expect(aligned[0]!.fromStep).toBe(1_234);
    expect(aligned.slice(1).every((b) => b.fromStep % 100 === 0)).toBe(true);
    // The spike stays the max of its bucket.
    const spike = (await curve(runId, 25)).find((b) => b.fromStep <= 7_777 && b.toStep >= 7_777)!;
    expect(spike.max).toBe(9.5);
    expect(spike.mean).toBeLessThan(1);
  });

  it('rebuilds the blocks a newer attempt rewrites, so a replaced spike no longer shows', async () => {
    const { runId, token } = await claimedRun();
    await agent.start(runId, token);
    const first = wave(0, 2_999);
    first[1_520]!.loss = 5; // the first attempt's spike, which the second attempt replaces
    await report(runId, token, first);
    await expireLease(t, runId);
    await t.server.reaper.sweep();
    await endBackoff(t, runId);
    const second = (await agent.claim())!;
    expect(second.run.id).toBe(runId);
    // Resumed from step 1,450, with other values and a spike of its own at 1,600.
    const resumed = wave(1_450, 1_649, 2).map((p) => ({ ...p, loss: p.loss + 0.1 }));
    resumed[150]!.loss = 8;
    const { reportLoss } = await agent.client.ok(REPORT_LOSS, { r: runId, t: second.leaseToken, p: resumed });
    expect(reportLoss).toEqual({ accepted: 200, duplicates: 0 });
    await expectBlocksMatchPoints(runId);

    const stored = await rawPoints(runId);
    expect(stored.find((p) => p.step === 1_520)!.loss).toBe(resumed[70]!.loss);
    const buckets = await curve(runId, 30);
    expectCurveOfPoints(buckets, stored, 0, 2_999, 30);
    expect(Math.max(...buckets.map((b) => b.max))).toBe(8);
    expect(buckets.find((b) => b.fromStep <= 1_520 && b.toStep >= 1_520)!.max).toBeLessThan(5);
    expectCurveOfPoints(await curve(runId, 3, 1_455, 1_705), stored, 1_455, 1_705, 3);
  });

  it('keeps the blocks exact when a batch fills in earlier steps, out of order', async () => {
    const { runId, token } = await claimedRun();
    const points = wave(0, 1_999);
    const late = points.filter((p) => p.step % 3 === 0);
    await report(runId, token, points.filter((p) => p.step % 3 !== 0).reverse());
    await report(runId, token, late);
    await expectBlocksMatchPoints(runId);
    expectCurveOfPoints(await curve(runId, 20), await rawPoints(runId), 0, 1_999, 20);
  });

  it('stays exact when batches of one run arrive at once, in any order, some of them twice', async () => {
    const { runId, token } = await claimedRun();
    const points = wave(0, 2_999);
    points[1_234]!.loss = 0.01; // the minimum
    // 30 batches of 100 steps, sent together with 10 retries and some batches reversed: on
    // PostgreSQL they run on separate connections, and batches that append race ones that fill in.
    const batches = Array.from({ length: 30 }, (_, i) => points.slice(i * 100, i * 100 + 100));
    const sent = [...batches, ...batches.filter((_, i) => i % 3 === 0)].map((b, i) => (i % 4 === 1 ? [...b].reverse() : b));
    const answers = await Promise.all(sent.map((p) => agent.client.ok(REPORT_LOSS, { r: runId, t: token, p })));
    expect(answers.reduce((n, a) => n + a.reportLoss.accepted, 0)).toBe(3_000);
    expect(answers.reduce((n, a) => n + a.reportLoss.duplicates, 0)).toBe(1_000);
    await expectBlocksMatchPoints(runId);

    const { run } = await t.admin.ok(`query($id: ID!) { run(id: $id) { lossSummary { points lastStep lastLoss minLoss minLossStep emaLoss } } }`, { id: runId });
    const ema = points.reduce((e: number | null, p) => (e == null ? p.loss : 0.1 * p.loss + 0.9 * e), null)!;
    expect(run.lossSummary).toMatchObject({ points: 3_000, lastStep: 2_999, lastLoss: points[2_999]!.loss, minLoss: 0.01, minLossStep: 1_234 });
    expect(run.lossSummary.emaLoss).toBeCloseTo(ema, 12);
  });

  it('is backfilled by the migration for points written before it', async () => {
    const { runId, token } = await claimedRun();
    await report(runId, token, wave(0, 4_321));
    await t.server.db.orm.execute(sql`delete from loss_blocks where run_id = ${runId}`);
    const migration = readFileSync(new URL('../drizzle/0002_backfill_loss_blocks.sql', import.meta.url), 'utf8');
    await t.server.db.orm.execute(sql.raw(migration));
    await expectBlocksMatchPoints(runId);
    expectCurveOfPoints(await curve(runId, 40), await rawPoints(runId), 0, 4_321, 40);
  });

  it('has its coarse levels backfilled by their migration from the blocks written before it', async () => {
    const { runId, token } = await claimedRun();
    await report(runId, token, wave(0, 23_456));
    await t.server.db.orm.execute(sql`delete from loss_coarse_blocks where run_id = ${runId}`);
    const migration = readFileSync(new URL('../drizzle/0010_backfill_loss_coarse_blocks.sql', import.meta.url), 'utf8');
    await t.server.db.orm.execute(sql.raw(migration));
    await expectBlocksMatchPoints(runId);
    expectCurveOfPoints(await curve(runId, 20), await rawPoints(runId), 0, 23_456, 20);
  });

  /** Curves over ranges wide enough for coarse blocks, each against the raw points, with the level each must have taken. */
  async function expectWideCurves(runId: string, last: number) {
    const stored = await rawPoints(runId);
    const cases: [max: number, from: number | undefined, to: number | undefined, steps: number][] = [
      [20, undefined, undefined, 1_000], // 46 blocks of 1,000 steps, 5 of 10,000
      [4, undefined, undefined, 10_000],
      [30, 1_234, 40_321, 1_000], // both ends cut a fine block
      [10, 1_200, 38_799, 1_000], // on fine blocks, not coarse ones
      [3, 5_000, 39_999, 10_000], // on blocks of 1,000, not 10,000
      [2, 10_000, 29_999, 10_000], // on coarse blocks
      [5, 333, 1_000_000, 10_000], // toStep past the last point
      [1, 9_950, 10_050, 10_000], // two cut coarse blocks, nothing whole
      [1, 12_345, 12_399, 10_000], // within one fine block
      [3, 21_999, 24_001, 1_000],
    ];
    for (const [max, from, to, steps] of cases) {
      const buckets = await curve(runId, max, from, to);
      expectCurveOfPoints(buckets, stored, from ?? 0, to ?? last, max);
      // Served from whole blocks of the level: every bucket after the first starts on one (no step
      // ending in 517 is one), and there are maxPoints of them (a wider level would give fewer).
      expect(buckets.slice(1).every((b) => b.fromStep % steps === 0), `maxPoints ${max} over ${from}..${to}: blocks of ${steps}`).toBe(true);
      expect(buckets, `maxPoints ${max} over ${from}..${to}`).toHaveLength(max);
    }
  }

  it('answers no buckets for a range between points, from blocks or from points', async () => {
    const { runId, token } = await claimedRun();
    await report(runId, token, [...wave(0, 99), ...wave(500_000, 500_099)]);
    expect(await curve(runId, 10, 200, 400_000)).toEqual([]); // spans 4,000 blocks of 100, 400 of 1,000
    expect(await curve(runId, 1000, 200, 300)).toEqual([]); // narrower than 1,000 blocks: from the points
    expectCurveOfPoints(await curve(runId, 10), await rawPoints(runId), 0, 500_099, 10);
  });

  it('serves ranges that span enough coarse blocks from them, exact at cut ends, after appends, fill-ins and a resumed attempt', async () => {
    const { runId, token } = await claimedRun();
    await agent.start(runId, token);
    const points = wave(0, 45_678);
    points[17_777]!.loss = 9.5;
    const [kept, late] = [points.filter((p) => p.step % 1_000 !== 517), points.filter((p) => p.step % 1_000 === 517)];
    for (let i = 0; i < kept.length; i += 1_237) await report(runId, token, kept.slice(i, i + 1_237));
    await expectBlocksMatchPoints(runId);
    await expectWideCurves(runId, 45_678);
    const spike = (await curve(runId, 4)).find((b) => b.fromStep <= 17_777 && b.toStep >= 17_777)!;
    expect(spike.max).toBe(9.5);

    // Steps filled in later, last first.
    await report(runId, token, late.reverse());
    await expectBlocksMatchPoints(runId);
    await expectWideCurves(runId, 45_678);

    // A newer attempt resumes from step 17,450 and rewrites up to 33,000 with other values (the
    // spike goes), with a spike of its own at 31,234; then another rewrites inside one coarse block.
    await expireLease(t, runId);
    await t.server.reaper.sweep();
    await endBackoff(t, runId);
    const second = (await agent.claim())!;
    expect(second.run.id).toBe(runId);
    const resumed = wave(17_450, 33_000, 2).map((p) => ({ ...p, loss: p.loss + 0.1 }));
    resumed[31_234 - 17_450]!.loss = 8;
    await report(runId, second.leaseToken, resumed);
    await expectBlocksMatchPoints(runId);
    await expectWideCurves(runId, 45_678);
    const curve4 = await curve(runId, 4);
    expect(Math.max(...curve4.map((b) => b.max))).toBe(8);
    expect(curve4.find((b) => b.fromStep <= 17_777 && b.toStep >= 17_777)!.max).toBeLessThan(5);

    await expireLease(t, runId);
    await t.server.reaper.sweep();
    await endBackoff(t, runId);
    const third = (await agent.claim())!;
    await report(runId, third.leaseToken, wave(38_123, 38_200, 4));
    await expectBlocksMatchPoints(runId);
    await expectWideCurves(runId, 45_678);
  });
});
