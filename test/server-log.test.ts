// What the server writes to its log when a statement fails: which statement and why, never the
// values it carried (lease tokens, key hashes, a trainer's 200 KB log tail).
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capText, scrubSecrets, serializeError, statementName } from '../src/log.js';
import { claimNewRun, registerAgent } from './helpers/agents.js';
import { databaseKinds } from './helpers/databases.js';
import { createBasics } from './helpers/fixtures.js';
import { captureLog, type CapturedLog } from './helpers/log-capture.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { collect, wsClient } from './helpers/live.js';

const LOG_TAIL_MARKER = 'trainer-said-this-';

describe.each(databaseKinds)('the server log on %s', (kind) => {
  let t: TestServer;
  let captured: CapturedLog;
  beforeAll(async () => {
    captured = captureLog('info');
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600 }, { log: captured.log });
    // Faults on demand: these triggers make the statements below fail inside the database.
    await t.server.db.orm.execute(sql`
      create function loralab_test_fail() returns trigger language plpgsql as $$
        begin raise exception 'injected failure for %', tg_table_name; end $$`);
    await t.server.db.orm.execute(sql`
      create trigger fail_run_errors before update on runs for each row
        when (new.error_log_tail is not null) execute function loralab_test_fail()`);
    await t.server.db.orm.execute(sql`
      create trigger fail_key_inserts before insert on api_keys for each row
        when (new.name = 'doomed') execute function loralab_test_fail()`);
  });
  afterAll(() => t?.stop());

  it('names the failed statement and its error code, and carries no lease token, key hash or log tail', async () => {
    const basics = await createBasics(t.admin);
    const agent = await registerAgent(t);
    const { runId, token } = await claimNewRun(t, basics, agent);
    const logTail = `${LOG_TAIL_MARKER}${'x'.repeat(199_000)}`;
    const failed = await agent.complete(runId, token, 'FAILED', { code: 'TRAINER_ERROR', message: 'CUDA out of memory', logTail });
    expect(failed.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    expect(JSON.stringify(failed)).not.toMatch(/select|update|insert|injected/i); // the client learns nothing either

    const keyFailure = await t.admin.request(`mutation { createApiKey(role: VIEWER, name: "doomed") { key } }`);
    expect(keyFailure.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');

    const errors = captured.lines().filter((l) => l.level >= 50);
    expect(errors.length).toBeGreaterThanOrEqual(2);
    for (const line of errors) {
      expect(line.msg).toBe('internal error');
      expect(line.err.statement).toEqual(expect.any(String));
      expect(line.err.statement).toMatch(/^(completeRun|insert into api_keys)$/);
      // The database's own reason survives (raise_exception, P0001), under drizzle's "Failed query" where drizzle sent it.
      const reason = line.err.message === 'Failed query' ? line.err.cause : line.err;
      expect(reason).toMatchObject({ code: 'P0001', message: expect.stringContaining('injected failure') });
    }
    const text = captured.text();
    expect(text).not.toContain(token);
    expect(text).not.toContain(LOG_TAIL_MARKER);
    expect(text).not.toContain('CUDA out of memory');
    expect(text).not.toMatch(/\b[0-9a-f]{64}\b/); // no key hash
    expect(text).not.toContain(t.admin.key!);
    expect(text).not.toMatch(/params|parameters/);
    for (const line of text.split('\n')) expect(line.length).toBeLessThan(8_000);
  });

  it('answers a subscription that fails inside with a generic error, and logs it like a failed request', async () => {
    const run = await t.admin.ok(`{ runs(first: 1) { edges { node { id } } } }`);
    const runId = run.runs.edges[0].node.id;
    const before = captured.lines().length;
    const client = wsClient(t.url, t.admin.key);
    await t.server.db.orm.execute(sql`alter table runs rename to runs_away`);
    try {
      const sub = collect(client, `subscription($id: ID!) { runUpdated(runId: $id) { id } }`, { id: runId }, (d) => d.runUpdated);
      await sub.until(() => false).catch(() => undefined);
      expect(sub.errors).toEqual([expect.objectContaining({ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } })]);
    } finally {
      await t.server.db.orm.execute(sql`alter table runs_away rename to runs`);
      await client.dispose();
    }
    const logged = captured.lines().slice(before).filter((l) => l.msg === 'internal error');
    expect(logged).toHaveLength(1);
    expect(logged[0]!.err.statement).toBe('select from runs');
  });
});

describe('what an error becomes in the log', () => {
  it('keeps codes, names and frames; drops SQL parameters, detail and long values', () => {
    const cause = Object.assign(new Error('duplicate key value violates unique constraint "api_keys_key_hash_idx"'), {
      code: '23505',
      detail: `Key (key_hash)=(${'ab'.repeat(32)}) already exists.`,
      constraint_name: 'api_keys_key_hash_idx',
      query: 'insert into api_keys ...',
      parameters: ['llk_secret_key_value_1234567890abcdef', 'ab'.repeat(32)],
    });
    const drizzle = Object.assign(new Error(`Failed query: /* insertKey */ insert into "api_keys" values ($1, $2)\nparams: x,${'ab'.repeat(32)}`), {
      query: '/* insertKey */ insert into "api_keys" values ($1, $2)',
      params: ['x', 'ab'.repeat(32)],
      cause,
    });
    const logged = serializeError(drizzle) as Record<string, any>;
    expect(logged).toMatchObject({ message: 'Failed query', statement: 'insertKey' });
    expect(logged.cause).toMatchObject({ code: '23505', constraint_name: 'api_keys_key_hash_idx' });
    expect(JSON.stringify(logged)).not.toMatch(/abab|llk_secret|detail|params|parameters/);
  });

  it('redacts keys, hashes and tokens in messages but keeps ids', () => {
    const id = '6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b';
    expect(scrubSecrets(`run ${id} token Zk3v9Q_x-7hTq2Lm8NcR4pWs6YbD1eFgHjKl key llk_abc`)).toBe(`run ${id} token [redacted] key llk_[redacted]`);
    expect(capText('x'.repeat(600))).toHaveLength(500 + '… (600 characters)'.length);
    expect(statementName('select 1 /* fast path */')).toBe('select 1 /* fast path */');
    expect(statementName('/* claimRun */ with a as (select 1) select * from a')).toBe('claimRun');
    expect(statementName('insert into "api_keys" ("id", "name") values ($1, $2) returning "id"')).toBe('insert into api_keys');
    expect(statementName('select "id" from "runs" where "runs"."id" = $1')).toBe('select from runs');
    expect(statementName('update "agents" set "draining" = $1')).toBe('update agents');
  });
});

describe.each(databaseKinds)('checking a key while the database is away on %s', (kind) => {
  let t: TestServer;
  let captured: CapturedLog;
  beforeAll(async () => {
    captured = captureLog('info');
    t = await startTestServer(kind, {}, { log: captured.log });
  });
  afterAll(() => t?.stop());

  it('answers 503 (the agent retries) and logs which statement failed, not the key’s hash', async () => {
    await t.server.db.close();
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer llk_some-key-this-server-never-saw-0123456789' },
      body: JSON.stringify({ query: '{ viewer { role } }' }),
    });
    expect(res.status).toBe(503);
    const body = await res.text();
    expect(JSON.parse(body).errors[0]).toMatchObject({ message: 'Could not check the API key; try again', extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(body).not.toMatch(/select|api_keys|[0-9a-f]{64}/);
    const line = captured.lines().find((l) => l.msg === 'checking an API key failed');
    expect(line?.err).toMatchObject({ message: 'Failed query', statement: 'select from api_keys' });
    expect(captured.text()).not.toMatch(/[0-9a-f]{64}|some-key-this-server/);
  });
});
