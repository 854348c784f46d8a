// Issue 18: importing a past ai-toolkit run with `npm run loralab -- import` (a 3,000-step run with
// 12 checkpoints of 20 MB, 48 samples and its loss_log.db, bytes uploaded to the embedded store)
// against a raw copy of the same files on the same disk (goal ≥ 0.5×); and loss points per second
// out of loss_log.db (goal 50,000/s), read alone and imported end to end (50,000 steps). Beside
// the ratio, where the time goes: the CLI's start, a bare sha256 pass over the same files (a floor
// no import can go under: it must hash every byte), and the CPU seconds of the CLI and the server,
// which on a busy 2-core machine decide the wall time more than the disk does. And the floor for
// any verified import over HTTP, measured in the same run: the client hashes each file once and
// PUTs it to a bare Node server that only writes the bodies at their offsets and fsyncs them at the
// end (no records, no second hash). `bench/import.ts files` measures the folder import alone.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import http from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { stringify } from 'yaml';
import { checkpointFileName, sampleFileName } from '../agents/files.js';
import { encodeSafetensors } from '../agents/safetensors.js';
import { readLossLog } from '../cli/loss-log.js';
import { sqlite } from '../cli/sqlite.js';
import { connectPostgres } from '../src/db/client.js';
import { createKey, databaseCpuSeconds, freePort, freshPostgres, isMain, startServerProcess, table, type ServerProcess as BareServer } from './lib.js';

/** A server under measure; on PostgreSQL, with the CPU seconds of its database's backends so far. */
type ServerProcess = BareServer & { databaseCpu?: () => Promise<number> };

const ROOT = path.resolve(import.meta.dirname, '..');
const MB = 1024 * 1024;
const NAME = 'bench_lora';

function config(steps: number, name = NAME) {
  return stringify({
    job: 'extension',
    config: {
      name,
      process: [
        {
          type: 'sd_trainer',
          training_folder: '/data/output',
          trigger_word: 'p3r5on',
          network: { type: 'lora', linear: 16, linear_alpha: 16 },
          save: { dtype: 'float16', save_every: 250, max_step_saves_to_keep: 12 },
          logging: { use_ui_logger: true, log_every: 1 },
          datasets: [{ folder_path: '/data/datasets/not-here', caption_ext: 'txt', caption_dropout_rate: 0.05, resolution: [512, 768, 1024] }],
          train: { batch_size: 1, steps, noise_scheduler: 'flowmatch', optimizer: 'adamw8bit', lr: 1e-4, dtype: 'bf16' },
          model: { name_or_path: 'black-forest-labs/FLUX.1-dev', is_flux: true, quantize: true },
          sample: { sampler: 'flowmatch', sample_every: 250, width: 1024, height: 1024, prompts: ['[trigger] a', '[trigger] b', 'c', 'd'], seed: 42, guidance_scale: 4, sample_steps: 20 },
        },
      ],
    },
  });
}

/** loss_log.db as ai-toolkit's UI logger leaves it, one row every step from 1 to steps-1. */
async function lossLog(file: string, steps: number) {
  const SQL = await sqlite();
  const db = new SQL.Database();
  db.exec(`create table steps (step integer primary key, wall_time real not null);
    create table metric_keys (key text primary key, first_seen_step integer, last_seen_step integer);
    create table metrics (step integer not null, key text not null, value_real real, value_text text, primary key (step, key));`);
  db.exec('begin');
  const start = Date.now() / 1000 - steps * 2;
  for (let step = 1; step < steps; step++) {
    db.run('insert into steps values (?, ?)', [step, start + step * 2]);
    db.run("insert into metrics values (?, 'loss/loss', ?, null)", [step, 0.3 + 0.2 * Math.exp(-step / 1000) + Math.random() * 0.05]);
    db.run("insert into metrics values (?, 'learning_rate', ?, null)", [step, 1e-4]);
  }
  db.exec("insert into metric_keys values ('loss/loss', 1, " + (steps - 1) + "), ('learning_rate', 1, " + (steps - 1) + '); commit');
  writeFileSync(file, db.export());
  db.close();
}

/** An ai-toolkit output folder: 12 checkpoints of 20 MB (every 250 steps, the last the final one), 48 samples, loss_log.db. */
async function makeRun(dir: string) {
  const folder = path.join(dir, 'output', NAME);
  mkdirSync(path.join(folder, 'samples'), { recursive: true });
  writeFileSync(path.join(folder, 'config.yaml'), config(3000));
  for (let i = 1; i <= 12; i++) {
    const step = i * 250;
    const body = encodeSafetensors({ format: 'pt', training_info: JSON.stringify({ step, epoch: 0 }) }, [{ name: 'lora.weight', dtype: 'F16', shape: [10 * MB], data: randomBytes(20 * MB) }]);
    writeFileSync(path.join(folder, checkpointFileName(NAME, step === 3000 ? undefined : step)), body);
  }
  const t0 = Date.now() - 6000 * 1000;
  for (let i = 0; i < 12; i++) {
    for (let p = 0; p < 4; p++) {
      const jpeg = await sharp({ create: { width: 384, height: 384, channels: 3, background: { r: 20 * i, g: 40 * p, b: 90 }, noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).jpeg().toBuffer();
      writeFileSync(path.join(folder, 'samples', sampleFileName({ epochMs: t0 + i * 500_000 + p, step: (i + 1) * 250, promptIndex: p, ext: 'jpg' })), jpeg);
    }
  }
  await lossLog(path.join(folder, 'loss_log.db'), 3000);
  return folder;
}

/** The CLI reports its own CPU seconds on stderr as it exits (the parent cannot read a finished child's). */
const CPU_REPORT = `data:text/javascript,process.on('exit',()=>{const u=process.cpuUsage();process.stderr.write('\\nbench-cpu-seconds '+(u.user+u.system)/1e6+'\\n')})`;

interface Timed {
  seconds: number;
  cliCpu: number;
  serverCpu: number;
  /** PostgreSQL's backends serving the server's database (null on PGlite, which runs inside the server). */
  databaseCpu: number | null;
}

/** `npm run loralab -- …` as a person runs it (compiled): its wall time, its CPU and the server's meanwhile. */
async function loralab(server: ServerProcess, key: string, args: string[]): Promise<Timed> {
  const databaseCpu = (await server.databaseCpu?.()) ?? null;
  const started = performance.now();
  const serverCpu = server.cpuSeconds();
  const timed = await new Promise<Omit<Timed, 'databaseCpu'>>((resolve, reject) => {
    // BENCH_CLI_NODE_ARGS profiles the CLI, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const nodeArgs = process.env.BENCH_CLI_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
    const child = spawn(process.execPath, [...nodeArgs, '--import', CPU_REPORT, path.join(ROOT, 'scripts/run.js'), path.join(ROOT, 'cli/loralab.ts'), '--server', server.url, '--token', key, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const cliCpu = Number(/bench-cpu-seconds ([\d.]+)/.exec(stderr)?.[1] ?? NaN);
      if (code === 0) resolve({ seconds, cliCpu, serverCpu: server.cpuSeconds() - serverCpu });
      else reject(new Error(`loralab ${args.join(' ')} exited ${code}: ${stderr}`));
    });
  });
  return { ...timed, databaseCpu: databaseCpu === null ? null : (await server.databaseCpu!()) - databaseCpu };
}

/** One sha256 pass over every file of the folder, read as the CLI reads them: the least an import must do on top of moving the bytes. */
async function hashPass(folder: string): Promise<number> {
  const started = performance.now();
  for (const entry of readdirSync(folder, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path.join(entry.parentPath, entry.name), { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
    hash.digest();
  }
  return (performance.now() - started) / 1000;
}

/**
 * The bare server of the floor: PUT /?f=<name>&offset=<n> writes the body at that offset of file
 * <name> in its folder, POST fsyncs every file and the folder. Its own process, as loralab's is.
 */
const BARE_SERVER = `
const http = require('node:http'), fs = require('node:fs'), path = require('node:path'), { pipeline } = require('node:stream/promises');
const [dir, port] = process.argv.slice(1);
http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'POST') {
    for (const name of fs.readdirSync(dir)) { const fd = fs.openSync(path.join(dir, name), 'r'); fs.fsyncSync(fd); fs.closeSync(fd); }
    const fd = fs.openSync(dir, 'r'); fs.fsyncSync(fd); fs.closeSync(fd);
    return res.end();
  }
  const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT;
  await pipeline(req, fs.createWriteStream(path.join(dir, path.basename(url.searchParams.get('f'))), { flags, start: Number(url.searchParams.get('offset')), highWaterMark: 1 << 20 }));
  res.setHeader('ETag', '"x"').end();
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\\n'));
`;

/** As loralab's store cuts files (ARTIFACT_PART_SIZE_MIB's default) and as the CLI sends them: files and parts at once. */
const FLOOR_PART = 64 * MB;
const FLOOR_FILES_AT_ONCE = 6;
const FLOOR_PARTS_AT_ONCE = 4;

function bareRequest(port: number, method: string, target: string, body?: Buffer) {
  return new Promise<void>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers: { 'content-length': String(body?.length ?? 0) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`bare server: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The least a verified import over HTTP can take here: every file read once and hashed once on the
 * client (its sha256 must be declared before it is sent), its parts PUT to the bare server, six
 * files and four parts at once as the CLI does, and one fsync of everything at the end. Without
 * `hash`, the bytes alone: what any upload over HTTP takes here, whoever hashes them.
 */
async function floorUpload(folder: string, target: string, hash = true): Promise<number> {
  mkdirSync(target, { recursive: true });
  const port = await freePort();
  const child = spawn(process.execPath, ['-e', BARE_SERVER, target, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await once(child.stdout!, 'data');
    const started = performance.now();
    const files = readdirSync(folder, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    let next = 0;
    await Promise.all(
      Array.from({ length: FLOOR_FILES_AT_ONCE }, async () => {
        for (let i = next++; i < files.length; i = next++) {
          const entry = files[i]!;
          const bytes = await readFile(path.join(entry.parentPath, entry.name));
          if (hash) createHash('sha256').update(bytes).digest('hex');
          const offsets = Array.from({ length: Math.max(1, Math.ceil(bytes.length / FLOOR_PART)) }, (_, p) => p * FLOOR_PART);
          await Promise.all(
            Array.from({ length: FLOOR_PARTS_AT_ONCE }, async () => {
              for (let offset = offsets.shift(); offset !== undefined; offset = offsets.shift()) {
                await bareRequest(port, 'PUT', `/?f=${i}&offset=${offset}`, bytes.subarray(offset, offset + FLOOR_PART));
              }
            }),
          );
        }
      }),
    );
    await bareRequest(port, 'POST', '/');
    return (performance.now() - started) / 1000;
  } finally {
    child.kill();
    rmSync(target, { recursive: true, force: true });
  }
}

/** Fresh jobs of 50,000 loss points each (a name each, so each import is a new run), imported one after the other: the median. */
const LOSS_RUNS = 3;

async function measureLoss(server: ServerProcess, key: string, lossFolders: string[]) {
  const runs: Timed[] = [];
  for (const lossFolder of lossFolders) runs.push(await loralab(server, key, ['import', '--no-upload', lossFolder]));
  return runs.sort((a, b) => a.seconds - b.seconds)[Math.floor(runs.length / 2)]!;
}

async function measure(server: ServerProcess, folder: string | null, lossFolders: string[]) {
  const key = await createKey(server.url, server.adminKey, 'EDITOR');
  // The first call compiles the CLI when it is stale; not part of the figures.
  await loralab(server, key, ['--help']).catch(() => 0);
  const start = await loralab(server, key, ['--help']);
  const load = loadavg()[0]!;
  if (!folder) return { load, start, loss: await measureLoss(server, key, lossFolders), files: null };
  const copyTarget = path.join(path.dirname(folder), 'copy');
  // The copy's sync must flush the copy alone: the run's own files, just written, are flushed
  // first (on the first target they made its copy look 0.8 s slower than on the next).
  spawnSync('sync');
  const copyStarted = performance.now();
  spawnSync('cp', ['-r', folder, copyTarget]);
  spawnSync('sync');
  const copySeconds = (performance.now() - copyStarted) / 1000;
  rmSync(copyTarget, { recursive: true, force: true });
  const hashSeconds = await hashPass(folder);
  spawnSync('sync');
  const floorSeconds = await floorUpload(folder, path.join(path.dirname(folder), 'floor'));
  spawnSync('sync');
  const bytesAloneSeconds = await floorUpload(folder, path.join(path.dirname(folder), 'floor'), false);
  spawnSync('sync');
  const imported = await loralab(server, key, ['import', folder]);
  const again = await loralab(server, key, ['import', folder]);
  const loss = lossFolders.length ? await measureLoss(server, key, lossFolders) : null;
  return { load, start, loss, files: { copySeconds, hashSeconds, floorSeconds, bytesAloneSeconds, imported, again } };
}

const cpu = (t: Timed) => `CPU: CLI ${t.cliCpu.toFixed(2)} s, server ${t.serverCpu.toFixed(2)} s${t.databaseCpu === null ? '' : `, PostgreSQL ${t.databaseCpu.toFixed(2)} s`}`;

/**
 * `bench/import.ts loss` measures the loss points alone, `bench/import.ts files` the folder import
 * alone (each on PGlite and PostgreSQL): the quick loops while working on one of them.
 */
export async function run(only: 'loss' | 'files' | null = null) {
  const dir = mkdtempSync(path.join(tmpdir(), 'loralab-bench-import-'));
  try {
    const folder = only === 'loss' ? null : await makeRun(dir);
    const lossFolders: string[] = [];
    for (let i = 1; i <= (only === 'files' ? 0 : LOSS_RUNS); i++) {
      const name = `${NAME}_loss_${i}`;
      const lossFolder = path.join(dir, 'loss-only', name);
      mkdirSync(lossFolder, { recursive: true });
      writeFileSync(path.join(lossFolder, 'config.yaml'), config(50_001, name));
      await lossLog(path.join(lossFolder, 'loss_log.db'), 50_001);
      lossFolders.push(lossFolder);
    }
    const bytes = 12 * 20 * MB;

    if (lossFolders.length) {
      const readStarted = performance.now();
      const points = (await readLossLog(path.join(lossFolders[0]!, 'loss_log.db'))).length;
      const readSeconds = (performance.now() - readStarted) / 1000;
      table(`reading loss_log.db (sql.js)`, [['points per second', `${Math.round(points / readSeconds).toLocaleString('en')} (${points.toLocaleString('en')} points in ${readSeconds.toFixed(2)} s; goal 50,000/s)`]]);
    }

    const targets: { label: string; start: () => Promise<{ server: ServerProcess; cleanup: () => Promise<void> }> }[] = [
      { label: 'PGlite', start: async () => ({ server: await startServerProcess(), cleanup: async () => {} }) },
      {
        label: 'PostgreSQL',
        start: async () => {
          const db = await freshPostgres();
          const server: ServerProcess = await startServerProcess({ databaseUrl: db.url, env: { DATA_DIR: path.join(dir, 'pgdata') } });
          const observer = connectPostgres(db.url, { max: 1, onnotice: () => {} });
          server.databaseCpu = () => databaseCpuSeconds(observer, db.name);
          return {
            server,
            cleanup: async () => {
              await observer.end();
              await db.drop();
            },
          };
        },
      },
    ];
    for (const target of targets) {
      let started;
      try {
        started = await target.start();
      } catch (err) {
        console.log(`\n(${target.label}: not measured: ${(err as Error).message})`);
        continue;
      }
      try {
        const m = await measure(started.server, folder, lossFolders);
        const per = (t: Timed) => `${t.seconds.toFixed(2)} s (${cpu(t)})`;
        const loadRow: [string, string] = ['machine load (1 min, 2 cores shared)', m.load.toFixed(1)];
        const lossRows: [string, string][] = !m.loss ? [] : [
          [`50,000 loss points from loss_log.db, imported end to end (median of ${LOSS_RUNS} new runs)`, `${per(m.loss)}: ${Math.round(50_000 / m.loss.seconds).toLocaleString('en')} points/s (goal 50,000/s)`],
          ['  the same without the CLI starting', `${Math.round(50_000 / Math.max(0.01, m.loss.seconds - m.start.seconds)).toLocaleString('en')} points/s`],
        ];
        const startRow: [string, string] = ['the CLI starting (loralab --help)', `${m.start.seconds.toFixed(2)} s`];
        if (!m.files) {
          table(`loss points (${target.label})`, [loadRow, ...lossRows, startRow]);
          continue;
        }
        const f = m.files;
        table(`import of a 3,000-step run: 12 checkpoints of 20 MB, 48 samples, 2,999 loss points (${target.label}, embedded store)`, [
          loadRow,
          ['raw copy (cp -r, then sync)', `${f.copySeconds.toFixed(2)} s (${(bytes / MB / f.copySeconds).toFixed(0)} MB/s)`],
          ['loralab import (read, hash, record, upload, verify)', `${per(f.imported)}, ${(bytes / MB / f.imported.seconds).toFixed(0)} MB/s`],
          ['ratio, copy time ÷ import time', `${(f.copySeconds / f.imported.seconds).toFixed(2)}× (goal ≥ 0.5×)`],
          ['floor: hash once on the client, PUT to a bare Node server, fsync', `${f.floorSeconds.toFixed(2)} s (copy ÷ it: ${(f.copySeconds / f.floorSeconds).toFixed(2)}×): the least any verified HTTP import takes here`],
          ['ratio, floor time ÷ import time', `${(f.floorSeconds / f.imported.seconds).toFixed(2)}×`],
          [
            'the bytes alone: PUT to the bare server, no hash anywhere, fsync',
            `${f.bytesAloneSeconds.toFixed(2)} s (copy ÷ it: ${(f.copySeconds / f.bytesAloneSeconds).toFixed(2)}×): what any upload over HTTP takes here, whoever hashes`,
          ],
          ['one sha256 pass over the same files, alone', `${f.hashSeconds.toFixed(2)} s (the store hashes them again to verify)`],
          ['importing it again (hashes and declares, sends nothing)', per(f.again)],
          ...lossRows,
          startRow,
        ]);
      } finally {
        await started.server.stop();
        await started.cleanup();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url) && process.argv[2] === 'make') console.log(await makeRun(process.argv[3]!));
else if (isMain(import.meta.url)) await run(process.argv[2] === 'loss' || process.argv[2] === 'files' ? process.argv[2] : null);
