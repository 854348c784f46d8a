// An AGENT key reads what its agents need to train, and nothing of anyone else's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimNewRun, endBackoff, expireLease, registerAgent, REPORT_LOSS, type TestAgent } from './helpers/agents.js';
import { databaseKinds } from './helpers/databases.js';
import { createBasics, queueRun, type Basics } from './helpers/fixtures.js';
import { collect, wsClient } from './helpers/live.js';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';

const LISTS = `{
  runs { totalCount edges { node { id } } }
  datasets { totalCount edges { node { id } } }
  captionStrategies { id }
  agents { id hostname }
}`;

const ids = (connection: { edges: { node: { id: string } }[] }) => connection.edges.map((e) => e.node.id).sort();

describe.each(databaseKinds)('what an AGENT key reads on %s', (kind) => {
  let t: TestServer;
  let mine: Basics;
  let theirs: Basics;
  let me: TestAgent;
  let them: TestAgent;
  let myRun: { runId: string; token: string };
  let theirRun: { runId: string; token: string };
  let queuedRun: string;

  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600, retryBackoffSeconds: 0 });
    mine = await createBasics(t.admin);
    theirs = await createBasics(t.admin);
    me = await registerAgent(t, { name: 'my-box' });
    them = await registerAgent(t, { name: 'their-box' });
    myRun = await claimNewRun(t, mine, me);
    theirRun = await claimNewRun(t, theirs, them);
    queuedRun = (await queueRun(t.admin, theirs, { requirements: { minVramMb: 2_000_000 } })).id; // nobody can hold it
  });
  afterAll(() => t?.stop());

  it('lists only its own agents and the runs they hold, with those runs’ datasets and caption strategies', async () => {
    const data = await me.client.ok(LISTS);
    expect(data.runs.totalCount).toBe(1);
    expect(ids(data.runs)).toEqual([myRun.runId]);
    expect(data.datasets.totalCount).toBe(1);
    expect(ids(data.datasets)).toEqual([mine.datasetId]);
    expect(data.captionStrategies.map((s: { id: string }) => s.id)).toEqual([mine.strategyId]);
    expect(data.agents).toEqual([{ id: me.id, hostname: 'gpu-box' }]);
  });

  it('finds nothing by id outside its scope, as if the id did not exist', async () => {
    const { run, other, queued, dataset } = await me.client.ok(
      `query($mine: ID!, $theirs: ID!, $queued: ID!, $d: ID!) {
        run(id: $mine) { id trainerConfig dataset { id } captionStrategy { id } agent { id } }
        other: run(id: $theirs) { id trainerConfig }
        queued: run(id: $queued) { id }
        dataset(id: $d) { id }
      }`,
      { mine: myRun.runId, theirs: theirRun.runId, queued: queuedRun, d: theirs.datasetId },
    );
    expect(run).toMatchObject({ id: myRun.runId, dataset: { id: mine.datasetId }, captionStrategy: { id: mine.strategyId }, agent: { id: me.id } });
    expect(run.trainerConfig).toContain('job: "extension"');
    expect([other, queued, dataset]).toEqual([null, null, null]);
  });

  it('reads what the agent program asks for: its claim, its dataset’s images, who it is', async () => {
    const { dataset } = await me.client.ok(
      `query($id: ID!) { dataset(id: $id) { images(first: 500) { edges { node { fileName } } pageInfo { hasNextPage } } } }`,
      { id: mine.datasetId },
    );
    expect(dataset.images.edges).toHaveLength(3);
    expect((await me.client.ok(`{ viewer { role agent { id } } }`)).viewer).toEqual({ role: 'AGENT', agent: { id: me.id } });
  });

  it('is refused, FORBIDDEN, what serves people’s analysis: experiments, sweeps, comparisons, curves across runs', async () => {
    const refused: [string, string, Record<string, unknown>][] = [
      ['experiments', `{ experiments { totalCount } }`, {}],
      ['experiment', `query($id: ID!) { experiment(id: $id) { id } }`, { id: mine.experimentId }],
      ['compareRuns', `{ compareRuns(groupBy: [RANK]) { runCount } }`, {}],
      ['checkpointMatrix', `{ checkpointMatrix { steps } }`, {}],
      ['lossCurves', `query($id: ID!) { lossCurves(runIds: [$id]) { buckets { step } } }`, { id: myRun.runId }],
      ['sweep', `query($id: ID!) { sweep(id: $id) { id } }`, { id: mine.experimentId }],
      ['Run.experiment', `query($id: ID!) { run(id: $id) { experiment { name } } }`, { id: myRun.runId }],
      ['Run.sweep', `query($id: ID!) { run(id: $id) { sweep { id } } }`, { id: myRun.runId }],
      ['Dataset.captionDiff', `query($d: ID!, $s: ID!) { dataset(id: $d) { captionDiff(strategyA: $s, strategyB: $s) { a } } }`, { d: mine.datasetId, s: theirs.strategyId }],
      ['DatasetImage.caption', `query($d: ID!, $s: ID!) { dataset(id: $d) { images { edges { node { caption(strategyId: $s) } } } } }`, { d: mine.datasetId, s: theirs.strategyId }],
    ];
    for (const [field, query, variables] of refused) {
      const error = await me.client.fails('FORBIDDEN', query, variables);
      expect(error.message, field).toContain(field.includes('.') ? field : `Query.${field}`);
      expect(error.message, field).toContain('this key is AGENT');
    }
  });

  it('subscribes to its runs only: another run is NOT_FOUND, an experiment FORBIDDEN', async () => {
    const client = wsClient(t.url, me.client.key);
    try {
      const outside = [
        collect(client, `subscription($id: ID!) { runLoss(runId: $id) { runId } }`, { id: theirRun.runId }, (d) => d),
        collect(client, `subscription($id: ID!) { runEvents(runId: $id) { id } }`, { id: theirRun.runId }, (d) => d),
        collect(client, `subscription($id: ID!) { runUpdated(runId: $id) { id } }`, { id: queuedRun }, (d) => d),
      ];
      const experiment = collect(client, `subscription($id: ID!) { runUpdated(experimentId: $id) { id } }`, { id: mine.experimentId }, (d) => d);
      for (const sub of outside) {
        await sub.until(() => false).catch(() => undefined);
        expect((sub.errors[0] as { extensions?: { code?: string; field?: string } }).extensions).toEqual({ code: 'NOT_FOUND', field: 'runId' });
      }
      await experiment.until(() => false).catch(() => undefined);
      expect((experiment.errors[0] as { extensions?: { code?: string } }).extensions?.code).toBe('FORBIDDEN');

      const own = collect(client, `subscription($id: ID!, $s: Int) { runLoss(runId: $id, sinceStep: $s) { points { step } } }`, { id: myRun.runId, s: -1 }, (d) => d.runLoss);
      await me.client.ok(REPORT_LOSS, { r: myRun.runId, t: myRun.token, p: [{ step: 1, loss: 0.5 }] });
      await own.until((batches) => batches.some((b) => b.points.some((p: { step: number }) => p.step === 1)));
    } finally {
      await client.dispose();
    }
  });

  it('keeps reading a run its agent finished; loses a run another key’s agent took over', async () => {
    await me.complete(myRun.runId, myRun.token, 'SUCCEEDED');
    expect((await me.client.ok(`query($id: ID!) { run(id: $id) { status } }`, { id: myRun.runId })).run).toEqual({ status: 'SUCCEEDED' });

    // Their agent stops heartbeating; the run is requeued and another key's agent claims it.
    const { runId } = theirRun;
    await expireLease(t, runId);
    await t.server.reaper.sweep();
    await endBackoff(t, runId);
    const claim = await me.claim();
    expect(claim?.run.id).toBe(runId);
    expect((await them.client.ok(`query($id: ID!) { run(id: $id) { id } }`, { id: runId })).run).toBeNull();
    expect((await me.client.ok(`query($id: ID!) { run(id: $id) { id } }`, { id: runId })).run).toEqual({ id: runId });
  });

  it('leaves people’s keys reading everything', async () => {
    for (const client of [await t.as('VIEWER'), t.admin] as GqlClient[]) {
      const data = await client.ok(LISTS);
      expect(data.runs.totalCount).toBe(3);
      expect(data.datasets.totalCount).toBe(2);
      expect(data.captionStrategies).toHaveLength(2);
      expect(data.agents).toHaveLength(2);
      await client.ok(`{ experiments { totalCount } compareRuns(groupBy: [RANK]) { runCount } }`);
    }
  });
});
