// Issue 13: one request must not stall the server. The p99 latency of an ordinary read,
// `runs(first: 10)`, on a quiet server and while two of the heaviest requests the cost budget
// admits run without pause, on PostgreSQL and on PGlite; goal: at most 3× the quiet p99.
//
// The heaviest admissible request is the one the issue found stalling the server: aliases of a loss
// curve of a 20,000-point run, as many as the budget takes, each with as many buckets as a curve
// may have (10,000), so that every one is folded from all of the run's points.
import { createBasics, createKey, freshPostgres, gql, isMain, ms, percentile, post, queueRuns, startServerProcess, table, type ServerProcess } from './lib.js';

const POINTS = 20_000;
const RUNS = 200;
const WARMUP = 20;
const SAMPLES = 400;
const ROUNDS = 4;
const GOAL = 3;

const LIGHT = JSON.stringify({ query: `{ runs(first: 10) { edges { node { id name status } } } }` });
const heavyQuery = (n: number) => `query($id: ID!) { run(id: $id) { ${Array.from({ length: n }, (_, i) => `c${i}: lossCurve(maxPoints: 10000) { max }`).join(' ')} } }`;

interface Figures {
  database: string;
  aliases: number;
  quiet: number[];
  loaded: number[];
  heavy: number[];
}

async function seed(server: ServerProcess) {
  const { url, adminKey } = server;
  const basics = await createBasics(url, adminKey);
  await queueRuns(url, adminKey, basics, RUNS);
  const agentKey = await createKey(url, adminKey, 'AGENT');
  const viewerKey = await createKey(url, adminKey, 'VIEWER');
  const agent = (await gql(url, agentKey, `mutation { registerAgent(input: { name: "bench", gpus: [{ index: 0, name: "H100", memoryMb: 81559 }] }) { id } }`)).registerAgent.id;
  const claim = (await gql(url, agentKey, `mutation($a: ID!) { claimRun(agentId: $a) { leaseToken run { id } } }`, { a: agent })).claimRun;
  for (let from = 0; from < POINTS; from += 5000) {
    const steps = Array.from({ length: 5000 }, (_, i) => from + i);
    await gql(url, agentKey, `mutation($r: ID!, $t: String!, $s: [Int!]!, $l: [Float!]!) { reportLossColumns(runId: $r, leaseToken: $t, steps: $s, losses: $l) { accepted } }`, {
      r: claim.run.id,
      t: claim.leaseToken,
      s: steps,
      l: steps.map((s) => 1 / (s + 1)),
    });
  }
  return { viewerKey, runId: claim.run.id as string };
}

/** As many curve aliases as the cost budget admits: read off the cost the server reports for too many. */
async function heaviestAdmissible(server: ServerProcess, key: string, runId: string) {
  const probe = JSON.parse(await post(server.url, key, JSON.stringify({ query: heavyQuery(1000), variables: { id: runId } }))) as {
    errors: { extensions: { cost: number; maxCost: number } }[];
  };
  const { cost, maxCost } = probe.errors[0]!.extensions;
  return Math.floor(maxCost / (cost / 1000));
}

async function lightLatencies(server: ServerProcess, key: string, n: number) {
  const latencies: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    const body = await post(server.url, key, LIGHT);
    latencies.push(performance.now() - start);
    if (body.includes('"errors"')) throw new Error(body.slice(0, 300));
  }
  return latencies;
}

/**
 * Quiet and loaded samples are taken in turns (ROUNDS of each), so that a machine that gets busier
 * or quieter during the bench (other processes on a shared machine) shifts both alike.
 */
async function measure(database: string, server: ServerProcess): Promise<Figures> {
  const { viewerKey, runId } = await seed(server);
  const aliases = await heaviestAdmissible(server, viewerKey, runId);
  const heavyBody = JSON.stringify({ query: heavyQuery(aliases), variables: { id: runId } });

  await lightLatencies(server, viewerKey, WARMUP);
  const quiet: number[] = [];
  const loaded: number[] = [];
  const heavy: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    quiet.push(...(await lightLatencies(server, viewerKey, SAMPLES / ROUNDS)));
    let stopping = false;
    const loops = [0, 1].map(async () => {
      while (!stopping) {
        const start = performance.now();
        const body = await post(server.url, viewerKey, heavyBody);
        if (body.includes('"errors"')) throw new Error(body.slice(0, 300));
        heavy.push(performance.now() - start);
      }
    });
    await new Promise((r) => setTimeout(r, 200)); // both heavy requests are on their way
    loaded.push(...(await lightLatencies(server, viewerKey, SAMPLES / ROUNDS)));
    stopping = true;
    await Promise.all(loops);
  }
  return { database, aliases, quiet, loaded, heavy };
}

function report(all: Figures[]) {
  for (const f of all) {
    const quietP99 = percentile(f.quiet, 99);
    const loadedP99 = percentile(f.loaded, 99);
    const ratio = loadedP99 / quietP99;
    table(`${f.database}: runs(first: 10) while 2 requests of ${f.aliases} curves of 10,000 buckets over ${POINTS.toLocaleString('en')} points run`, [
      ['quiet p50 / p99', `${ms(percentile(f.quiet, 50))} / ${ms(quietP99)}`],
      ['loaded p50 / p99', `${ms(percentile(f.loaded, 50))} / ${ms(loadedP99)}`],
      ['p99 loaded ÷ quiet', `${ratio.toFixed(2)}× (goal ≤ ${GOAL}×: ${ratio <= GOAL ? 'met' : 'NOT met'})`],
      ['heavy request p50 (n)', `${ms(percentile(f.heavy, 50))} (${f.heavy.length})`],
    ]);
  }
}

export async function run() {
  const figures: Figures[] = [];
  const pg = await freshPostgres();
  const onPostgres = await startServerProcess({ databaseUrl: pg.url });
  try {
    figures.push(await measure('PostgreSQL', onPostgres));
  } finally {
    await onPostgres.stop();
    await pg.drop();
  }
  const onPglite = await startServerProcess();
  try {
    figures.push(await measure('PGlite', onPglite));
  } finally {
    await onPglite.stop();
  }
  report(figures);
}

if (isMain(import.meta.url)) await run();
