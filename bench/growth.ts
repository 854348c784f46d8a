// Issue 19: how cost grows with work, the smaller and the larger side by side in one run on
// PostgreSQL, each as the ratio larger / smaller of the median latency:
// - the runs page (runs(first: 50), newest first) at 10,000 and 100,000 runs (goal: flat);
// - lossCurve(maxPoints: 1000) at 100,000 and 1,000,000 points (goal: flat);
// - compareRuns at 2,000 and 20,000 runs (goal: at most linear, ≤ 10×).
// Sizes shrink with GROWTH_SCALE (e.g. 0.1) for a quick look; the figures to quote come from 1.
import { createBasics, createKey, freshPostgres, gql, isMain, ms, percentile, post, queueRuns, startServerProcess, table, FINISH_ATTEMPT } from './lib.js';

const SCALE = Number(process.env.GROWTH_SCALE ?? 1);
const SAMPLES = 40;
/** GROWTH_ONLY=curve (or 'runs page', compareRuns) measures one figure alone. */
const ONLY = process.env.GROWTH_ONLY;

async function median(url: string, key: string, query: string, variables: Record<string, unknown>) {
  const body = JSON.stringify({ query, variables });
  for (let i = 0; i < 5; i++) await post(url, key, body); // warm: plans, caches
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = performance.now();
    const text = await post(url, key, body);
    times.push(performance.now() - t0);
    if (text.includes('"errors"')) throw new Error(text.slice(0, 300));
  }
  return percentile(times, 50);
}

async function setup() {
  const pg = await freshPostgres();
  const server = await startServerProcess({ databaseUrl: pg.url, env: { REAPER_INTERVAL_SECONDS: '3600' } });
  const basics = await createBasics(server.url, server.adminKey);
  return { pg, server, basics };
}

/** `count` runs queued in sweeps of 1,000 (queueRuns takes 10,000 at a time). */
async function queueMany(url: string, key: string, basics: Awaited<ReturnType<typeof createBasics>>, count: number) {
  for (let done = 0; done < count; done += 10_000) await queueRuns(url, key, basics, Math.min(10_000, count - done));
}

const PAGE = `query { runs(first: 50) { edges { node { id name status hyperparameters { rank learningRate steps } lossSummary { lastLoss minLoss emaLoss } } } } }`;
const COMPARE = `{ compareRuns(groupBy: [RANK, LEARNING_RATE, STEPS]) { key { rank learningRate steps } runCount meanLastLoss minLoss } }`;
const CURVE = `query($id: ID!) { run(id: $id) { lossCurve(maxPoints: 1000) { step min max mean last } } }`;

export async function run() {
  const sizes = {
    page: [10_000, 100_000].map((n) => Math.round(n * SCALE)),
    compare: [2_000, 20_000].map((n) => Math.round(n * SCALE)),
    curve: [100_000, 1_000_000].map((n) => Math.round(n * SCALE)),
  };
  const rows: [string, string][] = [];

  // Runs page and compareRuns: one database grows from the smaller count to the larger.
  for (const [what, [small, large], query, goal] of [
    ['runs page', sizes.page, PAGE, 'flat'],
    ['compareRuns', sizes.compare, COMPARE, '≤ linear: ≤ 10×'],
  ] as const) {
    if (ONLY && ONLY !== what) continue;
    const { pg, server, basics } = await setup();
    try {
      const viewer = await createKey(server.url, server.adminKey, 'VIEWER');
      await queueMany(server.url, server.adminKey, basics, small);
      const atSmall = await median(server.url, viewer, query, {});
      await queueMany(server.url, server.adminKey, basics, large - small);
      const atLarge = await median(server.url, viewer, query, {});
      rows.push([`${what} ${small.toLocaleString('en-US')} → ${large.toLocaleString('en-US')} runs`, `${ms(atSmall)} → ${ms(atLarge)} = ${(atLarge / atSmall).toFixed(2)}×   (goal: ${goal})`]);
    } finally {
      await server.stop();
      await pg.drop();
    }
  }

  // lossCurve: two runs in one database, one with each count of points.
  if (!ONLY || ONLY === 'curve') {
    const { pg, server, basics } = await setup();
    try {
      const { url, adminKey } = server;
      const agentKey = await createKey(url, adminKey, 'AGENT');
      const viewer = await createKey(url, adminKey, 'VIEWER');
      const { registerAgent } = await gql(url, agentKey, `mutation { registerAgent(input: { name: "growth", gpus: [{ index: 0, name: "H100", memoryMb: 81559 }] }) { id } }`);
      const curves: number[] = [];
      for (const points of sizes.curve) {
        await queueRuns(url, adminKey, basics, 1);
        const { claimRun } = await gql(url, agentKey, `mutation($a: ID!) { claimRun(agentId: $a) { run { id } leaseToken } }`, { a: registerAgent.id });
        for (let from = 0; from < points; from += 5000) {
          const batch = Array.from({ length: Math.min(5000, points - from) }, (_, i) => ({ step: from + i, loss: 0.3 + Math.sin(from + i) * 0.05, lr: 4e-4 }));
          await gql(url, agentKey, `mutation($r: ID!, $t: String!, $p: [LossPointInput!]!) { reportLoss(runId: $r, leaseToken: $t, points: $p) { accepted } }`, {
            r: claimRun.run.id,
            t: claimRun.leaseToken,
            p: batch,
          });
        }
        await gql(url, agentKey, FINISH_ATTEMPT, { r: claimRun.run.id, t: claimRun.leaseToken });
        curves.push(await median(url, viewer, CURVE, { id: claimRun.run.id }));
      }
      const [small, large] = sizes.curve;
      rows.push([`lossCurve(1000) ${small!.toLocaleString('en-US')} → ${large!.toLocaleString('en-US')} points`, `${ms(curves[0]!)} → ${ms(curves[1]!)} = ${(curves[1]! / curves[0]!).toFixed(2)}×   (goal: flat)`]);
    } finally {
      await server.stop();
      await pg.drop();
    }
  }

  table(`How cost grows with work on PostgreSQL (issue 19; median of ${SAMPLES} requests, one at a time${SCALE !== 1 ? `; GROWTH_SCALE ${SCALE}` : ''})`, rows);
}

if (isMain(import.meta.url)) await run();
