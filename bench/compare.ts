// Issue 6: compareRuns and checkpointMatrix over 2,000 runs with 3,000 loss points each on
// PostgreSQL, each beside the same answer computed by a plain aggregate over loss_points.
import { BENCH_DATABASE_URL, createBasics, freshPostgres, gql, isMain, percentile, queueRuns, startServerProcess, table, ms } from './lib.js';
import { connectPostgres } from '../src/db/client.js';

const RUNS = 2000;
const POINTS = 3000;
const REPEAT = 20;
const progress = (what: string) => process.env.BENCH_VERBOSE && console.log(`  … ${what}`);

async function timings(fn: () => Promise<unknown>, repeat = REPEAT) {
  await fn(); // warm
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

const p50 = async (fn: () => Promise<unknown>, repeat = REPEAT) => (await timings(fn, repeat)).p50;

/**
 * BENCH_KEEP_DB=<name> seeds the database <name> once and keeps it, so that iterating on the server
 * costs seconds instead of the three minutes of seeding; the server's code must keep its schema.
 * Without it, every run seeds a fresh database and drops it at the end.
 */
async function keptPostgres(name: string) {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error('BENCH_KEEP_DB must be a plain lower-case identifier');
  const admin = connectPostgres(BENCH_DATABASE_URL, { max: 1, onnotice: () => {} });
  const [found] = await admin`select 1 from pg_database where datname = ${name}`;
  if (!found) await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(BENCH_DATABASE_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: async () => {} };
}

export async function run() {
  const keep = process.env.BENCH_KEEP_DB;
  const pg = keep ? await keptPostgres(keep) : await freshPostgres();
  // A kept database already holds its admin key, so the key must be the same on every run.
  const server = await startServerProcess({
    databaseUrl: pg.url,
    adminKey: keep ? `llk_bench_keep_${keep}` : undefined,
    env: { REAPER_INTERVAL_SECONDS: '3600' },
  });
  const sql = connectPostgres(pg.url, { max: 2, onnotice: () => {} });
  try {
    const { url, adminKey } = server;
    const [{ seeded }] = await sql`select exists (select 1 from ratings) as seeded`;
    if (!seeded) await seed(url, adminKey, sql);
    await measure(url, adminKey, sql);
  } finally {
    await sql.end();
    await server.stop();
    await pg.drop();
  }
}

let seedSeconds = 0;

async function seed(url: string, adminKey: string, sql: ReturnType<typeof connectPostgres>) {
  const basics = await createBasics(url, adminKey);
  await queueRuns(url, adminKey, basics, RUNS);
  progress('await queueRuns(url, adminKey,');
  // Seeding 6 M points through the API would take minutes and measure ingestion, not comparison:
  // the points, checkpoints, ratings and summaries are written here in set-based SQL instead.
  const seedStart = performance.now();
  await sql`insert into loss_points (run_id, step, loss, lr, attempt)
    select r.id, s, 0.05 + 1.0 / (1 + s * r.learning_rate * r.rank) + 0.01 * sin(s + r.rank), r.learning_rate, 1
    from runs r, generate_series(0, ${POINTS - 1}) s`;
  progress('      from runs r, generate_se');
  await sql`update runs set status = 'SUCCEEDED', attempt = 1, started_at = now() - interval '2 hours', finished_at = now(), cost_usd = 1.5 + rank / 100.0`;
  await sql`with ordered as (
      select run_id, step, loss, row_number() over (partition by run_id order by step) - 1 as i, count(*) over (partition by run_id) as n from loss_points),
    agg as (select run_id, count(*)::int as points, max(step) as last_step, (array_agg(loss order by step desc))[1] as last_loss, min(loss) as min_loss,
      (array_agg(step order by loss, step))[1] as min_loss_step,
      sum(loss * case when i = 0 then power(0.9, n - 1) else 0.1 * power(0.9, n - 1 - i) end) as ema_loss from ordered group by run_id)
    update run_summaries s set points = agg.points, last_step = agg.last_step, last_loss = agg.last_loss, min_loss = agg.min_loss,
      min_loss_step = agg.min_loss_step, ema_loss = agg.ema_loss from agg where s.run_id = agg.run_id`;
  progress('min_loss_step = agg.min_loss_s');
  await sql`insert into checkpoints (run_id, step, path, is_final, attempt)
    select r.id, s, '/out/' || r.id || '_' || s || '.safetensors', s = ${POINTS}, 1 from runs r, unnest(array[1000, 2000, ${POINTS}]) s`;
  await sql`update checkpoints c set ema_loss = (
      select sum(o.loss * case when o.i = 0 then power(0.9, o.n - 1) else 0.1 * power(0.9, o.n - 1 - o.i) end)
      from (select loss, row_number() over (order by step) - 1 as i, count(*) over () as n from loss_points p where p.run_id = c.run_id and p.step <= c.step) o)`;
  progress('from (select loss, row_number(');
  await sql`insert into ratings (checkpoint_id, score) select id, 1 + (abs(hashtext(id::text)) % 5) from checkpoints where step = 2000`;
  await sql`update run_summaries s set best_mean_rating = m.best from (
      select c.run_id, max(avg_score) as best from (select checkpoint_id, avg(score)::float8 as avg_score from ratings group by checkpoint_id) r
      join checkpoints c on c.id = r.checkpoint_id group by c.run_id) m where m.run_id = s.run_id`;
  await sql`analyze`;
  seedSeconds = (performance.now() - seedStart) / 1000;
}

async function measure(url: string, adminKey: string, sql: ReturnType<typeof connectPostgres>) {
  const compareQuery = `{ compareRuns(groupBy: [RANK, LEARNING_RATE, STEPS]) { key { rank learningRate steps } runCount succeeded meanLastLoss minLoss meanEmaLoss bestMeanRating meanCostUsd meanDurationSeconds } }`;
  const { compareRuns } = await gql(url, adminKey, compareQuery);
  const compareApi = await timings(() => gql(url, adminKey, compareQuery), 100); // enough tries for a p99
  const withRunsQuery = compareQuery.replace(/ } }$/, ' runs { id name } } }');
  const compareWithRuns = await timings(() => gql(url, adminKey, withRunsQuery), 40);
  const compareRaw = await p50(
    () => sql`with ordered as (
        select run_id, step, loss, row_number() over (partition by run_id order by step) - 1 as i, count(*) over (partition by run_id) as n from loss_points),
      per_run as (select run_id, (array_agg(loss order by step desc))[1] as last_loss, min(loss) as min_loss,
        sum(loss * case when i = 0 then power(0.9, n - 1) else 0.1 * power(0.9, n - 1 - i) end) as ema from ordered group by run_id)
      select r.rank, r.learning_rate, r.steps, count(*), avg(p.last_loss), min(p.min_loss), avg(p.ema)
      from runs r join per_run p on p.run_id = r.id group by 1, 2, 3`,
    3, // seconds per try: three are enough to tell
  );

  const matrixFilter = { rank: { eq: 4 }, learningRate: { lte: 5.5e-4 } };
  const matrixQuery = `query($f: RunFilter) { checkpointMatrix(filter: $f) { steps rows { run { id } cells { step meanRating emaLoss checkpoint { id } } } } }`;
  const { checkpointMatrix } = await gql(url, adminKey, matrixQuery, { f: matrixFilter });
  const matrixApi = await p50(() => gql(url, adminKey, matrixQuery, { f: matrixFilter }));
  const runIds = checkpointMatrix.rows.map((r: { run: { id: string } }) => r.run.id);
  const matrixRaw = await p50(
    () => sql`select c.run_id, c.step, (select avg(score) from ratings where checkpoint_id = c.id),
        (select sum(o.loss * case when o.i = 0 then power(0.9, o.n - 1) else 0.1 * power(0.9, o.n - 1 - o.i) end)
         from (select loss, row_number() over (order by step) - 1 as i, count(*) over () as n from loss_points p where p.run_id = c.run_id and p.step <= c.step) o)
      from checkpoints c where c.run_id = any(${runIds}::uuid[])`,
  );

  table(`Comparing ${RUNS} runs × ${POINTS} loss points on PostgreSQL (issue 6; ${seedSeconds ? `seeded in ${seedSeconds.toFixed(0)} s` : 'kept database'})`, [
    ['compareRuns(groupBy: [RANK, LEARNING_RATE, STEPS])', `p50 ${ms(compareApi.p50)} (p99 ${ms(compareApi.p99)}) over HTTP, ${compareRuns.length} groups   (goal ≤ 50 ms)`],
    ['  same answer by aggregating loss_points', `p50 ${ms(compareRaw)} (SQL alone)   → ${(compareRaw / compareApi.p50).toFixed(0)}× slower`],
    ['  with each group\'s runs { id name }', `p50 ${ms(compareWithRuns.p50)} (p99 ${ms(compareWithRuns.p99)}) over HTTP`],
    [`checkpointMatrix over ${runIds.length} runs`, `p50 ${ms(matrixApi)} over HTTP, ${checkpointMatrix.steps.length} steps`],
    ['  same answer by aggregating loss_points', `p50 ${ms(matrixRaw)} (SQL alone)   → ${(matrixRaw / matrixApi).toFixed(1)}× slower`],
  ]);
}

if (isMain(import.meta.url)) await run();
