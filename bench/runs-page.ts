// Issue 2: one page of runs, the query a dashboard sends most, over 10,000 runs on PostgreSQL and
// on PGlite. Latency is measured against a server in its own process (as `npm start` runs it);
// the statement count comes from an in-process server on the same database, whose driver counts
// every statement it sends.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import pino from 'pino';
import { loadConfig } from '../src/config.js';
import { openDatabase, type Database } from '../src/db/client.js';
import { startServer } from '../src/server.js';
import { BENCH_DATABASE_URL, freshPostgres, gql, isMain, ms, percentile, startServerProcess, timed } from './lib.js';

const RUNS = 10_000;
const SWEEP = 1_000; // the largest sweep the API takes
const WARMUP = 20;
const SAMPLES = 200;

const NESTED = `id name status
  experiment { id name goal }
  dataset { id name imageCount }
  captionStrategy { id name kind triggerWord }
  hyperparameters { rank alpha learningRate steps }
  lossSummary { points lastStep lastLoss minLoss emaLoss }
  checkpoints { id step path isFinal }`;

interface Shape {
  name: string;
  query: string;
  variables: (ids: Seeded) => Record<string, unknown>;
}

const SHAPES: Shape[] = [
  {
    name: 'filtered, by min loss',
    query: `query($filter: RunFilter) {
      runs(first: 100, filter: $filter, orderBy: { field: MIN_LOSS, direction: ASC }) { totalCount pageInfo { endCursor } edges { node { ${NESTED} } } }
    }`,
    variables: (ids) => ({ filter: { experimentId: ids.experiments[0], rank: { gte: 8, lte: 32 }, learningRate: { lte: 6e-4 } } }),
  },
  {
    name: 'newest first, page 2',
    query: `query($after: String) {
      runs(first: 100, after: $after) { totalCount pageInfo { endCursor } edges { node { ${NESTED} } } }
    }`,
    variables: (ids) => ({ after: ids.secondPageCursor }),
  },
];

interface Seeded {
  experiments: string[];
  secondPageCursor: string;
}

interface Row {
  database: string;
  shape: string;
  rows: number;
  matched: number;
  statements: number;
  p50: number;
  p99: number;
  mean: number;
}

/** 10 sweeps of 1,000 runs through the API, then what agents would have reported, set-based. */
async function seed(url: string, key: string, db: Database): Promise<Seeded & { seconds: number }> {
  const create = (query: string) => gql(url, key, query);
  const experiments = await Promise.all(
    [0, 1, 2].map(async (i) => (await create(`mutation { createExperiment(input: { name: "bench ${i}", goal: CONCEPT }) { id } }`)).createExperiment.id as string),
  );
  const images = Array.from({ length: 20 }, (_, i) => `{ fileName: "img${i}.jpg" }`).join(', ');
  const datasets = await Promise.all(
    [0, 1].map(async (i) => (await create(`mutation { createDataset(input: { name: "set ${i}", uri: "/data/set${i}", images: [${images}] }) { id } }`)).createDataset.id as string),
  );
  const strategies = await Promise.all(
    [0, 1, 2].map(
      async (i) =>
        (await create(`mutation { createCaptionStrategy(input: { name: "strategy ${i}", kind: TRIGGER_ONLY, triggerWord: "p3r5on" }) { id } }`)).createCaptionStrategy
          .id as string,
    ),
  );

  const [, elapsedMs] = await timed(async () => {
    for (let i = 0; i < RUNS / SWEEP; i++) {
      await gql(url, key, `mutation($input: QueueSweepInput!) { queueSweep(input: $input) { id } }`, {
        input: {
          base: { experimentId: experiments[i % 3], datasetId: datasets[i % 2], captionStrategyId: strategies[i % 3], tags: [`batch-${i}`] },
          grid: {
            rank: Array.from({ length: 10 }, (_, r) => (r + 1) * 4),
            learningRate: Array.from({ length: 10 }, (_, l) => (l + 1) * 1e-4),
            steps: Array.from({ length: 10 }, (_, s) => 1000 + s * 250 + i),
          },
        },
      });
    }
  });

  // Half the runs finished, with a loss summary and four checkpoints each (the last one final).
  await db.orm.execute(sql`
    update runs set status = 'SUCCEEDED', attempt = 1, started_at = queued_at, finished_at = queued_at + interval '2 hours'
    where get_byte(decode(md5(id::text), 'hex'), 0) < 128`);
  await db.orm.execute(sql`
    update run_summaries s set points = r.steps, last_step = r.steps - 1,
      last_loss = 0.30 + 0.1 * (get_byte(decode(md5(r.id::text), 'hex'), 1) / 255.0),
      min_loss = 0.20 + 0.1 * (get_byte(decode(md5(r.id::text), 'hex'), 2) / 255.0),
      min_loss_step = r.steps / 2,
      ema_loss = 0.25 + 0.1 * (get_byte(decode(md5(r.id::text), 'hex'), 3) / 255.0)
    from runs r where r.id = s.run_id and r.status = 'SUCCEEDED'`);
  await db.orm.execute(sql`
    insert into checkpoints (run_id, step, path, size_bytes, is_final, attempt)
    select r.id, r.steps * g / 4, 'output/run_' || lpad((r.steps * g / 4)::text, 9, '0') || '.safetensors', 171966464, g = 4, 1
    from runs r cross join generate_series(1, 4) as g
    where r.status = 'SUCCEEDED'`);
  await db.orm.execute(sql`analyze`);

  const first = await gql(url, key, `{ runs(first: 100) { pageInfo { endCursor } } }`);
  return { experiments, secondPageCursor: first.runs.pageInfo.endCursor, seconds: elapsedMs / 1000 };
}

async function measure(database: string, open: () => Promise<{ db: Database; env: Record<string, string>; drop(): Promise<void> }>): Promise<Row[]> {
  const target = await open();
  const adminKey = `llk_bench_${randomBytes(16).toString('hex')}`;
  const rows: Row[] = [];
  try {
    // 1. Seed and count statements with the server in this process.
    const config = { ...loadConfig({}), port: 0, adminKey, logLevel: 'silent' as const, reaperIntervalSeconds: 3600 };
    const inProcess = await startServer({ config, db: target.db, log: pino({ level: 'silent' }) });
    let seeded!: Seeded & { seconds: number };
    const statements = new Map<string, { statements: number; rows: number; matched: number }>();
    try {
      seeded = await seed(inProcess.url, adminKey, target.db);
      for (const shape of SHAPES) {
        const before = target.db.stats.statements;
        const data = await gql(inProcess.url, adminKey, shape.query, shape.variables(seeded));
        statements.set(shape.name, {
          statements: target.db.stats.statements - before,
          rows: data.runs.edges.length,
          matched: data.runs.totalCount,
        });
      }
    } finally {
      await inProcess.close();
      await target.db.close();
    }
    console.log(`  ${database}: queued ${RUNS.toLocaleString('en-US')} runs through queueSweep in ${seeded.seconds.toFixed(1)} s (${Math.round(RUNS / seeded.seconds)} runs/s)`);

    // 2. Latency against the server in its own process, one request at a time.
    const server = await startServerProcess({ adminKey, env: { ...target.env, REAPER_INTERVAL_SECONDS: '3600' } });
    try {
      for (const shape of SHAPES) {
        const variables = shape.variables(seeded);
        for (let i = 0; i < WARMUP; i++) await gql(server.url, adminKey, shape.query, variables);
        const times: number[] = [];
        for (let i = 0; i < SAMPLES; i++) times.push((await timed(() => gql(server.url, adminKey, shape.query, variables)))[1]);
        rows.push({
          database,
          shape: shape.name,
          ...statements.get(shape.name)!,
          p50: percentile(times, 50),
          p99: percentile(times, 99),
          mean: times.reduce((a, b) => a + b, 0) / times.length,
        });
      }
    } finally {
      await server.stop();
    }
  } finally {
    await target.drop();
  }
  return rows;
}

function printTable(rows: Row[]) {
  const header = ['database', 'query (first: 100, nested)', 'rows', 'matched', 'statements', 'p50', 'p99', 'mean'];
  const body = rows.map((r) => [r.database, r.shape, String(r.rows), r.matched.toLocaleString('en-US'), String(r.statements), ms(r.p50), ms(r.p99), ms(r.mean)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => '  ' + cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  console.log('  ' + widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
}

export async function run() {
  console.log(`\nRuns page over ${RUNS.toLocaleString('en-US')} runs (issue 2): runs(first: 100) with experiment, dataset, captionStrategy,`);
  console.log(`lossSummary and checkpoints over HTTP; ${SAMPLES} requests one at a time after ${WARMUP} to warm up.`);
  const rows: Row[] = [];

  const pg = await freshPostgres().catch((err: Error) => {
    console.log(`  PostgreSQL: skipped, ${BENCH_DATABASE_URL} is not usable (${err.message})`);
    return null;
  });
  if (pg) {
    rows.push(
      ...(await measure('PostgreSQL', async () => {
        const db = await openDatabase({ kind: 'postgres', url: pg.url }).catch(async (err) => {
          await pg.drop();
          throw err;
        });
        return { db, env: { DATABASE_URL: pg.url }, drop: () => pg.drop() };
      })),
    );
  }

  rows.push(
    ...(await measure('PGlite', async () => {
      const dataDir = mkdtempSync(path.join(tmpdir(), 'loralab-bench-runs-'));
      const db = await openDatabase({ kind: 'pglite', dataDir: path.join(dataDir, 'pgdata') });
      return { db, env: { DATA_DIR: dataDir, DATABASE_URL: '' }, drop: async () => rmSync(dataDir, { recursive: true, force: true }) };
    })),
  );

  console.log('');
  printTable(rows);
}

if (isMain(import.meta.url)) await run();
