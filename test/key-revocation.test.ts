// Revoking a key ends what it had open, on every server, and never leaves nobody able to manage keys.
import { sql } from 'drizzle-orm';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/client.js';
import { REMEMBER_KEY_MS } from '../src/modules/keys/authenticator.js';
import { createPostgresDatabase, databaseKinds, TEST_DATABASE_URL } from './helpers/databases.js';
import { createBasics, queueRun } from './helpers/fixtures.js';
import { collect } from './helpers/live.js';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';

const CREATE_KEY = `mutation($role: ApiRole!, $name: String!) { createApiKey(role: $role, name: $name) { id key } }`;
const REVOKE_KEY = `mutation($id: ID!) { revokeApiKey(id: $id) }`;
const RUN_UPDATED = `subscription($id: ID!) { runUpdated(runId: $id) { id status } }`;

/** A graphql-ws client that remembers how its socket closed. */
function watchedClient(httpUrl: string, key: string) {
  const closes: { code: number; reason: string }[] = [];
  const client: Client = createClient({
    url: `${httpUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${key}` },
    retryAttempts: 0,
    lazy: true,
    on: { closed: (event) => void closes.push({ code: (event as CloseEvent).code, reason: (event as CloseEvent).reason }) },
  });
  return { client, closes };
}

/** Resolves once `condition` holds, or fails after `ms`. */
async function within(ms: number, condition: () => boolean, what: string) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A subscription that is delivering: it has seen the run's first update. */
async function liveSubscription(client: Client, admin: GqlClient, runId: string) {
  const sub = collect(client, RUN_UPDATED, { id: runId }, (d) => d.runUpdated);
  // Each cancel retry round trips through runUpdated; once one arrives the subscription is set up.
  for (let i = 0; sub.items.length === 0 && i < 200; i++) {
    await admin.ok(`mutation($id: ID!) { cancelRun(id: $id) { id } }`, { id: runId }).catch(() => undefined);
    await admin.request(`mutation($id: ID!) { retryRun(id: $id) { id } }`, { id: runId });
    await new Promise((r) => setTimeout(r, 25));
  }
  expect(sub.items.length).toBeGreaterThan(0);
  return sub;
}

describe.each(databaseKinds)('revoking a key with open WebSockets on %s', (kind) => {
  let t: TestServer;
  let runId: string;
  beforeAll(async () => {
    // The periodic key check is off here (an hour): what closes the sockets below is the revocation itself.
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600 }, { keyRecheckMs: 3_600_000 });
    runId = (await queueRun(t.admin, await createBasics(t.admin))).id;
  });
  afterAll(() => t?.stop());

  it('closes every socket of the key with 4403 at once, and leaves other keys streaming', async () => {
    const { createApiKey: doomed } = await t.admin.ok(CREATE_KEY, { role: 'VIEWER', name: 'dashboard' });
    const { createApiKey: other } = await t.admin.ok(CREATE_KEY, { role: 'VIEWER', name: 'wallboard' });
    const first = watchedClient(t.url, doomed.key);
    const second = watchedClient(t.url, doomed.key);
    const bystander = watchedClient(t.url, other.key);
    const subs = [];
    for (const c of [first, second, bystander]) subs.push(await liveSubscription(c.client, t.admin, runId));

    expect((await t.admin.ok(REVOKE_KEY, { id: doomed.id })).revokeApiKey).toBe(true);
    await within(REMEMBER_KEY_MS / 2, () => first.closes.length > 0 && second.closes.length > 0, 'both sockets closed');
    expect(first.closes[0]).toEqual({ code: 4403, reason: 'Forbidden: the API key was revoked' });
    expect(second.closes[0]?.code).toBe(4403);

    const seen = subs[2]!.items.length;
    await t.admin.ok(`mutation($id: ID!) { cancelRun(id: $id) { id } }`, { id: runId });
    await subs[2]!.until((items) => items.length > seen);
    expect(bystander.closes).toEqual([]);
    await bystander.client.dispose();
  });

  it('re-checks the key at every subscribe: a socket whose key was revoked unnoticed closes on its next subscribe', async () => {
    const { createApiKey } = await t.admin.ok(CREATE_KEY, { role: 'VIEWER', name: 'stale dashboard' });
    const { client, closes } = watchedClient(t.url, createApiKey.key);
    const open = await liveSubscription(client, t.admin, runId);
    // Revoked behind the server's back (no NOTIFY), and this server's memory of the key lapses.
    await t.server.db.orm.execute(sql`update api_keys set revoked_at = now() where id = ${createApiKey.id}`);
    t.server.app.authenticator.forget(createApiKey.id);
    expect(closes).toEqual([]);

    const late = collect(client, RUN_UPDATED, { id: runId }, (d) => d.runUpdated);
    await within(5_000, () => closes.length > 0, 'socket closed');
    expect(closes[0]?.code).toBe(4403);
    expect(late.items).toEqual([]);
    expect(open.errors.length + (open.completed ? 1 : 0)).toBeGreaterThan(0);
  });
});

describe.each(databaseKinds)('a revocation nobody announced on %s', (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600 }, { keyRecheckMs: 100 });
  });
  afterAll(() => t?.stop());

  it('closes the key’s sockets at the next periodic key check', async () => {
    const runId = (await queueRun(t.admin, await createBasics(t.admin))).id;
    const { createApiKey } = await t.admin.ok(CREATE_KEY, { role: 'VIEWER', name: 'missed notify' });
    const { client, closes } = watchedClient(t.url, createApiKey.key);
    await liveSubscription(client, t.admin, runId);
    await t.server.db.orm.execute(sql`update api_keys set revoked_at = now() where id = ${createApiKey.id}`);
    await within(5_000, () => closes.length > 0, 'socket closed');
    expect(closes[0]?.code).toBe(4403);
  });
});

describe.skipIf(!TEST_DATABASE_URL)('revoking a key on one of two servers on one postgres', () => {
  it('closes the key’s sockets on both servers within seconds', async () => {
    const pg = await createPostgresDatabase();
    const dbs = await Promise.all([0, 1].map(() => openDatabase({ kind: 'postgres', url: pg.url })));
    const shared = { reaperIntervalSeconds: 3600, adminKey: `llk_test_shared_${Date.now()}_revoke_ws_0123456789` };
    const [a, b] = await Promise.all(
      dbs.map((db) => startTestServer('postgres', shared, { database: { db, drop: () => db.close() }, keyRecheckMs: 3_600_000 })),
    );
    try {
      const runId = (await queueRun(a!.admin, await createBasics(a!.admin))).id;
      const { createApiKey } = await a!.admin.ok(CREATE_KEY, { role: 'VIEWER', name: 'dashboard' });
      const onA = watchedClient(a!.url, createApiKey.key);
      const onB = watchedClient(b!.url, createApiKey.key);
      await liveSubscription(onA.client, a!.admin, runId);
      await liveSubscription(onB.client, a!.admin, runId);

      await a!.admin.ok(REVOKE_KEY, { id: createApiKey.id });
      await within(REMEMBER_KEY_MS / 2, () => onA.closes.length > 0 && onB.closes.length > 0, 'sockets on both servers closed');
      expect([onA.closes[0]?.code, onB.closes[0]?.code]).toEqual([4403, 4403]);
    } finally {
      await Promise.all([a?.server.close(), b?.server.close()]);
      await Promise.all(dbs.map((db) => db.close()));
      await pg.drop();
    }
  });
});

describe.each(databaseKinds)('the last ADMIN key on %s', (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(kind);
  });
  afterAll(() => t?.stop());

  const activeAdmins = async () => {
    const result = (await t.server.db.orm.execute(sql`select id from api_keys where role = 'ADMIN' and revoked_at is null`)) as unknown;
    return ((Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as { id: string }[]).map((r) => r.id);
  };
  /** The one usable ADMIN key, as the tests below leave it. */
  let survivor: { id: string; client: GqlClient };

  it('cannot be revoked, by itself or by anyone: FORBIDDEN with the reason, and the key keeps working', async () => {
    const [only] = await activeAdmins();
    expect(await activeAdmins()).toHaveLength(1);
    const error = await t.admin.fails('FORBIDDEN', REVOKE_KEY, { id: only }, 'id');
    expect(error.message).toMatch(/last usable ADMIN key/);
    expect((await t.admin.ok(`{ viewer { role } }`)).viewer.role).toBe('ADMIN');

    // With a second ADMIN key, either may go; then the one left is the last.
    const { createApiKey: second } = await t.admin.ok(CREATE_KEY, { role: 'ADMIN', name: 'second admin' });
    expect((await t.admin.withKey(second.key).ok(REVOKE_KEY, { id: second.id })).revokeApiKey).toBe(true);
    await t.admin.fails('FORBIDDEN', REVOKE_KEY, { id: only }, 'id');
    expect(await activeAdmins()).toEqual([only]);
    survivor = { id: only!, client: t.admin };
  });

  it('lets exactly one of two simultaneous revocations of the last two ADMIN keys succeed', async () => {
    for (let round = 0; round < 5; round++) {
      const { createApiKey: partner } = await survivor.client.ok(CREATE_KEY, { role: 'ADMIN', name: `partner ${round}` });
      const partnerClient = t.admin.withKey(partner.key);
      // Each revokes the other at the same moment.
      const answers = await Promise.all([
        survivor.client.request(REVOKE_KEY, { id: partner.id }),
        partnerClient.request(REVOKE_KEY, { id: survivor.id }),
      ]);
      const context = `round ${round}: ${JSON.stringify(answers)}`;
      expect(answers.filter((a) => a.data?.revokeApiKey === true), context).toHaveLength(1);
      // The other was refused: the last key (FORBIDDEN), or already revoked when it arrived (UNAUTHENTICATED).
      const refused = answers.find((a) => a.errors)!;
      expect(['FORBIDDEN', 'UNAUTHENTICATED'], context).toContain(refused.errors![0]!.extensions!.code);
      const left = await activeAdmins();
      expect(left, context).toHaveLength(1);
      if (left[0] === partner.id) survivor = { id: partner.id, client: partnerClient };
      expect((await survivor.client.ok(`{ viewer { role } }`)).viewer.role).toBe('ADMIN');
    }
  });

  it('still lets the last ADMIN revoke other keys', async () => {
    const { createApiKey: viewer } = await survivor.client.ok(CREATE_KEY, { role: 'VIEWER', name: 'v' });
    expect((await survivor.client.ok(REVOKE_KEY, { id: viewer.id })).revokeApiKey).toBe(true);
    const { createApiKey: other } = await survivor.client.ok(CREATE_KEY, { role: 'ADMIN', name: 'other admin' });
    expect((await survivor.client.ok(REVOKE_KEY, { id: other.id })).revokeApiKey).toBe(true);
  });
});
