// Issue 19: throughput as ratios to the database's own limit, measured side by side.
// 1. Claims: claimRun + completeRun through GraphQL (a server process) against the same SKIP LOCKED
//    claim-and-complete statements sent by this process straight through the same database layer
//    (src/db/client.ts, a pool of the same size): goal ≥ 0.5×.
// 2. lossCurve(maxPoints: 1000) over HTTP against the floor request run(id) { id }: goal ≤ 3×.
import { randomBytes } from 'node:crypto';
import { connectPostgres, openDatabase } from '../src/db/client.js';
import { claimStatements, completeRun } from '../src/modules/dispatch/dispatch.store.js';
import { createBasics, createKey, freshPostgres, gql, isMain, ms, percentile, post, queueRuns, startServerProcess, table, FINISH_ATTEMPT } from './lib.js';

const RUNS = Number(process.env.RATIO_RUNS ?? 2000);
const AGENTS = 20;
const POOL = 10;
const CURVE_POINTS = 100_000;
const CURVE_REQUESTS = 200;
const CONCURRENCY = 4;
/** RATIO_ONLY=curve skips the claims (the figure to quote still comes from a whole run). */
const ONLY = process.env.RATIO_ONLY;

async function drainThroughGraphql(url: string, key: string, agents: string[]) {
  let claimed = 0;
  const started = performance.now();
  await Promise.all(
    agents.map(async (a) => {
      for (;;) {
        const { claimRun } = await gql(url, key, `mutation($a: ID!) { claimRun(agentId: $a) { run { id } leaseToken } }`, { a });
        if (!claimRun) return;
        claimed++;
        await gql(url, key, FINISH_ATTEMPT, { r: claimRun.run.id, t: claimRun.leaseToken });
      }
    }),
  );
  return claimed / ((performance.now() - started) / 1000);
}

async function drainRaw(databaseUrl: string, agents: string[], apiKeyId: string) {
  const db = await openDatabase({ kind: 'postgres', url: databaseUrl, maxConnections: POOL });
  try {
    let claimed = 0;
    const started = performance.now();
    await Promise.all(
      agents.map(async (agentId) => {
        for (;;) {
          const leaseToken = randomBytes(24).toString('base64url');
          const [, [row]] = await db.batch(claimStatements({ agentId, apiKeyId, actsAsAnyAgent: false }, leaseToken, 60));
          if (!row) return;
          claimed++;
          await completeRun(db, { runId: (row as { id: string }).id, leaseToken, apiKeyId }, 'FAILED', { code: 'BENCH', message: 'the bench trains nothing', logTail: null });
        }
      }),
    );
    return claimed / ((performance.now() - started) / 1000);
  } finally {
    await db.close();
  }
}

async function latencies(url: string, key: string, body: string, n: number) {
  const times: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < n) {
        const t0 = performance.now();
        const text = await post(url, key, body);
        times.push(performance.now() - t0);
        if (text.includes('"errors"')) throw new Error(text.slice(0, 300));
      }
    }),
  );
  return times;
}

export async function run() {
  const pg = await freshPostgres();
  const server = await startServerProcess({ databaseUrl: pg.url, env: { REAPER_INTERVAL_SECONDS: '3600', DATABASE_POOL_SIZE: String(POOL) } });
  try {
    const { url, adminKey } = server;
    const basics = await createBasics(url, adminKey);
    const agentKey = await createKey(url, adminKey, 'AGENT');
    const register = (prefix: string) =>
      Promise.all(
        Array.from({ length: AGENTS }, async (_, i) => {
          const { registerAgent } = await gql(url, agentKey, `mutation($i: RegisterAgentInput!) { registerAgent(input: $i) { id } }`, {
            i: { name: `${prefix}-${i}`, gpus: [{ index: 0, name: 'H100', memoryMb: 81_559 }] },
          });
          return registerAgent.id as string;
        }),
      );
    const graphqlAgents = await register('graphql');
    const rawAgents = await register('raw');
    const db = await openDatabase({ kind: 'postgres', url: pg.url, maxConnections: 1 });
    const [keyRow] = await db.prepared((await import('drizzle-orm')).sql`select api_key_id from agents where id = ${rawAgents[0]!}`);
    await db.close();

    // Both paths once unmeasured first: a server that has just started still compiles its claim
    // path (its first round ran 0.38–0.49× where the second ran 0.50–0.67×), and a server in use
    // long since has.
    if (ONLY !== 'curve') {
      await queueRuns(url, adminKey, basics, RUNS / 4);
      await drainThroughGraphql(url, agentKey, graphqlAgents);
      await queueRuns(url, adminKey, basics, RUNS / 4);
      await drainRaw(pg.url, rawAgents, (keyRow as { api_key_id: string }).api_key_id);
    }
    // Side by side, twice each, alternating: the machine's other load falls on both.
    const rounds: { graphql: number; raw: number }[] = [];
    for (let round = 0; round < (ONLY === 'curve' ? 0 : 2); round++) {
      await queueRuns(url, adminKey, basics, RUNS);
      const graphql = await drainThroughGraphql(url, agentKey, graphqlAgents);
      await queueRuns(url, adminKey, basics, RUNS);
      const raw = await drainRaw(pg.url, rawAgents, (keyRow as { api_key_id: string }).api_key_id);
      rounds.push({ graphql, raw });
    }

    // One run with CURVE_POINTS points, then the curve and the floor request, interleaved.
    await queueRuns(url, adminKey, basics, 1);
    const { claimRun } = await gql(url, agentKey, `mutation($a: ID!) { claimRun(agentId: $a) { run { id } leaseToken } }`, { a: graphqlAgents[0] });
    const runId = claimRun.run.id as string;
    for (let from = 0; from < CURVE_POINTS; from += 5000) {
      const points = Array.from({ length: 5000 }, (_, i) => ({ step: from + i, loss: 0.3 + Math.sin(from + i) * 0.05, lr: 4e-4 }));
      await gql(url, agentKey, `mutation($r: ID!, $t: String!, $p: [LossPointInput!]!) { reportLoss(runId: $r, leaseToken: $t, points: $p) { accepted } }`, { r: runId, t: claimRun.leaseToken, p: points });
    }
    // A settled database, as a finished run's curve is read from: autovacuum woken by the claims'
    // churn or by these inserts would otherwise run beside the measurement, on the same two cores,
    // and fall on the curve's statement more than on the floor's.
    const settle = connectPostgres(pg.url, { max: 1, onnotice: () => {} });
    await settle.unsafe('vacuum analyze');
    await settle.end();
    const viewer = await createKey(url, adminKey, 'VIEWER');
    const curveBody = JSON.stringify({ query: `query($id: ID!) { run(id: $id) { lossCurve(maxPoints: 1000) { step min max mean last } } }`, variables: { id: runId } });
    const floorBody = JSON.stringify({ query: `query($id: ID!) { run(id: $id) { id } }`, variables: { id: runId } });
    await latencies(url, viewer, curveBody, 20);
    await latencies(url, viewer, floorBody, 20);
    const curve: number[] = [];
    const floor: number[] = [];
    for (let i = 0; i < 4; i++) {
      curve.push(...(await latencies(url, viewer, curveBody, CURVE_REQUESTS / 4)));
      floor.push(...(await latencies(url, viewer, floorBody, CURVE_REQUESTS / 4)));
    }
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

    const claimRatio = rounds.map((r) => r.graphql / r.raw);
    table('Throughput as ratios to the database (issue 19)', [
      ...(ONLY === 'curve' ? [] : [[
        'claims: GraphQL / raw statements',
        `${rounds.map((r, i) => `${r.graphql.toFixed(0)}/s ÷ ${r.raw.toFixed(0)}/s = ${claimRatio[i]!.toFixed(2)}×`).join('; ')}   (goal ≥ 0.5×; ${AGENTS} agents, ${RUNS} runs, pool ${POOL})`,
      ] as [string, string]]),
      [
        'lossCurve(1000) / run { id }',
        `${(mean(curve) / mean(floor)).toFixed(2)}× by mean (${ms(mean(curve))} vs ${ms(mean(floor))}); p50 ${ms(percentile(curve, 50))} vs ${ms(percentile(floor, 50))}   (goal ≤ 3×; ${CURVE_POINTS} points, ${CONCURRENCY} at a time)`,
      ],
    ]);
  } finally {
    await server.stop();
    await pg.drop();
  }
}

if (isMain(import.meta.url)) await run();
