import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createBasics, queueRun, type Basics } from './helpers/fixtures.js';
import { registerAgent, type TestAgent, REPORT_LOSS } from './helpers/agents.js';

const report = REPORT_LOSS;
const curveQuery = `query($id: ID!, $max: Int, $from: Int, $to: Int) { run(id: $id) { lossCurve(maxPoints: $max, fromStep: $from, toStep: $to) { step fromStep toStep min max mean last count } } }`;

describe.each(databaseKinds)('loss curves on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  let agent: TestAgent;
  const losses = Array.from({ length: 10_000 }, (_, step) => ({ step, loss: 0.3 + 0.2 * Math.exp(-step / 2000) + 0.01 * Math.cos(step) }));
  const SPIKE_STEP = 6_789;
  losses[SPIKE_STEP]!.loss = 7.5;
  let runId: string;

  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600 });
    basics = await createBasics(t.admin);
    agent = await registerAgent(t, { gpus: [0, 1].map((index) => ({ index, name: 'A', memoryMb: 24_000 })) });
    runId = (await queueRun(t.admin, basics)).id;
    const claim = (await agent.claim())!;
    for (let i = 0; i < losses.length; i += 5000) await agent.client.ok(report, { r: runId, t: claim.leaseToken, p: losses.slice(i, i + 5000) });
  });
  afterAll(() => t?.stop());

  it('folds 10,000 points into at most maxPoints buckets whose counts add up, computed against the raw points', async () => {
    const { run } = await t.admin.ok(curveQuery, { id: runId, max: 300 });
    const buckets = run.lossCurve;
    expect(buckets.length).toBeLessThanOrEqual(300);
    expect(buckets.length).toBeGreaterThan(290);
    expect(buckets.reduce((n: number, b: any) => n + b.count, 0)).toBe(10_000);
    for (const b of buckets) {
      const inBucket = losses.filter((p) => p.step >= b.fromStep && p.step <= b.toStep);
      expect(b.count).toBe(inBucket.length);
      expect(b.min).toBe(Math.min(...inBucket.map((p) => p.loss)));
      expect(b.max).toBe(Math.max(...inBucket.map((p) => p.loss)));
      expect(b.mean).toBeCloseTo(inBucket.reduce((s, p) => s + p.loss, 0) / inBucket.length, 10);
      expect(b.last).toBe(inBucket.at(-1)!.loss);
      expect(b.step).toBe(b.toStep);
    }
    // Buckets tile the steps in order, without overlap.
    for (let i = 1; i < buckets.length; i++) expect(buckets[i].fromStep).toBe(buckets[i - 1].toStep + 1);
  });

  it('gives the same exact buckets whatever their number, however the points are folded (PGlite folds long ranges in slices)', async () => {
    for (const max of [1, 7, 299, 2001, 9999, 10_000]) {
      const buckets = (await t.admin.ok(curveQuery, { id: runId, max })).run.lossCurve;
      expect(buckets.length).toBeLessThanOrEqual(max);
      expect(buckets.reduce((n: number, b: any) => n + b.count, 0)).toBe(10_000);
      for (let i = 1; i < buckets.length; i++) expect(buckets[i].fromStep).toBe(buckets[i - 1].toStep + 1);
      for (const b of buckets.filter((_: unknown, i: number) => i % Math.ceil(buckets.length / 50) === 0)) {
        const inBucket = losses.filter((p) => p.step >= b.fromStep && p.step <= b.toStep);
        expect(b).toMatchObject({ count: inBucket.length, min: Math.min(...inBucket.map((p) => p.loss)), max: Math.max(...inBucket.map((p) => p.loss)), last: inBucket.at(-1)!.loss });
      }
    }
  });

  it('answers each selected figure as a full selection does, however fields and fragments select them', async () => {
    for (const max of [50, 5000]) {
      const full = (await t.admin.ok(curveQuery, { id: runId, max })).run.lossCurve;
      const picked = await t.admin.ok(
        `query($id: ID!, $max: Int) {
          run(id: $id) { a: lossCurve(maxPoints: $max) { max } b: lossCurve(maxPoints: $max) { step ...F } c: lossCurve(maxPoints: $max) { ... on LossBucket { last fromStep } } }
          lossCurves(runIds: [$id], maxPoints: $max) { buckets { ...F } }
        }
        fragment F on LossBucket { mean count }`,
        { id: runId, max },
      );
      expect(picked.run.a).toEqual(full.map((b: any) => ({ max: b.max })));
      expect(picked.run.b).toEqual(full.map((b: any) => ({ step: b.step, mean: b.mean, count: b.count })));
      expect(picked.run.c).toEqual(full.map((b: any) => ({ last: b.last, fromStep: b.fromStep })));
      expect(picked.lossCurves[0].buckets).toEqual(full.map((b: any) => ({ mean: b.mean, count: b.count })));
    }
  });

  it('keeps a single-step spike visible as its bucket max', async () => {
    const { run } = await t.admin.ok(curveQuery, { id: runId, max: 50 });
    const spike = run.lossCurve.find((b: any) => b.fromStep <= SPIKE_STEP && b.toStep >= SPIKE_STEP);
    expect(spike.max).toBe(7.5);
    expect(spike.mean).toBeLessThan(1); // averaged away, which is why max is kept
  });

  it('honours inclusive step bounds', async () => {
    const { run } = await t.admin.ok(curveQuery, { id: runId, max: 1000, from: 100, to: 199 });
    expect(run.lossCurve).toHaveLength(100);
    expect(run.lossCurve[0]).toMatchObject({ fromStep: 100, toStep: 100, count: 1, last: losses[100]!.loss });
    expect(run.lossCurve.at(-1)).toMatchObject({ fromStep: 199, toStep: 199 });
    await t.admin.fails('BAD_USER_INPUT', curveQuery, { id: runId, from: 10, to: 5 }, 'toStep');
    await t.admin.fails('BAD_USER_INPUT', curveQuery, { id: runId, max: 0 }, 'maxPoints');
  });

  it('reads back every float exactly, tiny, huge and negative ones too, from the points and from the blocks', async () => {
    // PostgreSQL prints these with exponents (1.5e-07, 1e+21) that JavaScript writes otherwise.
    const odd = [1.5e-7, 2.5e-5, 1e21, -3.75, 123456789.123, 0.1 + 0.2, 5e-324, 3e38];
    const points = Array.from({ length: 400 }, (_, step) => ({ step, loss: odd[step % odd.length]! * (1 + step / 1e6) }));
    const run = await queueRun(t.admin, basics);
    const claim = (await agent.claim())!;
    expect(claim.run.id).toBe(run.id);
    await agent.client.ok(report, { r: run.id, t: claim.leaseToken, p: points });
    // One bucket per point: folded from the points.
    const each = (await t.admin.ok(curveQuery, { id: run.id, max: 400 })).run.lossCurve;
    expect(each.map((b: any) => [b.min, b.max, b.mean, b.last])).toEqual(points.map((p) => [p.loss, p.loss, p.loss, p.loss]));
    // Two buckets of two 100-step blocks each: read from the blocks.
    const halves = (await t.admin.ok(curveQuery, { id: run.id, max: 2 })).run.lossCurve;
    expect(halves.map((b: any) => [b.fromStep, b.toStep, b.min, b.max, b.last])).toEqual(
      [points.slice(0, 200), points.slice(200)].map((half) => [
        half[0]!.step,
        half.at(-1)!.step,
        Math.min(...half.map((p) => p.loss)),
        Math.max(...half.map((p) => p.loss)),
        half.at(-1)!.loss,
      ]),
    );
  });

  it('returns several runs in one round trip, and nothing for a run without points', async () => {
    const empty = await queueRun(t.admin, basics);
    const { lossCurves } = await t.admin.ok(`query($ids: [ID!]!) { lossCurves(runIds: $ids, maxPoints: 20) { run { id } buckets { count } } }`, { ids: [runId, empty.id] });
    expect(lossCurves.map((c: any) => c.run.id)).toEqual([runId, empty.id]);
    expect(lossCurves[0].buckets.reduce((n: number, b: any) => n + b.count, 0)).toBe(10_000);
    expect(lossCurves[1].buckets).toEqual([]);
  });
});
