// What the API shows someone without a key: the health check and a page saying how to sign in.
import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const INTROSPECTIONS: [string, string][] = [
  ['the standard introspection query', getIntrospectionQuery()],
  ['__type', `{ __type(name: "Run") { fields { name } } }`],
  ['__schema in a fragment', `query { ...Everything } fragment Everything on Query { __schema { types { name } } }`],
  ['__schema in an inline fragment', `{ ... on Query { __schema { queryType { name } } } }`],
];

describe.each(databaseKinds)('the API without a key on %s', (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(kind);
  });
  afterAll(() => t?.stop());

  it.each(INTROSPECTIONS)('answers %s with UNAUTHENTICATED, and a signed-in key (any role) with the schema', async (_, query) => {
    await t.anonymous.fails('UNAUTHENTICATED', query);
    await t.admin.withKey('llk_not-a-key-we-made').fails('UNAUTHENTICATED', query);
    for (const role of ['VIEWER', 'AGENT'] as const) {
      const result = await (await t.as(role)).request(query);
      expect(result.errors, role).toBeUndefined();
    }
  });

  it('serves its own small page at GET /graphql, loading nothing from elsewhere', async () => {
    const res = await fetch(`${t.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await res.text();
    expect(html).toContain('Authorization: Bearer');
    expect(html).not.toMatch(/<script|<link|<iframe|https?:\/\//i);
    expect(html).not.toMatch(/apollo|sandbox|cdn/i);
  });

  it('answers a GET without a query that does not ask for HTML with a 4xx, and no landing page', async () => {
    const res = await fetch(`${t.url}/graphql`, { headers: { accept: 'application/json' } });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(await res.text()).not.toMatch(/apollo-server-landing-page|embeddable-sandbox|cdn\./i);
  });
});
