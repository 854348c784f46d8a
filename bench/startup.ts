// Startup: how long a restart of the server takes to answer its first /healthz, compiled (what
// `npm start` and the Docker image run) and through tsx (the sources), beside the floor: PGlite
// alone opening the same DATA_DIR and answering one query. Goal: compiled ≤ 2× PGlite alone.
//
// The three kinds of start take turns in every round (in a rotating order), so a machine that
// gets busier or quieter during the bench shifts all three alike; the ratios are of medians.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build, ensureBuilt } from '../scripts/build.js';
import { freePort, isMain, percentile, processCpuSeconds, processRssMb, table } from './lib.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const ROUNDS = Number(process.env.BENCH_STARTUP_ROUNDS ?? 5);
const POLL_MS = 10;

// What "PGlite alone" does: nothing but open the folder and answer one query.
const PGLITE_ALONE = `
import { PGlite } from '@electric-sql/pglite';
const db = await PGlite.create(process.argv[1]);
await db.query('select 1');
process.stdout.write('ready\\n');
await db.close();
`;

interface Start {
  ms: number;
  /** CPU seconds the process had used when it was ready (all its threads). */
  cpu: number;
  /** Its resident memory when it was ready, in MB. */
  rssMb: number;
}

const serverCommands = {
  compiled: ['scripts/run.js', 'src/index.ts'],
  tsx: ['--import', 'tsx', 'src/index.ts'],
};

/** Spawns the server on dataDir and times it to the first /healthz 200; then stops it with SIGTERM. */
async function serverStart(kind: keyof typeof serverCommands, dataDir: string): Promise<Start> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, serverCommands[kind], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production', LOG_LEVEL: 'warn', PORT: String(port), DATA_DIR: dataDir, DATABASE_URL: '' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the ${kind} server exited with ${child.exitCode}`);
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return { ms: performance.now() - started, cpu: processCpuSeconds(child.pid!), rssMb: processRssMb(child.pid!) };
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

async function pgliteAlone(pgdata: string): Promise<Start> {
  const started = performance.now();
  const child = spawn(process.execPath, ['--input-type=module', '-e', PGLITE_ALONE, pgdata], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const result = await new Promise<Start>((resolve, reject) => {
    child.stdout!.once('data', () => resolve({ ms: performance.now() - started, cpu: processCpuSeconds(child.pid!), rssMb: processRssMb(child.pid!) }));
    child.once('exit', (code) => reject(new Error(`PGlite alone exited with ${code}`)));
  });
  await exited;
  return result;
}

const median = (values: number[]) => percentile(values, 50);
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export async function run() {
  // Compiling happens once per change of the sources, not on a restart: time it apart.
  const compileStarted = performance.now();
  await build('src/index.ts');
  const compileMs = performance.now() - compileStarted;
  await ensureBuilt('src/index.ts');

  const dataDir = mkdtempSync(path.join(tmpdir(), 'loralab-bench-startup-'));
  try {
    // The first start creates the database (initdb and migrations): every later one is a restart.
    const first = await serverStart('compiled', dataDir);
    const kinds = ['pglite', 'compiled', 'tsx'] as const;
    const starts: Record<(typeof kinds)[number], Start[]> = { pglite: [], compiled: [], tsx: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < kinds.length; i++) {
        const kind = kinds[(round + i) % kinds.length]!;
        starts[kind].push(kind === 'pglite' ? await pgliteAlone(path.join(dataDir, 'pgdata')) : await serverStart(kind, dataDir));
      }
    }
    const wall = (kind: (typeof kinds)[number]) => median(starts[kind].map((s) => s.ms));
    const cpu = (kind: (typeof kinds)[number]) => median(starts[kind].map((s) => s.cpu));
    table(`Startup to the first /healthz 200 on a PGlite DATA_DIR (median of ${ROUNDS} restarts each)`, [
      ['compile src/index.ts (once per change)', seconds(compileMs)],
      // The database is made in a worker thread whose memory goes with it (src/db/client.ts): made in
      // the server's own thread, initdb left the first start holding about twice a restart's memory.
      ['first start (creates the database)', `${seconds(first.ms)}   (memory when ready ${first.rssMb.toFixed(0)} MB; a restart's ${median(starts.compiled.map((s) => s.rssMb)).toFixed(0)} MB)`],
      ['PGlite alone: open the folder, one query', `${seconds(wall('pglite'))}   (cpu ${cpu('pglite').toFixed(2)} s)`],
      ['restart, compiled (npm start)', `${seconds(wall('compiled'))}   (cpu ${cpu('compiled').toFixed(2)} s)`],
      ['restart, tsx (the sources)', `${seconds(wall('tsx'))}   (cpu ${cpu('tsx').toFixed(2)} s)`],
      ['compiled / PGlite alone', `${(wall('compiled') / wall('pglite')).toFixed(2)}×   (goal ≤ 2×; cpu ${(cpu('compiled') / cpu('pglite')).toFixed(2)}×)`],
      ['tsx / PGlite alone', `${(wall('tsx') / wall('pglite')).toFixed(2)}×`],
      ['tsx / compiled', `${(wall('tsx') / wall('compiled')).toFixed(2)}×`],
    ]);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) await run();
