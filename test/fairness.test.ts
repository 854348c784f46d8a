// One request must not stall the server: its cost is the work behind it, its database time is
// bounded, and while it runs, health checks, agents and ordinary reads take their turn.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds, TEST_DATABASE_URL, createPostgresDatabase } from './helpers/databases.js';
import { GqlClient, startTestServer, type TestServer } from './helpers/server.js';
import { createBasics, createExperiment, queueRun, type Basics } from './helpers/fixtures.js';
import { claimNewRun, registerAgent, REPORT_LOSS, type TestAgent } from './helpers/agents.js';
import { connectPostgres, openDatabase } from '../src/db/client.js';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

const POINTS = 50_000;

/** A run of the agent's with POINTS loss points: what heavy curve requests read. */
async function longRun(t: TestServer, basics: Basics, agent: TestAgent) {
  const { runId, token } = await claimNewRun(t, basics, agent);
  for (let from = 0; from < POINTS; from += 5000) {
    await agent.client.ok(REPORT_LOSS, { r: runId, t: token, p: Array.from({ length: 5000 }, (_, i) => ({ step: from + i, loss: 1 / (from + i + 1) })) });
  }
  return { runId, token };
}

/**
 * The heaviest curve request the cost budget admits: 4 curves of 10,000 buckets, each folded from
 * every point of the run (its 500 blocks are too few for 10,000 buckets).
 */
const heavyCurves = (n = 4) => `query($id: ID!) { run(id: $id) { ${Array.from({ length: n }, (_, i) => `c${i}: lossCurve(maxPoints: 10000) { max }`).join(' ')} } }`;

describe.each(databaseKinds)('a fair server on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  let agent: TestAgent;
  let run: { runId: string; token: string };
  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600 });
    basics = await createBasics(t.admin);
    agent = await registerAgent(t);
    run = await longRun(t, basics, agent);
  }, 120_000);
  afterAll(() => t?.stop());

  it('costs a loss curve its buckets: 500 curves of 1,000 points are refused before anything runs', async () => {
    const viewer = await t.as('VIEWER');
    const query = `query($id: ID!) { run(id: $id) { ${Array.from({ length: 500 }, (_, i) => `c${i}: lossCurve(maxPoints: 1000) { max }`).join(' ')} } }`;
    const before = t.server.db.stats.statements;
    const error = await viewer.fails('QUERY_TOO_COMPLEX', query, { id: run.runId });
    expect(error.extensions!.cost as number).toBeGreaterThan(500 * 1000);
    expect(t.server.db.stats.statements - before).toBeLessThanOrEqual(1); // the key lookup at most
    // The heaviest admissible request is 4 curves of 10,000 buckets (however few fields they ask for); 5 are too many.
    await viewer.fails('QUERY_TOO_COMPLEX', heavyCurves(5), { id: run.runId });
    expect((await viewer.request(heavyCurves(4), { id: run.runId })).errors).toBeUndefined();
    expect((await viewer.request(heavyCurves(1), { id: run.runId })).errors).toBeUndefined();
  });

  it('answers /healthz, an agent and ordinary reads while the two heaviest admissible requests run', async () => {
    const viewer = await t.as('VIEWER');
    const done: string[] = [];
    const track = <T>(name: string, work: Promise<T>) => work.then((value) => (done.push(name), value));
    const heavy = [0, 1].map((i) => track(`heavy ${i}`, viewer.request(heavyCurves(), { id: run.runId })));
    const [health, beat, runs] = await Promise.all([
      track('healthz', fetch(`${t.url}/healthz`).then((r) => r.status)),
      track('heartbeat', agent.heartbeat(run.runId, run.token, { step: POINTS - 1, totalSteps: 3000 })),
      track('runs', viewer.request(`{ runs(first: 10) { edges { node { id name status } } } }`)),
    ] as const);
    expect(health).toBe(200);
    expect(beat.errors).toBeUndefined();
    expect(runs.errors).toBeUndefined();
    // Every light request was answered while both heavy ones were still running.
    expect(done.slice(0, 3).sort()).toEqual(['healthz', 'heartbeat', 'runs']);
    for (const answer of await Promise.all(heavy)) expect(answer.errors).toBeUndefined();
  }, 120_000);

  it('answers heavy requests one at a time: one that comes while another runs waits for its turn', async () => {
    const viewer = await t.as('VIEWER');
    // A run without points: its curves are answered at once, but cost as much as any.
    const { runId: empty } = await claimNewRun(t, basics, await registerAgent(t));
    const lane = async () => {
      const text = await (await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${t.admin.key}` } })).text();
      const family = parsePrometheusTextFormat(text).find((f) => f.name === 'loralab_heavy_requests')!;
      const count = (state: string) => Number((family.metrics as { labels: Record<string, string>; value: string }[]).find((m) => m.labels.state === state)!.value);
      return { running: count('running'), waiting: count('waiting') };
    };
    const done: string[] = [];
    const track = <T>(name: string, work: Promise<T>) => work.then((value) => (done.push(name), value));
    const long = track('long', viewer.request(heavyCurves(), { id: run.runId }));
    // Its turn has begun (or, were there no turns, it is over).
    while ((await lane()).running === 0 && !done.includes('long')) await new Promise((r) => setImmediate(r));
    expect(done).toEqual([]);
    const quick = [0, 1, 2].map((i) => track(`quick ${i}`, viewer.request(heavyCurves(), { id: empty })));
    const light = await track('light', viewer.request(`{ runs(first: 10) { edges { node { id } } } }`));
    for (const answer of await Promise.all([long, ...quick])) expect(answer.errors).toBeUndefined();
    expect(light.errors).toBeUndefined();
    // The quick ones waited for the long one's turn to end (without turns, they end first); the
    // ordinary read did not wait.
    expect(done.filter((name) => name !== 'light')).toEqual(['long', 'quick 0', 'quick 1', 'quick 2']);
    expect(await lane()).toEqual({ running: 0, waiting: 0 });
  }, 120_000);
});

describe.each(databaseKinds)('a request out of database time on %s', (kind) => {
  let t: TestServer;
  let tight: TestServer;
  let run: { runId: string; token: string };
  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600 });
    const basics = await createBasics(t.admin);
    run = await longRun(t, basics, await registerAgent(t));
    // A second server on the same database whose requests have 20 ms of database time each.
    tight = await startTestServer(kind, { reaperIntervalSeconds: 3600, statementTimeoutSeconds: 0.02 }, { database: { db: t.server.db, drop: async () => {} } });
  }, 120_000);
  afterAll(async () => {
    await tight?.stop();
    await t?.stop();
  });

  it('is stopped with QUERY_TOO_COMPLEX once it has used its database time; the next request is served', async () => {
    const viewer = new GqlClient(tight.url, (await t.as('VIEWER')).key);
    const answer = await viewer.request(heavyCurves(), { id: run.runId });
    const stopped = answer.errors?.filter((e) => e.extensions?.code === 'QUERY_TOO_COMPLEX') ?? [];
    expect(stopped.length, JSON.stringify(answer.errors)).toBeGreaterThan(0);
    expect(stopped[0]!.message).toMatch(/database time/);
    expect(answer.errors!.every((e) => e.extensions?.code === 'QUERY_TOO_COMPLEX')).toBe(true);
    // A request's first statement always runs: a small one is answered.
    expect((await viewer.request(`{ viewer { role } }`)).data).toEqual({ viewer: { role: 'VIEWER' } });
  }, 60_000);
});

describe('aggregates over runs', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('pglite', { reaperIntervalSeconds: 3600 });
  });
  afterAll(() => t?.stop());

  it('cost the runs they read', async () => {
    const basics = await createBasics(t.admin);
    const compare = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `g${i}: compareRuns(groupBy: [RANK]) { runCount }`).join(' ')} }`;
    expect((await t.admin.request(compare(250))).errors).toBeUndefined();
    const experimentId = await createExperiment(t.admin, { name: 'a thousand runs' });
    await t.admin.ok(`mutation($input: QueueSweepInput!) { queueSweep(input: $input) { id } }`, {
      input: {
        base: { ...basics, captionStrategyId: basics.strategyId, strategyId: undefined, experimentId },
        grid: { rank: [4, 8, 12, 16, 20, 24, 28, 32, 36, 40], learningRate: [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4, 8e-4, 9e-4, 1e-3], steps: [1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500] },
      },
    });
    await t.server.app.runCount.refresh();
    // Each now reads a thousand runs: 250 of them are too many, 100 are not.
    const error = await t.admin.fails('QUERY_TOO_COMPLEX', compare(250));
    expect(error.extensions!.cost as number).toBeGreaterThan(250 * 1000);
    expect((await t.admin.request(compare(100))).errors).toBeUndefined();
    await t.admin.fails('QUERY_TOO_COMPLEX', `{ ${Array.from({ length: 250 }, (_, i) => `r${i}: runs(first: 1) { totalCount }`).join(' ')} }`);
    // A connection's count is read once, however many rows the page has: a page of 500 rows
    // and the count stays admissible with many runs (counted per row, it cost 500 × 1,000 here).
    const page = await t.admin.request(`{ runs(first: 500) { totalCount edges { node { id name status checkpoints { id step } } } } }`);
    expect(page.errors).toBeUndefined();
    expect(page.data!.runs.totalCount).toBe(1000);
    expect((await queueRun(t.admin, basics)).status).toBe('QUEUED');
  });
});

describe.skipIf(!TEST_DATABASE_URL)('statement_timeout on postgres', () => {
  it('stops a statement that runs longer than STATEMENT_TIMEOUT_SECONDS and answers QUERY_TOO_COMPLEX', async () => {
    const pg = await createPostgresDatabase();
    const db = await openDatabase({ kind: 'postgres', url: pg.url, statementTimeoutMs: 300 });
    const t = await startTestServer('postgres', { reaperIntervalSeconds: 3600, statementTimeoutSeconds: 0.3 }, { database: { db, drop: () => db.close() } });
    const blocker = connectPostgres(pg.url, { max: 1, onnotice: () => {} });
    try {
      const run = await queueRun(t.admin, await createBasics(t.admin));
      // Another session holds the run's row: cancelling it waits for the lock, past the timeout.
      let release: (() => void) | undefined;
      const locked = blocker.begin(async (tx) => {
        await tx`select id from runs where id = ${run.id} for update`;
        await new Promise<void>((resolve) => (release = resolve));
      });
      for (let i = 0; !release && i < 100; i++) await new Promise((r) => setTimeout(r, 20));
      const error = await t.admin.fails('QUERY_TOO_COMPLEX', `mutation($id: ID!) { cancelRun(id: $id) { status } }`, { id: run.id });
      expect(error.extensions).toMatchObject({ reason: 'STATEMENT_TIMEOUT' });
      release!();
      await locked;
      expect((await t.admin.ok(`mutation($id: ID!) { cancelRun(id: $id) { status } }`, { id: run.id })).cancelRun.status).toBe('CANCELLED');
    } finally {
      await blocker.end();
      await t.stop();
      await pg.drop();
    }
  });
});
