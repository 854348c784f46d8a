import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { createDataset, createExperiment, createStrategy, queueRun, type Basics } from './helpers/fixtures.js';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';

interface ListedRun {
  id: string;
  name: string;
  status: string;
  priority: number;
  tags: string[];
  queuedAt: string;
  finishedAt: string | null;
  experiment: { id: string };
  dataset: { id: string };
  captionStrategy: { id: string };
  hyperparameters: { rank: number; learningRate: number; steps: number };
  lossSummary: { minLoss: number | null; lastLoss: number | null };
}

const RUN_FIELDS = `id name status priority tags queuedAt finishedAt experiment { id } dataset { id } captionStrategy { id }
  hyperparameters { rank learningRate steps } lossSummary { minLoss lastLoss }`;

const RUNS = `query($filter: RunFilter, $orderBy: RunOrder, $first: Int, $after: String) {
  runs(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { ${RUN_FIELDS} } }
  }
}`;

type OrderField = 'QUEUED_AT' | 'FINISHED_AT' | 'MIN_LOSS' | 'LAST_LOSS' | 'RANK' | 'LEARNING_RATE' | 'STEPS' | 'PRIORITY';

const sortValue: Record<OrderField, (r: ListedRun) => number | null> = {
  QUEUED_AT: (r) => Date.parse(r.queuedAt),
  FINISHED_AT: (r) => (r.finishedAt ? Date.parse(r.finishedAt) : null),
  MIN_LOSS: (r) => r.lossSummary.minLoss,
  LAST_LOSS: (r) => r.lossSummary.lastLoss,
  RANK: (r) => r.hyperparameters.rank,
  LEARNING_RATE: (r) => r.hyperparameters.learningRate,
  STEPS: (r) => r.hyperparameters.steps,
  PRIORITY: (r) => r.priority,
};

/** The order a client expects: by the field, nulls last in both directions, ties by id. */
function expectedOrder(runs: ListedRun[], field: OrderField, direction: 'ASC' | 'DESC') {
  const value = sortValue[field];
  return [...runs].sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    if (va == null || vb == null) {
      if (va == null && vb == null) return a.id < b.id ? -1 : 1;
      return va == null ? 1 : -1;
    }
    if (va !== vb) return direction === 'ASC' ? va - vb : vb - va;
    return a.id < b.id ? -1 : 1;
  });
}

async function allPages(client: GqlClient, variables: Record<string, unknown>, pageSize: number) {
  const seen: ListedRun[] = [];
  let after: string | null = null;
  for (let page = 0; ; page++) {
    const { runs }: { runs: any } = await client.ok(RUNS, { ...variables, first: pageSize, after });
    expect(runs.pageInfo.hasPreviousPage).toBe(page > 0);
    seen.push(...runs.edges.map((e: any) => e.node));
    if (!runs.pageInfo.hasNextPage) return seen;
    expect(runs.edges).toHaveLength(pageSize);
    after = runs.pageInfo.endCursor;
  }
}

describe.each(databaseKinds)('listing runs on %s', (kind) => {
  let t: TestServer;
  let viewer: GqlClient;
  let a: Basics;
  let b: Basics;
  let all: ListedRun[];

  const list = async (variables: Record<string, unknown>) => {
    const { runs } = await viewer.ok(RUNS, { first: 500, ...variables });
    return runs as { totalCount: number; edges: { node: ListedRun }[] };
  };
  const ids = (runs: ListedRun[]) => runs.map((r) => r.id);
  const idSet = (runs: ListedRun[]) => new Set(ids(runs));

  beforeAll(async () => {
    t = await startTestServer(kind);
    const editor = await t.as('EDITOR');
    viewer = await t.as('VIEWER');
    const [expA, expB, dsA, dsB, stA, stB] = await Promise.all([
      createExperiment(editor, { name: 'style A' }),
      createExperiment(editor, { name: 'concept B' }),
      createDataset(editor, 2, { name: 'set A' }),
      createDataset(editor, 2, { name: 'set B' }),
      createStrategy(editor, { name: 'trigger' }),
      createStrategy(editor, { name: 'none', kind: 'NONE', triggerWord: null }),
    ]);
    a = { experimentId: expA, datasetId: dsA, strategyId: stA };
    b = { experimentId: expB, datasetId: dsB, strategyId: stB };
    // 12 runs of experiment A from one sweep (they share queuedAt: one transaction) ...
    await editor.ok(`mutation($input: QueueSweepInput!) { queueSweep(input: $input) { id } }`, {
      input: {
        base: { experimentId: expA, datasetId: dsA, captionStrategyId: stA, name: 'Sweep', tags: ['sweep'] },
        grid: { rank: [8, 16, 32], learningRate: [1e-4, 4e-4], steps: [1000, 3000] },
      },
    });
    // ... and 8 single runs across both experiments, datasets and strategies.
    const singles: [Basics, Record<string, unknown>][] = [
      [b, { name: 'B rank 16 portrait', tags: ['portrait', 'flux'], priority: 3 }],
      [b, { name: 'B rank 32 portrait', tags: ['portrait'], hyperparameters: { rank: 32, learningRate: 2e-4 } }],
      [b, { name: 'B 100% LR_high', tags: ['flux'], hyperparameters: { rank: 4, learningRate: 8e-4, steps: 2500 }, priority: -2 }],
      [{ ...a, strategyId: stB }, { name: 'A none strategy', priority: 3, hyperparameters: { rank: 64, steps: 4000 } }],
      [{ ...b, datasetId: dsA }, { name: 'b on set a', tags: ['portrait', 'flux', 'x'], hyperparameters: { rank: 16, steps: 2200 } }],
      [a, { name: 'A Portrait late', priority: 1, hyperparameters: { learningRate: 1e-4 } }],
      [b, { name: 'B tiny', hyperparameters: { rank: 1, learningRate: 5e-5, steps: 500 } }],
      [a, { name: 'A default' }],
    ];
    for (const [basics, input] of singles) await queueRun(editor, basics, input);

    // What agents would have reported (their protocol is tested with dispatch): a few finished runs
    // with loss summaries, so the orders over nullable columns have values and nulls to place.
    const finished = (await list({ filter: { experimentId: expB } })).edges.map((e) => e.node.id).slice(0, 4);
    const losses = [0.31, 0.27, null, 0.27];
    for (const [i, id] of finished.entries()) {
      await t.server.db.orm.execute(sql`
        update runs set status = 'SUCCEEDED', finished_at = now() - make_interval(mins => ${10 * (i + 1)})
        where id = ${id}`);
      if (losses[i] != null) {
        await t.server.db.orm.execute(sql`
          update run_summaries set points = 100, last_step = 99, last_loss = ${losses[i]! + 0.05}, min_loss = ${losses[i]}
          where run_id = ${id}`);
      }
    }
    all = (await list({})).edges.map((e) => e.node);
    expect(all).toHaveLength(20);
  });
  afterAll(() => t?.stop());

  describe('filters: every field, ANDed', () => {
    const cases: [string, () => Record<string, unknown>, (r: ListedRun) => boolean][] = [
      ['ids (runs picked to compare)', () => ({ ids: all.filter((_, i) => i % 3 === 0).map((r) => r.id) }), (r) => all.indexOf(r) % 3 === 0],
      ['ids with another field', () => ({ ids: all.filter((_, i) => i % 2 === 0).map((r) => r.id), rank: { eq: 16 } }), (r) => all.indexOf(r) % 2 === 0 && r.hyperparameters.rank === 16],
      ['experimentId', () => ({ experimentId: a.experimentId }), (r) => r.experiment.id === a.experimentId],
      ['datasetId', () => ({ datasetId: a.datasetId }), (r) => r.dataset.id === a.datasetId],
      ['captionStrategyId', () => ({ captionStrategyId: b.strategyId }), (r) => r.captionStrategy.id === b.strategyId],
      ['status', () => ({ status: ['SUCCEEDED', 'FAILED'] }), (r) => r.status === 'SUCCEEDED'],
      ['several statuses', () => ({ status: ['QUEUED', 'SUCCEEDED'] }), () => true],
      ['rank eq', () => ({ rank: { eq: 16 } }), (r) => r.hyperparameters.rank === 16],
      ['rank in', () => ({ rank: { in: [4, 32, 64] } }), (r) => [4, 32, 64].includes(r.hyperparameters.rank)],
      ['rank gte and lte', () => ({ rank: { gte: 8, lte: 16 } }), (r) => r.hyperparameters.rank >= 8 && r.hyperparameters.rank <= 16],
      ['rank in with a range', () => ({ rank: { in: [1, 8, 32, 64], gte: 8, lte: 32 } }), (r) => [8, 32].includes(r.hyperparameters.rank)],
      ['learningRate eq', () => ({ learningRate: { eq: 4e-4 } }), (r) => r.hyperparameters.learningRate === 4e-4],
      ['learningRate in', () => ({ learningRate: { in: [5e-5, 8e-4] } }), (r) => [5e-5, 8e-4].includes(r.hyperparameters.learningRate)],
      ['learningRate lte', () => ({ learningRate: { lte: 2e-4 } }), (r) => r.hyperparameters.learningRate <= 2e-4],
      ['steps gte', () => ({ steps: { gte: 3000 } }), (r) => r.hyperparameters.steps >= 3000],
      ['steps lte', () => ({ steps: { lte: 2200 } }), (r) => r.hyperparameters.steps <= 2200],
      ['one tag', () => ({ tags: ['portrait'] }), (r) => r.tags.includes('portrait')],
      ['every one of several tags', () => ({ tags: ['portrait', 'flux'] }), (r) => r.tags.includes('portrait') && r.tags.includes('flux')],
      ['search, case-insensitive', () => ({ search: 'portrait' }), (r) => r.name.toLowerCase().includes('portrait')],
      ['search with % and _ taken literally', () => ({ search: '100% lr_' }), (r) => r.name === 'B 100% LR_high'],
      [
        'several fields at once',
        () => ({ experimentId: b.experimentId, rank: { gte: 16 }, tags: ['portrait'], status: ['QUEUED', 'SUCCEEDED'], search: 'B ' }),
        (r) => r.experiment.id === b.experimentId && r.hyperparameters.rank >= 16 && r.tags.includes('portrait') && r.name.toLowerCase().includes('b '),
      ],
      ['experiment and dataset of different basics', () => ({ experimentId: b.experimentId, datasetId: a.datasetId }), (r) => r.name === 'b on set a'],
      ['a filter nothing matches', () => ({ experimentId: a.experimentId, rank: { eq: 4 } }), () => false],
    ];
    it.each(cases)('%s', async (_, filter, matches) => {
      const expected = all.filter(matches);
      const found = await list({ filter: filter() });
      expect(idSet(found.edges.map((e) => e.node))).toEqual(idSet(expected));
      expect(found.totalCount).toBe(expected.length);
    });

    it('checks that every case above selects something, but not everything', () => {
      for (const [name, , matches] of cases) {
        const n = all.filter(matches).length;
        if (name.startsWith('a filter nothing') || name === 'several statuses') continue;
        expect(n, name).toBeGreaterThan(0);
        expect(n, name).toBeLessThan(all.length);
      }
    });

    it('scopes Experiment.runs to the experiment, with the same filter', async () => {
      const { experiment } = await viewer.ok(
        `query($id: ID!) { experiment(id: $id) { runs(filter: { rank: { eq: 16 } }, first: 100) { totalCount edges { node { id } } } } }`,
        { id: a.experimentId },
      );
      const expected = all.filter((r) => r.experiment.id === a.experimentId && r.hyperparameters.rank === 16);
      expect(new Set(experiment.runs.edges.map((e: any) => e.node.id))).toEqual(idSet(expected));
      expect(experiment.runs.totalCount).toBe(expected.length);
    });

    it('refuses a malformed id in a filter, naming it', async () => {
      await viewer.fails('BAD_USER_INPUT', RUNS, { filter: { datasetId: 'nope' } }, 'filter.datasetId');
      await viewer.fails('BAD_USER_INPUT', RUNS, { filter: { ids: [all[0]!.id, 'nope'] } }, 'filter.ids.1');
    });
  });

  describe('orders by each field in both directions, nulls last, and pages with stable cursors', () => {
    const orders = (Object.keys(sortValue) as OrderField[]).flatMap((field) => [
      [field, 'ASC'],
      [field, 'DESC'],
    ]) as [OrderField, 'ASC' | 'DESC'][];
    it.each(orders)('%s %s', async (field, direction) => {
      const expected = ids(expectedOrder(all, field, direction));
      const whole = await list({ orderBy: { field, direction } });
      expect(ids(whole.edges.map((e) => e.node))).toEqual(expected);
      expect(ids(await allPages(viewer, { orderBy: { field, direction } }, 3))).toEqual(expected);
    });
  });

  it('orders newest first by default', async () => {
    const whole = await list({});
    expect(ids(whole.edges.map((e) => e.node))).toEqual(ids(expectedOrder(all, 'QUEUED_AT', 'DESC')));
  });

  it('keeps a cursor valid while runs are queued: a new run lands before the first page, never inside a later one', async () => {
    const editor = await t.as('EDITOR');
    const variables = { filter: { experimentId: a.experimentId }, orderBy: { field: 'QUEUED_AT', direction: 'DESC' } };
    const expected = ids(expectedOrder(all.filter((r) => r.experiment.id === a.experimentId), 'QUEUED_AT', 'DESC'));
    const first = await viewer.ok(RUNS, { ...variables, first: 5 });
    const added = await queueRun(editor, a, { name: 'queued while paging' });
    const seen = first.runs.edges.map((e: any) => e.node.id);
    let after = first.runs.pageInfo.endCursor;
    for (;;) {
      const { runs } = await viewer.ok(RUNS, { ...variables, first: 5, after });
      seen.push(...runs.edges.map((e: any) => e.node.id));
      if (!runs.pageInfo.hasNextPage) break;
      after = runs.pageInfo.endCursor;
    }
    expect(seen).toEqual(expected);
    const { runs } = await viewer.ok(RUNS, { ...variables, first: 1 });
    expect(runs.edges[0].node.id).toBe(added.id);
    expect(runs.totalCount).toBe(expected.length + 1);
  });

  it('refuses a cursor it did not make, a negative page and a page over 500', async () => {
    await viewer.fails('BAD_USER_INPUT', RUNS, { after: 'garbage' }, 'after');
    await viewer.fails('BAD_USER_INPUT', RUNS, { after: Buffer.from('[1,"x"]').toString('base64url') }, 'after');
    await viewer.fails('BAD_USER_INPUT', RUNS, { first: -1 }, 'first');
    await viewer.fails('BAD_USER_INPUT', RUNS, { first: 501 }, 'first');
  });
});
