// `npm start` runs the server compiled (scripts/run.js); `npm run dev` and the tests run the
// sources through tsx. Both are started here as processes on the same kind of database and must
// answer a client alike, byte for byte where nothing differs by nature (ids, times).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureBuilt } from '../scripts/build.js';
import { createPostgresDatabase, databaseKinds } from './helpers/databases.js';
import { freePort, startServerProcess, waitUntilHealthy, type ServerProcess, type StartKind } from './helpers/server-process.js';

const STARTUP_TIMEOUT_MS = 120_000;
const KINDS: StartKind[] = ['compiled', 'tsx'];

interface Answer {
  status: number;
  contentType: string | null;
  body: unknown;
}

/** What a client sees of one request, with the values that differ by nature (ids, times) masked. */
async function answer(url: string, init?: RequestInit): Promise<Answer> {
  const res = await fetch(url, init);
  const contentType = res.headers.get('content-type');
  const text = await res.text();
  const body = contentType?.includes('json') ? mask(JSON.parse(text)) : text;
  return { status: res.status, contentType, body };
}

function mask(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(mask);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, /^(id|createdAt|requestId)$/.test(k) && v != null ? `<${k}>` : mask(v)]));
  }
  return value;
}

const graphql = (key: string | null, body: string): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
  body,
});

/** A PGlite DATA_DIR holding the migrated template database, as a restart finds its folder. */
async function pgliteDataDir(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loralab-compiled-'));
  const template = new Blob([readFileSync(inject('pgliteTemplate'))]);
  const client = await PGlite.create(path.join(dir, 'pgdata'), { loadDataDir: template });
  await client.close();
  return dir;
}

describe.each(databaseKinds)('on %s, the compiled server answers as the tsx one does', (database) => {
  const adminKey = `llk_compiled_${randomBytes(16).toString('hex')}`;
  const servers = {} as Record<StartKind, { process: ServerProcess; url: string }>;
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    await ensureBuilt('src/index.ts');
    await Promise.all(
      KINDS.map(async (kind) => {
        let env: Record<string, string>;
        if (database === 'pglite') {
          const dir = await pgliteDataDir();
          cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
          env = { DATA_DIR: dir };
        } else {
          const pg = await createPostgresDatabase();
          cleanups.push(() => pg.drop());
          env = { DATABASE_URL: pg.url };
        }
        const port = await freePort();
        const process = startServerProcess({ ...env, PORT: String(port), LORALAB_ADMIN_KEY: adminKey, NODE_ENV: "production" }, { kind });
        servers[kind] = { process, url: `http://127.0.0.1:${port}` };
        await waitUntilHealthy(process, port);
      }),
    );
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    for (const { process } of Object.values(servers)) {
      if (process.child.exitCode === null && process.child.signalCode === null) process.child.kill('SIGKILL');
      await process.exited;
    }
    for (const cleanup of cleanups) await cleanup();
  });

  /** The same request to both servers; their answers. */
  const both = async (pathname: string, init?: RequestInit) => {
    const [compiled, tsx] = await Promise.all(KINDS.map((kind) => answer(`${servers[kind].url}${pathname}`, init)));
    return { compiled: compiled!, tsx: tsx! };
  };

  it('the health check and the dashboard page', async () => {
    const health = await both('/healthz');
    expect(health.compiled).toEqual({ status: 200, contentType: expect.stringContaining('json'), body: { status: 'ok' } });
    expect(health.compiled).toEqual(health.tsx);

    const page = await both('/');
    expect(page.compiled.status).toBe(200);
    expect(page.compiled.body).toContain('<script');
    expect(page.compiled).toEqual(page.tsx);
  });

  it('the schema, read by introspection with a key', async () => {
    const { compiled, tsx } = await both('/graphql', graphql(adminKey, JSON.stringify({ query: getIntrospectionQuery({ descriptions: true }) })));
    expect(compiled.status).toBe(200);
    const types = (compiled.body as { data: { __schema: { types: { name: string }[] } } }).data.__schema.types.map((t) => t.name);
    expect(types).toEqual(expect.arrayContaining(['Run', 'Experiment', 'Agent', 'LossBucket']));
    expect(compiled).toEqual(tsx);
  });

  it('the viewer, and a write read back', async () => {
    const viewer = await both('/graphql', graphql(adminKey, JSON.stringify({ query: '{ viewer { role name } }' })));
    expect(viewer.compiled.body).toEqual({ data: { viewer: { role: 'ADMIN', name: expect.any(String) } } });
    expect(viewer.compiled).toEqual(viewer.tsx);

    const create = JSON.stringify({
      query: 'mutation($i: CreateExperimentInput!) { createExperiment(input: $i) { id name goal tags createdAt } }',
      variables: { i: { name: 'same either way', goal: 'STYLE', tags: ['a', 'b'] } },
    });
    const created = await both('/graphql', graphql(adminKey, create));
    expect(created.compiled.body).toEqual({ data: { createExperiment: { id: '<id>', name: 'same either way', goal: 'STYLE', tags: ['a', 'b'], createdAt: '<createdAt>' } } });
    expect(created.compiled).toEqual(created.tsx);

    const listed = await both('/graphql', graphql(adminKey, JSON.stringify({ query: '{ experiments(search: "either") { totalCount edges { node { name } } } }' })));
    expect(listed.compiled.body).toEqual({ data: { experiments: { totalCount: 1, edges: [{ node: { name: 'same either way' } }] } } });
    expect(listed.compiled).toEqual(listed.tsx);
  });

  it('the errors: no key, a wrong key, an invalid query, a body that is not JSON, bad input', async () => {
    const requests: [string, RequestInit][] = [
      ['/graphql', graphql(null, JSON.stringify({ query: '{ viewer { role } }' }))],
      ['/graphql', graphql('llk_not_a_key_at_all_000000000000', JSON.stringify({ query: '{ viewer { role } }' }))],
      ['/graphql', graphql(adminKey, JSON.stringify({ query: '{ noSuchField }' }))],
      ['/graphql', graphql(adminKey, '{"query": ')],
      ['/graphql', graphql(adminKey, JSON.stringify({ query: 'mutation { createExperiment(input: { name: "", goal: STYLE }) { id } }' }))],
      ['/no-such-page', {}],
    ];
    for (const [pathname, init] of requests) {
      const { compiled, tsx } = await both(pathname, init);
      expect(compiled.status, `${pathname} ${init.body}`).toBeGreaterThanOrEqual(200);
      expect(compiled, `${pathname} ${init.body}`).toEqual(tsx);
    }
  });

  it('stops on SIGTERM with exit code 0, as the tsx start does', async () => {
    for (const kind of KINDS) servers[kind].process.child.kill('SIGTERM');
    const [compiled, tsx] = await Promise.all(KINDS.map((kind) => servers[kind].process.exited));
    // index.ts exits 1 if its shutdown takes longer than its deadline: 0 means it drained in time.
    expect(compiled, servers.compiled.process.output()).toEqual({ code: 0, signal: null });
    expect(tsx, servers.tsx.process.output()).toEqual({ code: 0, signal: null });
  }, STARTUP_TIMEOUT_MS);
});
