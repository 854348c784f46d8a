// DATA_DIR is the server's alone: 0700 folders and 0600 files, whatever the umask, repaired at
// every start. (PGlite creates its files 0666, so before this a local user could write the database.)
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startServerProcess, waitUntilHealthy, type ServerProcess } from './helpers/server-process.js';

// A first PGlite start (initdb in WebAssembly) is slow, and much slower on a busy machine.
const STARTUP_TIMEOUT_MS = 180_000;

/** Every path under `root` (root itself as ".") with its permission bits, folders marked with a trailing slash. */
function modes(root: string) {
  const found: Record<string, number> = {};
  const visit = (file: string) => {
    const info = statSync(file);
    const name = path.relative(root, file) || '.';
    found[info.isDirectory() ? `${name}/` : name] = info.mode & 0o777;
    if (info.isDirectory()) for (const entry of readdirSync(file)) visit(path.join(file, entry));
  };
  visit(root);
  return found;
}

/** Stores one dataset image in the embedded artifact store, as a person's upload does. */
async function storeAnImage(port: number, dataDir: string) {
  const key = readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim();
  const gql = async (query: string, variables: Record<string, unknown>) => {
    const res = await fetch(`http://127.0.0.1:${port}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query, variables }) });
    const body = (await res.json()) as { data: Record<string, any>; errors?: unknown };
    expect(body.errors).toBeUndefined();
    return body.data;
  };
  const bytes = Buffer.from('not really a jpeg, but bytes all the same');
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const { createDataset } = await gql(`mutation($i: CreateDatasetInput!) { createDataset(input: $i) { id } }`, { i: { name: 'modes', images: [{ fileName: 'a.jpg', sha256 }] } });
  const { beginDatasetUpload: upload } = await gql(
    `mutation($d: ID!, $i: ArtifactUploadInput!) { beginDatasetUpload(datasetId: $d, input: $i) { artifact { id } parts { number url } } }`,
    { d: createDataset.id, i: { kind: 'DATASET_IMAGE', fileName: 'a.jpg', sizeBytes: bytes.length, sha256 } },
  );
  const put = await fetch(upload.parts[0].url, { method: 'PUT', body: bytes });
  expect(put.status).toBe(200);
  const { completeUpload } = await gql(`mutation($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { stored } }`, {
    a: upload.artifact.id,
    p: [{ number: 1, etag: put.headers.get('etag') }],
  });
  expect(completeUpload.stored).toBe(true);
}

const loose = (all: Record<string, number>) =>
  Object.entries(all).filter(([name, mode]) => mode !== (name.endsWith('/') ? 0o700 : 0o600));

describe('the modes under DATA_DIR', () => {
  let parent: string;
  let dataDir: string;
  const started: ServerProcess[] = [];
  const start = async (umask: string) => {
    const port = await freePort();
    const server = startServerProcess({ DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'info' }, { umask });
    started.push(server);
    await waitUntilHealthy(server, port);
    return { ...server, port };
  };
  const stop = async (server: ServerProcess & { port: number }) => {
    server.child.kill('SIGTERM');
    expect(await server.exited, server.output()).toEqual({ code: 0, signal: null });
  };

  beforeAll(() => {
    parent = mkdtempSync(path.join(os.tmpdir(), 'loralab-modes-'));
    dataDir = path.join(parent, 'data');
  });
  afterAll(async () => {
    for (const server of started) if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    await Promise.all(started.map((s) => s.exited));
    rmSync(parent, { recursive: true, force: true });
  });

  it(
    'are 0700 and 0600 after a first start and an upload to the embedded store under umask 000',
    async () => {
      const server = await start('000');
      await storeAnImage(server.port, dataDir);
      const all = modes(dataDir);
      expect(Object.keys(all).some((name) => name.startsWith('artifacts/objects/'))).toBe(true);
      expect(Object.keys(all).length).toBeGreaterThan(500); // the database is in there
      expect(all['./']).toBe(0o700);
      expect(all['admin-key']).toBe(0o600);
      expect(loose(all)).toEqual([]);
      await stop(server);
    },
    STARTUP_TIMEOUT_MS,
  );

  it(
    'are repaired at the next start after someone loosened them, and the log says what was repaired',
    async () => {
      chmodSync(dataDir, 0o777);
      chmodSync(path.join(dataDir, 'pgdata'), 0o755);
      chmodSync(path.join(dataDir, 'admin-key'), 0o644);
      const globalFolder = path.join(dataDir, 'pgdata', 'global');
      for (const file of readdirSync(globalFolder)) chmodSync(path.join(globalFolder, file), 0o666);

      const server = await start('022');
      expect(loose(modes(dataDir))).toEqual([]);
      const repairLines = server
        .output()
        .split('\n')
        .filter((line) => line.includes('narrowed DATA_DIR permissions'))
        .map((line) => JSON.parse(line));
      // DATA_DIR itself before the database opens (a warning: it was open to others), the rest after.
      expect(repairLines[0]).toMatchObject({ level: 40, when: 'before start', repaired: 1, examples: ['.'] });
      expect(repairLines.reduce((n, line) => n + line.repaired, 0)).toBeGreaterThanOrEqual(3 + readdirSync(globalFolder).length);
      await stop(server);
    },
    STARTUP_TIMEOUT_MS,
  );
});
