// Issue 4, measured side by side on PostgreSQL:
//  - reportLoss over HTTP (batches of 1,000, 4 concurrent reporters), in both its forms (a list of
//    {step, loss, lr} objects; reportLossColumns' parallel lists, what the agent sends), against a
//    raw `unnest` insert of the same points straight into the same table with 4 connections;
//  - lossCurve(maxPoints: 1000) on a run of 100,000 points against fetching all its raw points, and
//    the SQL alone: folding the raw points (what it did before loss_blocks) and reading the blocks.
import { createBasics, createKey, freshPostgres, gql, isMain, post, percentile, startServerProcess, table, ms } from './lib.js';
import { connectPostgres } from '../src/db/client.js';

const REPORTERS = 4;
const BATCH = 1000;
const BATCHES = 60;

const report = `mutation($r: ID!, $t: String!, $p: [LossPointInput!]!) { reportLoss(runId: $r, leaseToken: $t, points: $p) { accepted } }`;
const reportColumns = `mutation($r: ID!, $t: String!, $s: [Int!]!, $l: [Float!]!, $lr: [Float]) { reportLossColumns(runId: $r, leaseToken: $t, steps: $s, losses: $l, lrs: $lr) { accepted } }`;
const ROUNDS = 3;

function batchPoints(from: number) {
  return Array.from({ length: BATCH }, (_, i) => ({ step: from + i, loss: 0.3 + Math.random() * 0.1, lr: 4e-4 }));
}

export async function run() {
  const pg = await freshPostgres();
  const server = await startServerProcess({ databaseUrl: pg.url, env: { REAPER_INTERVAL_SECONDS: '3600' } });
  const sql = connectPostgres(pg.url, { max: REPORTERS, onnotice: () => {} });
  try {
    const { url, adminKey } = server;
    const basics = await createBasics(url, adminKey);
    const agentKey = await createKey(url, adminKey, 'AGENT');
    const { registerAgent } = await gql(url, agentKey, `mutation($i: RegisterAgentInput!) { registerAgent(input: $i) { id } }`, {
      i: { name: 'bench', gpus: Array.from({ length: 2 * REPORTERS + 1 }, (_, index) => ({ index, name: 'H100', memoryMb: 81_559 })) },
    });
    const claims: { runId: string; token: string }[] = [];
    for (let i = 0; i < 2 * REPORTERS + 1; i++) {
      await gql(url, adminKey, `mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`, { i: basics });
      const { claimRun } = await gql(url, agentKey, `mutation($a: ID!) { claimRun(agentId: $a) { run { id } leaseToken } }`, { a: registerAgent.id });
      claims.push({ runId: claimRun.run.id, token: claimRun.leaseToken });
    }
    const rawRun = claims[0]!;
    const apiRuns = claims.slice(1, REPORTERS + 1);
    const columnRuns = claims.slice(REPORTERS + 1);

    // Request bodies are built before the clock starts: only the server's work is timed.
    const bodies = apiRuns.map((c) => Array.from({ length: BATCHES }, (_, b) => JSON.stringify({ query: report, variables: { r: c.runId, t: c.token, p: batchPoints(b * BATCH) } })));
    const columnBodies = columnRuns.map((c) =>
      Array.from({ length: BATCHES }, (_, b) => {
        const points = batchPoints(b * BATCH);
        return JSON.stringify({ query: reportColumns, variables: { r: c.runId, t: c.token, s: points.map((p) => p.step), l: points.map((p) => p.loss), lr: points.map((p) => p.lr) } });
      }),
    );
    const rawBatches = Array.from({ length: REPORTERS }, (_, w) => Array.from({ length: BATCHES }, (_, b) => batchPoints(w * 1_000_000 + b * BATCH)));

    const rates: { api: number; columns: number; raw: number }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order so that none always gets the warmer (or the fuller) database.
      const api = (requests: string[][]) => async () => {
        const start = performance.now();
        await Promise.all(
          requests.map(async (list) => {
            for (const body of list) {
              const json = JSON.parse(await post(url, agentKey, body)) as { errors?: unknown };
              if (json.errors) throw new Error(JSON.stringify(json.errors));
            }
          }),
        );
        return (REPORTERS * BATCHES * BATCH) / ((performance.now() - start) / 1000);
      };
      const raw = async () => {
        const start = performance.now();
        await Promise.all(
          rawBatches.map(async (list) => {
            for (const points of list) {
              await sql`insert into loss_points (run_id, step, loss, lr, attempt)
                select ${rawRun!.runId}, s, l, r, 1 from unnest(${points.map((p) => p.step)}::int[], ${points.map((p) => p.loss)}::float8[], ${points.map((p) => p.lr)}::float8[]) as u(s, l, r)`;
            }
          }),
        );
        return (REPORTERS * BATCHES * BATCH) / ((performance.now() - start) / 1000);
      };
      const contenders = [
        ['api', api(bodies)],
        ['columns', api(columnBodies)],
        ['raw', raw],
      ] as const;
      const result = { api: 0, columns: 0, raw: 0 };
      for (let i = 0; i < contenders.length; i++) {
        const [name, measure] = contenders[(i + round) % contenders.length]!;
        result[name] = await measure();
      }
      rates.push(result);
      // Fresh tables for the next round.
      await sql`delete from loss_points`;
      await sql`delete from loss_blocks`;
      await sql`update run_summaries set points = 0, last_step = null, last_loss = null, min_loss = null, min_loss_step = null, ema_loss = null`;
    }
    const best = (key: keyof (typeof rates)[number]) => Math.max(...rates.map((r) => r[key]));
    const [api, columns, raw] = [best('api'), best('columns'), best('raw')];
    table('Loss ingestion on PostgreSQL (issue 4)', [
      ['reportLoss(points) over HTTP', `${api.toFixed(0)} points/s (4 reporters × batches of 1,000 {step, loss, lr}, best of ${ROUNDS} rounds)`],
      ['reportLossColumns over HTTP', `${columns.toFixed(0)} points/s (the same batches as parallel lists, as the agent sends them)`],
      ['raw unnest insert', `${raw.toFixed(0)} points/s (4 connections, same points, same table)`],
      ['ratio, reportLoss(points)', `${(api / raw).toFixed(2)}`],
      ['ratio, reportLossColumns', `${(columns / raw).toFixed(2)}   (goal ≥ 0.6)`],
    ]);

    // A run of 100,000 points: the curve against every raw point.
    const big = apiRuns[0]!;
    for (let from = 0; from < 100_000; from += 5000) {
      await gql(url, agentKey, report, { r: big.runId, t: big.token, p: Array.from({ length: 5000 }, (_, i) => ({ step: from + i, loss: 0.3 + Math.sin((from + i) / 50) * 0.05 })) });
    }
    // The curve, the smallest request on the same run (the floor any request pays here, which on a
    // busy 2-core machine moves a lot), then the raw points. Each in its own loop: a 100,000-point
    // fetch leaves a large GC debt that would otherwise be paid inside the next curve request.
    const timeRequest = async (query: string, check: (data: any) => void) => {
      const body = JSON.stringify({ query, variables: { id: big.runId } });
      const times: number[] = [];
      for (let i = 0; i < 60; i++) {
        const start = performance.now();
        const json = JSON.parse(await post(url, adminKey, body));
        times.push(performance.now() - start);
        if (json.errors) throw new Error(JSON.stringify(json.errors));
        check(json.data);
      }
      return times;
    };
    const curveTimes = await timeRequest(`query($id: ID!) { run(id: $id) { lossCurve(maxPoints: 1000) { step min max mean last count } } }`, (data) => {
      if (data.run.lossCurve.length !== 1000) throw new Error(`expected 1000 buckets, got ${data.run.lossCurve.length}`);
    });
    const floorTimes = await timeRequest(`query($id: ID!) { run(id: $id) { id } }`, () => {});
    const rawTimes: number[] = [];
    for (let i = 0; i < 10; i++) {
      const start = performance.now();
      let after = -1;
      let fetched = 0;
      for (;;) {
        const { run: page } = await gql(url, adminKey, `query($id: ID!, $after: Int) { run(id: $id) { lossPoints(afterStep: $after, first: 10000) { step loss } } }`, { id: big.runId, after });
        fetched += page.lossPoints.length;
        if (page.lossPoints.length < 10000) break;
        after = page.lossPoints.at(-1).step;
      }
      rawTimes.push(performance.now() - start);
      if (fetched !== 100_000) throw new Error(`fetched ${fetched} points`);
    }
    const curveSql: number[] = [];
    const blockSql: number[] = [];
    for (let i = 0; i < 30; i++) {
      let start = performance.now();
      await sql`select count(*) from (
        select (step::bigint * 1000 / 100000) as b, min(loss), max(loss), avg(loss), (array_agg(loss order by step desc))[1], count(*)
        from loss_points where run_id = ${big.runId} group by b) x`;
      curveSql.push(performance.now() - start);
      start = performance.now();
      await sql`select count(*) from (
        select block::bigint * 1000 / 1000 as b, min(min_loss), max(max_loss), sum(loss_sum) / sum(points), (array_agg(last_loss order by last_step desc))[1], sum(points)
        from loss_blocks where run_id = ${big.runId} group by b) x`;
      blockSql.push(performance.now() - start);
    }
    table('Loss curve of a 100,000-point run on PostgreSQL (issue 4)', [
      ['lossCurve(maxPoints: 1000) over HTTP', `p50 ${ms(percentile(curveTimes, 50))}, p99 ${ms(percentile(curveTimes, 99))}   (goal p50 ≤ 15 ms)`],
      ['  floor: run(id) { id } over HTTP', `p50 ${ms(percentile(floorTimes, 50))} (the smallest request, same server and moment)`],
      ['  SQL: buckets from loss_blocks', `p50 ${ms(percentile(blockSql, 50))} (1,000 rows of 100-step blocks)`],
      ['  SQL: buckets from the raw points', `p50 ${ms(percentile(curveSql, 50))} (100,000 rows; how curves were served before loss_blocks)`],
      ['all 100,000 raw points over HTTP', `p50 ${ms(percentile(rawTimes, 50))} (10 pages of lossPoints(first: 10000))`],
      ['speed-up', `${(percentile(rawTimes, 50) / percentile(curveTimes, 50)).toFixed(1)}×`],
    ]);
  } finally {
    await sql.end();
    await server.stop();
    await pg.drop();
  }
}

if (isMain(import.meta.url)) await run();
