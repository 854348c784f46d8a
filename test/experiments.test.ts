import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';

describe.each(databaseKinds)('experiments on %s', (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(kind);
  });
  afterAll(() => t?.stop());

  const create = `mutation($input: CreateExperimentInput!) { createExperiment(input: $input) { id name goal description tags createdAt } }`;

  it('creates an experiment and reads it back', async () => {
    const { createExperiment } = await t.admin.ok(create, {
      input: { name: '  p3r5on: which caption style? ', goal: 'CONCEPT', description: 'simple vs descriptive', tags: ['flux', 'flux', 'concept'] },
    });
    expect(createExperiment).toMatchObject({ name: 'p3r5on: which caption style?', goal: 'CONCEPT', tags: ['flux', 'concept'] });
    expect(new Date(createExperiment.createdAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    const { experiment } = await t.admin.ok(`query($id: ID!) { experiment(id: $id) { id name description } }`, { id: createExperiment.id });
    expect(experiment).toEqual({ id: createExperiment.id, name: 'p3r5on: which caption style?', description: 'simple vs descriptive' });
  });

  it('answers null for an unknown or malformed id', async () => {
    const data = await t.admin.ok(`{ a: experiment(id: "00000000-0000-0000-0000-000000000000") { id } b: experiment(id: "nope") { id } }`);
    expect(data).toEqual({ a: null, b: null });
  });

  it('refuses empty and overlong names, naming the field', async () => {
    await t.admin.fails('BAD_USER_INPUT', create, { input: { name: '   ', goal: 'STYLE' } }, 'input.name');
    await t.admin.fails('BAD_USER_INPUT', create, { input: { name: 'x'.repeat(201), goal: 'STYLE' } }, 'input.name');
  });

  it('pages newest first with stable cursors and searches by name', async () => {
    const editor = await t.as('EDITOR');
    const names = Array.from({ length: 7 }, (_, i) => `paging-${i}`);
    for (const name of names) await editor.ok(create, { input: { name, goal: 'STYLE' } });
    const page = `query($after: String) { experiments(first: 3, after: $after, search: "paging-") { totalCount pageInfo { hasNextPage endCursor } edges { node { name } } } }`;
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const { experiments }: any = await editor.ok(page, { after });
      expect(experiments.totalCount).toBe(pages === 0 ? 7 : 8);
      seen.push(...experiments.edges.map((e: any) => e.node.name));
      after = experiments.pageInfo.hasNextPage ? experiments.pageInfo.endCursor : null;
      pages++;
      // A row added in the middle of paging lands before the first page, never inside a later one.
      if (pages === 1) await editor.ok(create, { input: { name: 'paging-late', goal: 'STYLE' } });
    } while (after);
    expect(pages).toBe(3);
    expect(seen).toEqual([...names].reverse());
  });

  it('refuses a cursor it did not make and a page over 500', async () => {
    await t.admin.fails('BAD_USER_INPUT', `{ experiments(after: "garbage") { totalCount } }`, undefined, 'after');
    await t.admin.fails('BAD_USER_INPUT', `{ experiments(first: 501) { totalCount } }`, undefined, 'first');
  });
});
