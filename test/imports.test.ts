// Importing past ai-toolkit runs with the people's CLI (`npm run loralab -- import`), on real output
// folders the fake trainer wrote: every field read back through GraphQL, a second import adding
// nothing, a moved folder that grew adding what is new, loss from a console log, warnings for
// config keys loralab does not map, and a damaged loss_log.db refused whole.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lossText } from '../agents/fake-trainer.js';
import { sqlite } from '../cli/sqlite.js';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';
import { loralab, makeDataset, trainJob, type CliResult } from './helpers/ai-toolkit-folders.js';
import { main } from '../cli/loralab.js';
import { formatBytes } from '../cli/progress.js';

/** The CLI in this process (as fast as a function call); `loralab` spawns it as a person runs it. */
async function inProcess(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(['node', 'loralab', ...args], { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } }, {});
  return { code, stdout, stderr };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** A run as read, its signed URLs without their expiry and signature. */
const unsigned = (value: unknown) => JSON.parse(JSON.stringify(value).replace(/&expires=\d+&signature=[\w-]+/g, ''));
const SEED = 42; // the fake trainer's default training seed

const RUN = `id name status importedFrom startedAt finishedAt trainerConfig tags
  experiment { name } dataset { name uri imageCount contentHash }
  captionStrategy { kind triggerWord dropoutRate shuffleTokens }
  hyperparameters { baseModel rank alpha learningRate steps batchSize optimizer noiseScheduler resolutions saveEvery
    checkpointsToKeep sampleEvery samplePrompts sampleSeed guidanceScale sampleSteps quantize dtype extra }
  lossSummary { points lastStep }
  lossPoints(first: 10000) { step loss lr recordedAt }
  checkpoints { step path sizeBytes sha256 isFinal createdAt downloadUrl }
  samples { step promptIndex prompt path url }`;

let root: string;
let dataset: string;
/** A job trained with the UI logger on (loss_log.db), its console output in log.txt. */
let logged: string;
/** Another job with loss_log.db, imported once early (a copy as it was at step 150) and once grown. */
let growing: string;
/** A job without loss_log.db (its loss only in log.txt), with a config key loralab does not know. */
let logOnly: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'loralab-import-'));
  dataset = path.join(root, 'datasets', 'p3r5on');
  await makeDataset(dataset);
  [logged, growing, logOnly] = await Promise.all([
    trainJob(path.join(root, 'configs'), { name: 'p3r5on_v1', trainingFolder: path.join(root, 'output'), datasetFolder: dataset, logEvery: 10 }),
    trainJob(path.join(root, 'configs'), { name: 'p3r5on_grow', trainingFolder: path.join(root, 'output'), datasetFolder: dataset, logEvery: 10 }),
    trainJob(path.join(root, 'configs'), {
      name: 'p3r5on_log_only',
      trainingFolder: path.join(root, 'other'),
      datasetFolder: dataset,
      steps: 120,
      saveEvery: 60,
      sampleEvery: 60,
      logEvery: null,
      extra: { warp_drive: { enabled: true } },
    }),
  ]);
}, 120_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe.each(databaseKinds)('import (%s)', (kind) => {
  let t: TestServer;
  let editor: GqlClient;
  let dataDir: string;
  const cli = (args: string[], key = editor.key!) => inProcess(['--server', t.url, '--token', key, ...args]);
  const runs = async () => (await t.admin.ok(`{ runs(first: 500) { totalCount edges { node { id name importedFrom } } } }`)).runs;
  const readRun = async (id: string) => (await editor.ok(`query($id: ID!) { run(id: $id) { ${RUN} } }`, { id })).run;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'loralab-import-data-'));
    t = await startTestServer(kind, { dataDir });
    editor = await t.as('EDITOR');
  });
  afterAll(async () => {
    await t?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('imports a folder as a run whose every field reads back as the folder has it; a second import adds nothing', async () => {
    const first = await cli(['import', logged]);
    expect(first.code, first.stderr).toBe(0);
    const [line] = first.stdout.trim().split('\n');
    const [runId, status, name, folder] = line!.split('\t');
    expect({ status, name, folder }).toEqual({ status: 'SUCCEEDED', name: 'p3r5on_v1', folder: logged });
    expect(first.stderr).toMatch(/1 run imported \(1 new, 0 already known\): 29 loss points, 3 checkpoints, 8 samples added/);
    // Files go several at once; every one's bytes are counted in the summary.
    const sent = [...readdirSync(logged).filter((f) => /\.safetensors$|^optimizer\.pt$|^log\.txt$/.test(f)), ...readdirSync(path.join(logged, 'samples')).filter((f) => f.endsWith('.jpg')).map((f) => path.join('samples', f))];
    expect(first.stderr).toContain(`samples added, ${formatBytes(sent.reduce((n, f) => n + statSync(path.join(logged, f)).size, 0))} uploaded`);

    const run = await readRun(runId!);
    expect(run.importedFrom).toBe(logged);
    expect(run.tags).toEqual(['imported']);
    expect(run.experiment.name).toBe('output'); // the folder above the job's
    expect(run.trainerConfig).toBe(readFileSync(path.join(logged, 'config.yaml'), 'utf8'));
    expect(run.hyperparameters).toEqual({
      baseModel: 'black-forest-labs/FLUX.1-dev',
      rank: 32,
      alpha: 16,
      learningRate: 2e-4,
      steps: 300,
      batchSize: 1,
      optimizer: 'adamw8bit',
      noiseScheduler: 'flowmatch',
      resolutions: [512, 768],
      saveEvery: 100,
      checkpointsToKeep: 4,
      sampleEvery: 100,
      samplePrompts: ['[trigger] holding a sign', 'a bear building a log cabin'],
      sampleSeed: 42,
      guidanceScale: 4,
      sampleSteps: 20,
      quantize: true,
      dtype: 'bf16',
      // What has no hyperparameter of its own is kept.
      extra: {
        train: { ema_config: { use_ema: true, ema_decay: 0.99 } },
        save: { dtype: 'float16' },
        model: { is_flux: true },
        network: { type: 'lora' },
        sample: { sampler: 'flowmatch' },
        logging: { use_ui_logger: true, log_every: 10 },
      },
    });
    // gradient_accumulation_steps counts batches as steps: loralab cannot run it as written.
    expect(first.stderr).toMatch(/warning: train\.gradient_accumulation_steps: counts batches as steps.*; left out/);
    // The dataset is the folder's images, hashed; the captions are its .txt files with the trigger word.
    expect(run.dataset).toMatchObject({ name: 'p3r5on', uri: dataset, imageCount: 3 });
    expect(run.dataset.contentHash).toMatch(/^[0-9a-f]{64}$/);
    expect(run.captionStrategy).toEqual({ kind: 'FILES', triggerWord: 'p3r5on', dropoutRate: expect.closeTo(0.05, 6), shuffleTokens: false });

    // Every loss point of loss_log.db: every 10th step but the first, with its wall time.
    const SQL = await sqlite();
    const db = new SQL.Database(readFileSync(path.join(logged, 'loss_log.db')));
    const logRows = db.exec(`select s.step, s.wall_time, m.value_real from steps s join metrics m on m.step = s.step and m.key = 'loss/loss' order by s.step`)[0]!.values;
    db.close();
    expect(logRows.map((r) => r[0])).toEqual(Array.from({ length: 29 }, (_, i) => (i + 1) * 10));
    expect(run.lossPoints).toEqual(
      logRows.map(([step, wall, loss]) => ({ step, loss, lr: 2e-4, recordedAt: new Date(Math.round((wall as number) * 1000)).toISOString() })),
    );
    expect(run.lossPoints.map((p: { loss: number }) => p.loss)).toEqual(logRows.map((r) => Number(lossText(SEED, r[0] as number, 300))));
    expect(run.lossSummary).toEqual({ points: 29, lastStep: 290 });

    // Checkpoints: step, size, sha256 and the very bytes.
    const files = [['p3r5on_v1_000000100.safetensors', 100], ['p3r5on_v1_000000200.safetensors', 200], ['p3r5on_v1.safetensors', 300]] as const;
    expect(run.checkpoints.map((c: { step: number; isFinal: boolean; path: string }) => [c.step, c.isFinal, c.path])).toEqual(files.map(([f, step]) => [step, step === 300, path.join(logged, f)]));
    for (const [file, step] of files) {
      const bytes = readFileSync(path.join(logged, file));
      const c = run.checkpoints.find((x: { step: number }) => x.step === step);
      expect(c).toMatchObject({ sizeBytes: bytes.length, sha256: sha256(bytes), createdAt: new Date(statSync(path.join(logged, file)).mtimeMs).toISOString() });
      const downloaded = Buffer.from(await (await fetch(c.downloadUrl)).arrayBuffer());
      expect(downloaded.equals(bytes)).toBe(true);
    }
    // Samples: step and prompt index from the file name, the prompt as the sampler got it, the bytes.
    const sampleFiles = readdirSync(path.join(logged, 'samples')).filter((f) => f.endsWith('.jpg')).sort();
    expect(run.samples).toHaveLength(8);
    for (const file of sampleFiles) {
      const [, step, index] = /__(\d{9})_(\d+)\.jpg$/.exec(file)!;
      const s = run.samples.find((x: { step: number; promptIndex: number }) => x.step === Number(step) && x.promptIndex === Number(index));
      expect(s).toMatchObject({ prompt: Number(index) === 0 ? 'p3r5on holding a sign' : 'a bear building a log cabin', path: path.join(logged, 'samples', file) });
      expect(Buffer.from(await (await fetch(s.url)).arrayBuffer()).equals(readFileSync(path.join(logged, 'samples', file)))).toBe(true);
    }
    // Timings from the files: the first sample (before training) to the last record.
    expect(new Date(run.startedAt).getTime()).toBe(Math.min(...sampleFiles.map((f) => Number(f.slice(0, 13)))));
    expect(new Date(run.finishedAt).getTime()).toBeGreaterThanOrEqual(new Date(run.lossPoints.at(-1).recordedAt).getTime());

    const second = await cli(['import', logged]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout.split('\t')[0]).toBe(runId);
    expect(second.stderr).toMatch(/1 run imported \(0 new, 1 already known\): 0 loss points, 0 checkpoints, 0 samples added, 0 B uploaded/);
    // Signed URLs are signed anew for each read (and expire by the minute): compared without the signature.
    expect(unsigned(await readRun(runId!))).toEqual(unsigned(run));
    expect((await runs()).totalCount).toBe(1);

    // An imported run never enters the queue.
    await editor.fails('INVALID_TRANSITION', `mutation($id: ID!) { retryRun(id: $id) { id } }`, { id: runId });
  });

  it('a folder imported before it grew, and moved since, is the same run: importing it again adds what is new', async () => {
    // The job as it was at step ~150: no final checkpoint, later samples and log rows not written yet.
    const early = path.join(root, `early-${kind}`, 'p3r5on_grow');
    cpSync(growing, early, { recursive: true });
    for (const f of ['p3r5on_grow_000000200.safetensors', 'p3r5on_grow.safetensors']) rmSync(path.join(early, f));
    for (const f of readdirSync(path.join(early, 'samples'))) if (/__0000002|__0000003/.test(f)) rmSync(path.join(early, 'samples', f));
    const SQL = await sqlite();
    const db = new SQL.Database(readFileSync(path.join(early, 'loss_log.db')));
    db.exec('delete from metrics where step > 150; delete from steps where step > 150');
    writeFileSync(path.join(early, 'loss_log.db'), db.export());
    db.close();

    const before = (await runs()).totalCount;
    const first = await cli(['import', '--experiment', 'grown', early]);
    expect(first.code, first.stderr).toBe(0);
    const [runId, status] = first.stdout.split('\t');
    expect(status).toBe('CANCELLED'); // no final <name>.safetensors
    const earlyRun = await readRun(runId!);
    expect([earlyRun.lossSummary.points, earlyRun.checkpoints.length, earlyRun.samples.length, earlyRun.importedFrom]).toEqual([15, 1, 4, early]);

    // The same job, moved and grown: the same run, with what is new.
    const grown = await cli(['import', '--experiment', 'grown', growing]);
    expect(grown.code, grown.stderr).toBe(0);
    expect(grown.stderr).toMatch(/\(0 new, 1 already known\): 14 loss points, 2 checkpoints, 4 samples added/);
    const run = await readRun(grown.stdout.split('\t')[0]!);
    expect(run.id).toBe(runId);
    expect([run.status, run.lossSummary.points, run.checkpoints.length, run.samples.length, run.importedFrom]).toEqual(['SUCCEEDED', 29, 3, 8, growing]);
    expect((await runs()).totalCount).toBe(before + 1);

    // The early copy again changes nothing: a run whose final checkpoint is known stays SUCCEEDED.
    await cli(['import', '--experiment', 'grown', early]);
    expect((await readRun(runId!)).status).toBe('SUCCEEDED');
  });

  it('a folder without loss_log.db takes its loss from the saved console log; a config key loralab does not know is a warning, not a refusal', async () => {
    const result = await cli(['import', '--no-upload', '--experiment', 'console logs', path.dirname(logOnly)]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('warning: warp_drive: is not a key loralab knows; kept in hyperparameters.extra');
    const run = await readRun(result.stdout.split('\t')[0]!);
    expect(run.experiment.name).toBe('console logs');
    expect(run.hyperparameters.extra.warp_drive).toEqual({ enabled: true });
    // Every step's loss as the trainer printed it (the console shows each step, logged or not).
    expect(run.lossPoints.map((p: { step: number }) => p.step)).toEqual(Array.from({ length: 120 }, (_, i) => i));
    for (const p of run.lossPoints) expect(p.loss).toBe(Number(lossText(SEED, p.step, 120)));
    // --no-upload: the records, not the bytes.
    expect(run.checkpoints.map((c: { step: number; downloadUrl: string | null; sha256: string }) => [c.step, c.downloadUrl, c.sha256])).toEqual(
      [60, 120].map((step) => [step, null, sha256(readFileSync(path.join(logOnly, step === 120 ? 'p3r5on_log_only.safetensors' : `p3r5on_log_only_${String(step).padStart(9, '0')}.safetensors`)))]),
    );
  });

  it('a damaged loss_log.db is an error naming the file, and nothing of that folder is imported', async () => {
    const broken = path.join(root, `broken-${kind}`, 'p3r5on_v2');
    cpSync(logged, broken, { recursive: true });
    const file = path.join(broken, 'loss_log.db');
    const bytes = readFileSync(file);
    writeFileSync(file, Buffer.concat([bytes.subarray(0, 100), Buffer.alloc(bytes.length - 100, 0x5a)]));
    // Its own job: another name.
    writeFileSync(path.join(broken, 'config.yaml'), readFileSync(path.join(broken, 'config.yaml'), 'utf8').replaceAll('p3r5on_v1', 'p3r5on_v2'));
    const before = await runs();
    const experiments = (await t.admin.ok(`{ experiments { totalCount } }`)).experiments.totalCount;

    const result = await cli(['import', '--experiment', 'broken', broken]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}: `);
    expect(result.stderr).toMatch(/damaged|not a readable SQLite database|not an SQLite database/);
    expect(result.stdout).toBe('');
    expect(await runs()).toEqual(before);
    expect((await t.admin.ok(`{ experiments { totalCount } }`)).experiments.totalCount).toBe(experiments);
  });

  it('a loss_log.db with a loss that is not a number midway is refused before anything is written, though its points are sent as they are read', async () => {
    const odd = path.join(root, `odd-row-${kind}`, 'p3r5on_v3');
    cpSync(logged, odd, { recursive: true });
    const file = path.join(odd, 'loss_log.db');
    const SQL = await sqlite();
    const db = new SQL.Database(readFileSync(file));
    db.exec(`update metrics set value_real = 'n/a' where key = 'loss/loss' and step = (select step from metrics where key = 'loss/loss' order by step limit 1 offset 5)`);
    expect(db.getRowsModified()).toBe(1);
    writeFileSync(file, db.export());
    db.close();
    writeFileSync(path.join(odd, 'config.yaml'), readFileSync(path.join(odd, 'config.yaml'), 'utf8').replaceAll('p3r5on_v1', 'p3r5on_v3'));
    const before = await runs();

    const result = await cli(['import', '--experiment', 'odd', odd]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}: has a loss row that is not a step and a number`);
    expect(result.stdout).toBe('');
    expect(await runs()).toEqual(before);
  });

  it('pull downloads the final checkpoint (or one at a step), verified, under its download name; exit codes say what went wrong', async () => {
    const imported = await cli(['import', logged]);
    const runId = imported.stdout.split('\t')[0]!;
    const out = path.join(root, `pulled-${kind}`);
    const viewer = await t.as('VIEWER');
    const final = await cli(['pull', runId, '--out', out], viewer.key!);
    expect(final.code, final.stderr).toBe(0);
    expect(final.stdout.trim()).toBe(path.join(out, 'p3r5on_v1.safetensors'));
    expect(readFileSync(final.stdout.trim()).equals(readFileSync(path.join(logged, 'p3r5on_v1.safetensors')))).toBe(true);
    const step = await cli(['pull', runId, '--step', '100', '--out', out], viewer.key!);
    expect(step.stdout.trim()).toBe(path.join(out, 'p3r5on_v1-step100.safetensors'));
    expect(readFileSync(step.stdout.trim()).equals(readFileSync(path.join(logged, 'p3r5on_v1_000000100.safetensors')))).toBe(true);

    expect((await cli(['pull', runId, '--step', '150', '--out', out], viewer.key!)).code).toBe(5);
    expect((await cli(['pull', '00000000-0000-4000-8000-000000000000'], viewer.key!)).code).toBe(5);
    expect((await cli(['import', logged], viewer.key!)).code).toBe(4); // a VIEWER key may not import
    expect((await cli(['pull', runId], 'llk_wrong')).code).toBe(4);
    expect((await inProcess(['pull', runId])).code).toBe(2); // no token
    expect((await cli(['pull'])).code).toBe(2);
    expect((await inProcess(['--server', 'http://127.0.0.1:9', '--token', 'x', 'pull', runId])).code).toBe(3);
    // And as a person runs it: the compiled program, its exit code, the file's path on stdout.
    const spawned = await loralab(['pull', runId, '--out', path.join(out, 'spawned')], { LORALAB_SERVER: t.url, LORALAB_TOKEN: viewer.key! });
    expect(spawned.code, spawned.stderr).toBe(0);
    expect(spawned.stdout).toBe(`${path.join(out, 'spawned', 'p3r5on_v1.safetensors')}\n`);
  });

  it('dataset push stores a folder of images with its captions as a STORED strategy; pushing it again sends nothing', async () => {
    const push = await cli(['dataset', 'push', dataset, '--name', `faces-${kind}`, '--trigger', 'p3r5on', '--template', '[trigger], {caption}']);
    expect(push.code, push.stderr).toBe(0);
    const [datasetId, summary] = push.stdout.trim().split('\n');
    expect(summary).toMatch(/^3 images \(3 with captions\)/);
    const { dataset: d, captionStrategies } = await editor.ok(
      `query($id: ID!) { dataset(id: $id) { name stored imageCount images { edges { node { fileName sha256 width height url } } } } captionStrategies { id name kind triggerWord template } }`,
      { id: datasetId },
    );
    expect(d).toMatchObject({ name: `faces-${kind}`, stored: true, imageCount: 3 });
    const strategy = captionStrategies.find((s: { name: string }) => s.name === `faces-${kind}`);
    expect(strategy).toMatchObject({ kind: 'STORED', triggerWord: 'p3r5on', template: '[trigger], {caption}' });
    for (const { node } of d.images.edges) {
      const bytes = readFileSync(path.join(dataset, node.fileName));
      expect(node.sha256).toBe(sha256(bytes));
      expect(node.width).toBeGreaterThanOrEqual(32);
      expect(Buffer.from(await (await fetch(node.url)).arrayBuffer()).equals(bytes)).toBe(true);
    }
    const caption = await editor.ok(`query($id: ID!, $s: ID!) { dataset(id: $id) { images(first: 1) { edges { node { caption(strategyId: $s) } } } } }`, { id: datasetId, s: strategy.id });
    expect(caption.dataset.images.edges[0].node.caption).toBe('p3r5on, a photo of p3r5on number 0');
    // The .txt files themselves are stored beside the images, for a FILES strategy.
    const files = await editor.ok(`query($id: ID!) { dataset(id: $id) { images { edges { node { fileName captionFile { fileName stored url } } } } } }`, { id: datasetId });
    for (const { node } of files.dataset.images.edges) {
      const txt = node.fileName.replace(/\.[^.]+$/, '.txt');
      expect(node.captionFile).toMatchObject({ fileName: txt, stored: true });
      expect(Buffer.from(await (await fetch(node.captionFile.url)).arrayBuffer()).equals(readFileSync(path.join(dataset, txt)))).toBe(true);
    }

    const again = await cli(['dataset', 'push', dataset, '--name', `faces-${kind}`, '--trigger', 'p3r5on', '--template', '[trigger], {caption}']);
    expect(again.stdout.split('\n')[0]).toBe(datasetId);
    expect(again.stdout).toContain('0 B uploaded');
  });

  it('keys create prints a key that works; runs lists runs as a table; --help on every command', async () => {
    const created = await cli(['keys', 'create', '--role', 'AGENT', '--name', 'gpu1'], t.admin.key!);
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.trim();
    expect((await t.admin.withKey(key).ok(`{ viewer { role name } }`)).viewer).toEqual({ role: 'AGENT', name: 'gpu1' });
    expect((await cli(['keys', 'create', '--role', 'AGENT', '--name', 'gpu2'])).code).toBe(4); // an EDITOR key

    await cli(['import', logged]);
    const listed = await cli(['runs', '--status', 'SUCCEEDED']);
    expect(listed.code, listed.stderr).toBe(0);
    const [header, , ...rows] = listed.stdout.trim().split('\n');
    expect(header).toMatch(/^ID\s+NAME\s+STATUS\s+RANK\s+LR\s+STEPS\s+LAST LOSS\s+MIN LOSS\s+EXPERIMENT$/);
    expect(rows.some((r) => /p3r5on_v1\s+SUCCEEDED\*\s+32\s+2\.0e-4\s+300/.test(r))).toBe(true);
    expect(listed.stderr).toContain('* after a status: imported from an ai-toolkit folder');
    expect((await cli(['runs', '--experiment', 'no such experiment'])).code).toBe(5);

    for (const args of [[], ['import'], ['dataset', 'push'], ['pull'], ['keys', 'create'], ['runs'], ['best']]) {
      const help = await inProcess([...args, '--help']);
      expect(help.code, args.join(' ')).toBe(0);
      expect(help.stdout).toMatch(/^Usage: loralab/);
    }
    expect((await cli(['best', '00000000-0000-4000-8000-000000000000'])).code).toBe(5);
  });
});
