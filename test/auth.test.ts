import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASE_URL, createPostgresDatabase, databaseKinds } from './helpers/databases.js';
import { openDatabase } from '../src/db/client.js';
import { REMEMBER_KEY_MS } from '../src/modules/keys/authenticator.js';
import { createBasics, createDataset, createExperiment, createStrategy, type Basics } from './helpers/fixtures.js';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';

const CREATE_KEY = `mutation($role: ApiRole!, $name: String!) { createApiKey(role: $role, name: $name) { id name role key } }`;
const REVOKE_KEY = `mutation($id: ID!) { revokeApiKey(id: $id) }`;

/** One write of each kind an EDITOR may do, as [name, query, variables]. */
function editorWrites(basics: Basics): [string, string, Record<string, unknown>][] {
  const run = { experimentId: basics.experimentId, datasetId: basics.datasetId, captionStrategyId: basics.strategyId };
  return [
    ['createExperiment', `mutation { createExperiment(input: { name: "x", goal: STYLE }) { id } }`, {}],
    ['createDataset', `mutation { createDataset(input: { name: "x", uri: "/x", images: [{ fileName: "a.jpg" }] }) { id } }`, {}],
    ['createCaptionStrategy', `mutation { createCaptionStrategy(input: { name: "x", kind: STORED }) { id } }`, {}],
    [
      'setCaptions',
      `mutation($d: ID!, $s: ID!) { setCaptions(datasetId: $d, strategyId: $s, captions: [{ fileName: "img0.jpg", text: "x" }]) }`,
      { d: basics.datasetId, s: basics.strategyId },
    ],
    ['queueRun', `mutation($input: QueueRunInput!) { queueRun(input: $input) { id } }`, { input: run }],
    ['queueSweep', `mutation($input: QueueSweepInput!) { queueSweep(input: $input) { id } }`, { input: { base: run, grid: { rank: [8, 16] } } }],
  ];
}

const READS = `{
  viewer { role name }
  experiments { totalCount }
  datasets { totalCount }
  captionStrategies { id }
  runs { totalCount edges { node { id trainerConfig } } }
}`;

const totals = async (client: GqlClient) => {
  const data = await client.ok(READS);
  return { experiments: data.experiments.totalCount, datasets: data.datasets.totalCount, strategies: data.captionStrategies.length, runs: data.runs.totalCount };
};

describe.each(databaseKinds)('API keys and roles on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  let storedStrategy: string;

  beforeAll(async () => {
    t = await startTestServer(kind);
    basics = await createBasics(t.admin);
    storedStrategy = await createStrategy(t.admin, { name: 'stored', kind: 'STORED' });
  });
  afterAll(() => t?.stop());

  const writesFor = () => editorWrites({ ...basics }).map(([n, q, v]) => [n, q, n === 'setCaptions' ? { ...v, s: storedStrategy } : v] as const);

  it('answers UNAUTHENTICATED without a key, with an unknown key and with a malformed header', async () => {
    const unknown = t.admin.withKey('llk_not-a-key-we-made');
    for (const client of [t.anonymous, unknown]) {
      await client.fails('UNAUTHENTICATED', `{ viewer { role } }`);
      await client.fails('UNAUTHENTICATED', `{ runs { totalCount } }`);
      await client.fails('UNAUTHENTICATED', `mutation { createExperiment(input: { name: "x", goal: STYLE }) { id } }`);
    }
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${t.admin.key}` },
      body: JSON.stringify({ query: '{ viewer { role } }' }),
    });
    const body = (await res.json()) as any;
    expect(body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
  });

  it('lets a VIEWER key read everything', async () => {
    const viewer = await t.as('VIEWER');
    const data = await viewer.ok(READS);
    expect(data.viewer.role).toBe('VIEWER');
    expect(data.experiments.totalCount).toBeGreaterThan(0);
    const { experiment, dataset } = await viewer.ok(`query($e: ID!, $d: ID!) { experiment(id: $e) { id } dataset(id: $d) { id } }`, {
      e: basics.experimentId,
      d: basics.datasetId,
    });
    expect(experiment.id).toBe(basics.experimentId);
    expect(dataset.id).toBe(basics.datasetId);
  });

  it('refuses every write to a VIEWER key with FORBIDDEN, writing nothing', async () => {
    const viewer = await t.as('VIEWER');
    const before = await totals(t.admin);
    for (const [name, query, variables] of writesFor()) {
      const error = await viewer.fails('FORBIDDEN', query, variables);
      expect(error.message, name).toContain('VIEWER');
    }
    await viewer.fails('FORBIDDEN', CREATE_KEY, { role: 'ADMIN', name: 'escalate' });
    expect(await totals(t.admin)).toEqual(before);
  });

  it('lets an EDITOR key create records and queue runs', async () => {
    const editor = await t.as('EDITOR');
    for (const [name, query, variables] of writesFor()) {
      const result = await editor.request(query, variables);
      expect(result.errors, name).toBeUndefined();
    }
    expect((await editor.ok(`{ viewer { role } }`)).viewer.role).toBe('EDITOR');
  });

  it('refuses key management to an EDITOR key', async () => {
    const editor = await t.as('EDITOR');
    await editor.fails('FORBIDDEN', CREATE_KEY, { role: 'VIEWER', name: 'x' });
    const { createApiKey } = await t.admin.ok(CREATE_KEY, { role: 'VIEWER', name: 'victim' });
    await editor.fails('FORBIDDEN', REVOKE_KEY, { id: createApiKey.id });
    expect((await t.admin.withKey(createApiKey.key).ok(`{ viewer { role } }`)).viewer.role).toBe('VIEWER');
  });

  it('lets an ADMIN key do everything an EDITOR can', async () => {
    for (const [name, query, variables] of writesFor()) {
      const result = await t.admin.request(query, variables);
      expect(result.errors, name).toBeUndefined();
    }
  });

  it('refuses records writes to an AGENT key', async () => {
    const agent = await t.as('AGENT');
    await agent.fails('FORBIDDEN', `mutation { createExperiment(input: { name: "x", goal: STYLE }) { id } }`);
    await agent.fails('FORBIDDEN', CREATE_KEY, { role: 'ADMIN', name: 'x' });
  });

  it('shows a new key once; the key works with its role until it is revoked', async () => {
    const { createApiKey } = await t.admin.ok(CREATE_KEY, { role: 'EDITOR', name: '  ci pipeline ' });
    expect(createApiKey).toMatchObject({ name: 'ci pipeline', role: 'EDITOR' });
    expect(createApiKey.key).toMatch(/^\S{32,}$/);
    const ci = t.admin.withKey(createApiKey.key);
    expect((await ci.ok(`{ viewer { role name } }`)).viewer).toEqual({ role: 'EDITOR', name: 'ci pipeline' });
    await createExperiment(ci, { name: 'from ci' });

    // A second key is a different key.
    const { createApiKey: other } = await t.admin.ok(CREATE_KEY, { role: 'EDITOR', name: 'ci pipeline' });
    expect(other.key).not.toBe(createApiKey.key);
    expect(other.id).not.toBe(createApiKey.id);

    expect((await t.admin.ok(REVOKE_KEY, { id: createApiKey.id })).revokeApiKey).toBe(true);
    await ci.fails('UNAUTHENTICATED', `{ viewer { role } }`);
    await ci.fails('UNAUTHENTICATED', `mutation { createExperiment(input: { name: "x", goal: STYLE }) { id } }`);
    // Revoking again changes nothing; the other key still works.
    expect((await t.admin.ok(REVOKE_KEY, { id: createApiKey.id })).revokeApiKey).toBe(false);
    expect((await t.admin.withKey(other.key).ok(`{ viewer { role } }`)).viewer.role).toBe('EDITOR');
  });

  it('refuses a key without a name and revoking a key that does not exist', async () => {
    await t.admin.fails('BAD_USER_INPUT', CREATE_KEY, { role: 'VIEWER', name: '  ' }, 'name');
    await t.admin.fails('BAD_USER_INPUT', CREATE_KEY, { role: 'VIEWER', name: 'k'.repeat(201) }, 'name');
    await t.admin.fails('NOT_FOUND', REVOKE_KEY, { id: '00000000-0000-4000-8000-000000000000' }, 'id');
    await t.admin.fails('BAD_USER_INPUT', REVOKE_KEY, { id: 'nope' }, 'id');
  });

  it('lets an ADMIN revoke the key it is using', async () => {
    const { createApiKey } = await t.admin.ok(CREATE_KEY, { role: 'ADMIN', name: 'second admin' });
    const second = t.admin.withKey(createApiKey.key);
    expect((await second.ok(REVOKE_KEY, { id: createApiKey.id })).revokeApiKey).toBe(true);
    await second.fails('UNAUTHENTICATED', `{ viewer { role } }`);
  });
});

describe.skipIf(!TEST_DATABASE_URL)('revoking a key on one of two servers', () => {
  it('locks the key out of the other server too, which had it remembered', async () => {
    const pg = await createPostgresDatabase();
    const shared = { adminKey: `llk_test_shared_${Date.now()}_revoke_0123456789` };
    const open = async () => {
      const db = await openDatabase({ kind: 'postgres', url: pg.url });
      return { db, drop: () => db.close() };
    };
    const a = await startTestServer('postgres', shared, { database: await open() });
    const b = await startTestServer('postgres', shared, { database: await open() });
    try {
      const { createApiKey } = await a.admin.ok(CREATE_KEY, { role: 'VIEWER', name: 'dashboard' });
      const onB = b.admin.withKey(createApiKey.key);
      expect((await onB.ok(`{ viewer { role } }`)).viewer.role).toBe('VIEWER'); // B now remembers it
      await a.admin.ok(REVOKE_KEY, { id: createApiKey.id });
      // B learns of it through NOTIFY, well before its memory of the key would lapse on its own.
      const deadline = Date.now() + REMEMBER_KEY_MS / 2;
      let answer = await onB.request(`{ viewer { role } }`);
      while (!answer.errors && Date.now() < deadline) answer = await onB.request(`{ viewer { role } }`);
      expect(answer.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    } finally {
      await a.stop();
      await b.stop();
      await pg.drop();
    }
  });
});

describe.each(databaseKinds)('health check on %s', (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(kind);
  });
  afterAll(() => t?.stop());

  it('answers 200 without a key while the database answers, and 503 once it does not', async () => {
    await createDataset(t.admin, 1); // the database is in use
    const ok = await fetch(`${t.url}/healthz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ status: 'ok' });

    await t.server.db.close();
    const down = await fetch(`${t.url}/healthz`);
    expect(down.status).toBe(503);
    expect(((await down.json()) as { status: string }).status).not.toBe('ok');
  });
});
