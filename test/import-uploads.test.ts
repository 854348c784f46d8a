// How `loralab import` groups the calls that upload a folder's files, seen from the wire (a proxy
// between the CLI and the server): small files are declared together, not one per sending slot,
// and every file is completed once.
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../cli/loralab.js';
import { startCountingProxy, type CountingProxy } from './helpers/counting-proxy.js';
import { databaseKinds } from './helpers/databases.js';
import { makeDataset, trainJob } from './helpers/ai-toolkit-folders.js';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';

let root: string;
/** A job of 3 checkpoints, 8 samples, optimizer.pt and log.txt: every file well under a megabyte. */
let job: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'loralab-import-uploads-'));
  const dataset = path.join(root, 'datasets', 'p3r5on');
  await makeDataset(dataset);
  job = await trainJob(path.join(root, 'configs'), { name: 'p3r5on_calls', trainingFolder: path.join(root, 'output'), datasetFolder: dataset, logEvery: 10 });
}, 120_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe.each(databaseKinds)('import uploads (%s)', (kind) => {
  let t: TestServer;
  let editor: GqlClient;
  let proxy: CountingProxy;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'loralab-import-uploads-data-'));
    t = await startTestServer(kind, { dataDir });
    editor = await t.as('EDITOR');
    proxy = await startCountingProxy(t.url);
  });
  afterAll(async () => {
    await proxy?.close();
    await t?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('declares the small files of a folder in one call, sends each once and completes each once', async () => {
    let stdout = '';
    let stderr = '';
    const code = await main(['node', 'loralab', '--server', proxy.url, '--token', editor.key!, 'import', job], { stdout: { write: (s: string) => void (stdout += s) }, stderr: { write: (s: string) => void (stderr += s) } }, {});
    expect(code, stderr).toBe(0);
    const files = [...readdirSync(job).filter((f) => /\.safetensors$|^optimizer\.pt$|^log\.txt$/.test(f)), ...readdirSync(path.join(job, 'samples')).filter((f) => f.endsWith('.jpg'))];
    expect(files.length).toBeGreaterThan(6); // more than the files the CLI sends at once

    const begins = proxy.operations.filter((o) => o.name === 'BeginImportUploads');
    expect(begins.map((b) => (b.variables.inputs as unknown[]).length)).toEqual([files.length]);
    const declared = begins.flatMap((b) => b.variables.inputs as { fileName: string }[]).map((d) => d.fileName);
    expect(declared.sort()).toEqual([...files].sort());

    // Each file's one part went once, and each upload was completed once.
    expect(proxy.puts.length).toBe(files.length);
    const completed = proxy.operations.filter((o) => o.name === 'CompleteUploads').flatMap((o) => (o.variables.uploads as { artifactId: string }[]).map((u) => u.artifactId));
    expect(completed.length).toBe(files.length);
    expect(new Set(completed).size).toBe(files.length);

    // And every one is stored.
    const { run } = await editor.ok(`query($id: ID!) { run(id: $id) { checkpoints { downloadUrl } samples { url } } }`, { id: stdout.split('\t')[0] });
    expect(run.checkpoints.length + run.samples.length).toBe(files.filter((f) => /\.safetensors$|\.jpg$/.test(f)).length);
    for (const url of [...run.checkpoints.map((c: { downloadUrl: string | null }) => c.downloadUrl), ...run.samples.map((s: { url: string | null }) => s.url)]) expect(url).not.toBeNull();
  });
});
