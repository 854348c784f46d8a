import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * A query that goes `levels` fields deep by walking run → experiment → runs → … ; its depth, as
 * graphql-depth-limit counts it (the root field is 0), is levels - 1.
 */
function nestedQuery(levels: number) {
  const path = ['runs(first: 2)', 'edges', 'node', 'experiment'];
  const leaf = ['totalCount', 'cursor', 'id', 'id'];
  let body = leaf[(levels - 2) % path.length]!;
  for (let level = levels - 1; level >= 1; level--) body = `${path[(level - 1) % path.length]} { ${body} }`;
  return `{ ${body} }`;
}

describe.each(databaseKinds)('request limits on %s', (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    // Statements are counted on the server's database: keep the reaper's sweeps out of the count.
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600 });
  });
  afterAll(() => t?.stop());

  /** Statements the server sent for one request; a refused query only looks up its key. */
  async function statementsDuring(fn: () => Promise<unknown>) {
    const before = t.server.db.stats.statements;
    await fn();
    return t.server.db.stats.statements - before;
  }

  it('answers a query nested 12 deep and refuses one nested deeper with QUERY_TOO_COMPLEX', async () => {
    const deepest = nestedQuery(13);
    expect(deepest.split('{').length - 2).toBe(12);
    expect((await t.admin.request(deepest)).errors).toBeUndefined();

    const statements = await statementsDuring(async () => {
      const error = await t.admin.fails('QUERY_TOO_COMPLEX', nestedQuery(14));
      expect(error.message).toMatch(/12/);
    });
    expect(statements).toBeLessThanOrEqual(1);
  });

  it('refuses a query whose cost is too high before running it', async () => {
    const costly = `{ runs(first: 500) { edges { node { id
      checkpoints { id samples { id run { id checkpoints { id ratings { id } } } } }
    } } } }`;
    const statements = await statementsDuring(async () => {
      const error = await t.admin.fails('QUERY_TOO_COMPLEX', costly);
      expect(error.extensions).toMatchObject({ maxCost: expect.any(Number) });
      expect(error.extensions!.cost as number).toBeGreaterThan(error.extensions!.maxCost as number);
    });
    expect(statements).toBeLessThanOrEqual(1);
  });

  it('adds up the cost of aliases', async () => {
    const one = `runs(first: 500) { edges { node { id checkpoints { id samples { id } ratings { id } } } } }`;
    expect((await t.admin.request(`{ a: ${one} }`)).errors).toBeUndefined();
    const many = Array.from({ length: 20 }, (_, i) => `a${i}: ${one}`).join('\n');
    const statements = await statementsDuring(() => t.admin.fails('QUERY_TOO_COMPLEX', `{ ${many} }`));
    expect(statements).toBeLessThanOrEqual(1);
  });

  it('counts the page size a variable asks for', async () => {
    const query = `query($n: Int) { runs(first: $n) { edges { node { id checkpoints { id samples { id run { id checkpoints { id } } } } } } } }`;
    expect((await t.admin.request(query, { n: 5 })).errors).toBeUndefined();
    await t.admin.fails('QUERY_TOO_COMPLEX', query, { n: 500 });
  });

  it('answers a typical page of 500 runs with their nested records', async () => {
    const result = await t.admin.request(`{ runs(first: 500) { totalCount edges { node {
      id name status experiment { id name } dataset { id name } captionStrategy { id name }
      hyperparameters { rank learningRate steps } lossSummary { minLoss lastLoss } checkpoints { id step meanRating }
    } } } }`);
    expect(result.errors).toBeUndefined();
  });

  it('answers the standard introspection query', async () => {
    const { getIntrospectionQuery } = await import('graphql');
    const result = await t.admin.request(getIntrospectionQuery());
    expect(result.errors).toBeUndefined();
    expect(result.data.__schema.queryType.name).toBe('Query');
  });

  it('answers a request body over 4 MB with HTTP 413 and PAYLOAD_TOO_LARGE', async () => {
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.admin.key}` },
      body: JSON.stringify({
        query: `mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }`,
        variables: { input: { name: 'huge', uri: '/huge', images: [], description: 'x'.repeat(4 * 1024 * 1024) } },
      }),
    });
    expect(res.status).toBe(413);
    const body = (await res.json()) as any;
    expect(body.errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    const { datasets } = await t.admin.ok(`{ datasets { totalCount } }`);
    expect(datasets.totalCount).toBe(0);
  });

  it('answers a body that is not JSON with HTTP 400', async () => {
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.admin.key}` },
      body: '{"query": ',
    });
    expect(res.status).toBe(400);
  });
});
