// The server as `npm start` runs it (compiled, see scripts/run.js): a real process on a DATA_DIR.
// A fresh PGlite folder takes several seconds to initialise on a small machine, so these few tests
// share one folder and have generous timeouts.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GqlClient } from './helpers/server.js';
import { freePort, startServerProcess, waitUntilHealthy, type ServerProcess } from './helpers/server-process.js';

const STARTUP_TIMEOUT_MS = 60_000;

/** Resolves once `condition` holds; the test's timeout bounds the wait. */
async function until(condition: () => boolean) {
  while (!condition()) await new Promise((r) => setTimeout(r, 50));
}

describe('the server process on a DATA_DIR', () => {
  let dataDir: string;
  const started: ServerProcess[] = [];
  const start = (env: Record<string, string>) => {
    const server = startServerProcess(env);
    started.push(server);
    return server;
  };

  beforeAll(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'loralab-datadir-'));
  });
  afterAll(async () => {
    for (const server of started) if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    await Promise.all(started.map((s) => s.exited));
    rmSync(dataDir, { recursive: true, force: true });
  });

  let adminKey: string;
  let experimentId: string;

  it(
    'creates an admin key on first start, prints it once and writes it to DATA_DIR/admin-key (mode 0600)',
    async () => {
      const port = await freePort();
      const server = start({ DATA_DIR: dataDir, PORT: String(port) });
      await waitUntilHealthy(server, port);

      const keyFile = path.join(dataDir, 'admin-key');
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      adminKey = readFileSync(keyFile, 'utf8').trim();
      expect(adminKey).toMatch(/^\S{32,}$/);
      // Printed right after the server starts listening; its output may reach us after /healthz did.
      await until(() => server.output().includes(adminKey));

      const admin = new GqlClient(`http://127.0.0.1:${port}`, adminKey);
      expect((await admin.ok(`{ viewer { role } }`)).viewer.role).toBe('ADMIN');
      const { createExperiment } = await admin.ok(`mutation { createExperiment(input: { name: "survives restarts", goal: STYLE }) { id } }`);
      experimentId = createExperiment.id;

      server.child.kill('SIGTERM');
      // index.ts exits 1 if its shutdown takes longer than 10 s, so exit code 0 means it finished in time.
      expect(await server.exited, server.output()).toEqual({ code: 0, signal: null });
    },
    STARTUP_TIMEOUT_MS,
  );

  it(
    'keeps its data across a restart, prints no new key, and refuses a second server on the same DATA_DIR',
    async () => {
      expect(adminKey, 'the first test ran').toBeDefined();
      const port = await freePort();
      const server = start({ DATA_DIR: dataDir, PORT: String(port) });
      await waitUntilHealthy(server, port);

      const admin = new GqlClient(`http://127.0.0.1:${port}`, adminKey);
      const { experiment } = await admin.ok(`query($id: ID!) { experiment(id: $id) { name } }`, { id: experimentId });
      expect(experiment).toEqual({ name: 'survives restarts' });
      expect(readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim()).toBe(adminKey);
      expect(server.output()).not.toContain('First start');
      expect(server.output()).not.toMatch(/llk_/);

      // Two processes on one PGlite folder would silently lose writes: the second must stop.
      const second = start({ DATA_DIR: dataDir, PORT: String(await freePort()) });
      const { code } = await second.exited;
      expect(code).not.toBe(0);
      expect(second.output()).toMatch(/DATA_DIR/);
      expect(second.output()).toContain(dataDir);
      expect(second.output()).toContain(`process ${server.child.pid}`);

      // The first one is unaffected.
      expect((await admin.ok(`{ experiments { totalCount } }`)).experiments.totalCount).toBe(1);
      server.child.kill('SIGTERM');
      expect(await server.exited, server.output()).toEqual({ code: 0, signal: null });
    },
    STARTUP_TIMEOUT_MS,
  );

  it(
    'starts at once on the DATA_DIR of a server killed with SIGKILL, and keeps its data',
    async () => {
      expect(adminKey, 'the first test ran').toBeDefined();
      const port = await freePort();
      const killed = start({ DATA_DIR: dataDir, PORT: String(port) });
      await waitUntilHealthy(killed, port);
      const admin = new GqlClient(`http://127.0.0.1:${port}`, adminKey);
      await admin.ok(`mutation { createExperiment(input: { name: "written before the kill", goal: STYLE }) { id } }`);
      killed.child.kill('SIGKILL');
      expect((await killed.exited).signal).toBe('SIGKILL');

      // Its lock is still fresh, but its owner is gone: the next server takes it over.
      const nextPort = await freePort();
      const next = start({ DATA_DIR: dataDir, PORT: String(nextPort) });
      await waitUntilHealthy(next, nextPort);
      const names = (await new GqlClient(`http://127.0.0.1:${nextPort}`, adminKey).ok(`{ experiments { edges { node { name } } } }`)).experiments.edges;
      expect(names.map((e: { node: { name: string } }) => e.node.name).sort()).toEqual(['survives restarts', 'written before the kill']);
      next.child.kill('SIGTERM');
      expect(await next.exited, next.output()).toEqual({ code: 0, signal: null });
    },
    STARTUP_TIMEOUT_MS,
  );

  describe.concurrent('stops at boot with one readable line naming a wrong variable', () => {
    const cases: [string, string][] = [
      ['PORT', 'abc'],
      ['DATABASE_URL', 'mysql://localhost/loralab'],
      ['LORALAB_ADMIN_KEY', 'short'],
    ];
    it.each(cases)(
      '%s=%s',
      async (variable, value) => {
        const server = start({ DATA_DIR: dataDir, [variable]: value });
        const { code } = await server.exited;
        expect(code).not.toBe(0);
        const lines = server.output().trim().split('\n');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toContain(variable);
        expect(lines[0]).not.toMatch(/\bat .*\.ts:\d+/); // no stack trace
      },
      STARTUP_TIMEOUT_MS,
    );
  });
});
