// Shared by the agent tests: where the reference data lives, temp folders, and running the fake
// trainer as a real child process (argument array, no shell), parsed as the agent will parse it.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseDocument } from 'yaml';
import { TrainerOutputParser, type TrainerEvent } from '../../agents/parse.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '../..');
const repoRoot = REPO_ROOT;

// A recorded transcript of ai-toolkit (fixtures/ai-toolkit/SOURCE.md), so the tests need nothing
// outside the repository.
export const REFERENCE_DIR = path.join(here, 'fixtures/ai-toolkit');
export const REFERENCE_TRANSCRIPT = path.join(REFERENCE_DIR, 'stdout-sample.txt');
export const REFERENCE_CONFIG = path.join(here, 'fixtures/reference-config.yaml');
export const FAKE_TRAINER = path.join(repoRoot, 'agents/fake-trainer.ts');
// `node --import tsx` runs the fake as one process, so signals reach it directly (the tsx CLI
// would put a second process in between).
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `loralab-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The reference scenario's YAML with some keys changed (paths into config.process[0]). */
export function referenceConfig(changes: [(string | number)[], unknown][] = []): string {
  const doc = parseDocument(readFileSync(REFERENCE_CONFIG, 'utf8'));
  for (const [keyPath, value] of changes) doc.setIn(['config', 'process', 0, ...keyPath], value);
  return doc.toString({ lineWidth: 0 });
}

export async function writeReferenceConfig(dir: string, changes: [(string | number)[], unknown][] = []): Promise<string> {
  const file = path.join(dir, 'config.yaml');
  await writeFile(file, referenceConfig(changes));
  return file;
}

export interface TrainerRun {
  child: ChildProcess;
  /** Every event so far, in order. */
  events: TrainerEvent[];
  parser: TrainerOutputParser;
  stdout: string;
  stderr: string;
  /** Resolves once the process has exited and both pipes are drained. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first event the predicate accepts (already seen or still to come). */
  waitFor: (predicate: (e: TrainerEvent) => boolean) => Promise<TrainerEvent>;
}

const live = new Set<ChildProcess>();

/** SIGKILLs every fake trainer still running, so a failed or timed-out test leaves no process behind. */
export function killStrayTrainers(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

export function startFakeTrainer(configFile: string, opts: { cwd: string; env?: Record<string, string> }): TrainerRun {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, FAKE_TRAINER, configFile], {
    cwd: opts.cwd,
    env: { ...process.env, FAKE_STEP_MS: '0', COLUMNS: '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.on('exit', () => live.delete(child));
  const parser = new TrainerOutputParser();
  const events: TrainerEvent[] = [];
  const waiters: { predicate: (e: TrainerEvent) => boolean; resolve: (e: TrainerEvent) => void }[] = [];
  const run: TrainerRun = { child, events, parser, stdout: '', stderr: '', exited: null!, waitFor: null! };

  const accept = (batch: TrainerEvent[]) => {
    for (const e of batch) {
      events.push(e);
      for (const w of [...waiters]) {
        if (w.predicate(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    }
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    run.stdout += chunk.toString('utf8');
    accept(parser.push(chunk, 'stdout'));
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    run.stderr += chunk.toString('utf8');
    accept(parser.push(chunk, 'stderr'));
  });
  run.exited = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      accept(parser.end());
      for (const w of waiters.splice(0)) w.resolve({ type: 'error', message: `<exited before the awaited event>` });
      resolve({ code, signal });
    });
  });
  run.waitFor = (predicate) => {
    const seen = events.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => waiters.push({ predicate, resolve }));
  };
  return run;
}

export async function runFakeTrainer(configFile: string, opts: { cwd: string; env?: Record<string, string> }) {
  const run = startFakeTrainer(configFile, opts);
  const { code, signal } = await run.exited;
  return { ...run, code, signal };
}

/** Runs the fake with stdout and stderr on one file descriptor (`2>&1`), as the reference was captured. */
export async function runFakeTrainerMerged(
  configFile: string,
  opts: { cwd: string; env?: Record<string, string>; outputFile: string },
): Promise<{ code: number | null; output: Buffer }> {
  const fd = openSync(opts.outputFile, 'w');
  try {
    const child = spawn(process.execPath, ['--import', TSX_LOADER, FAKE_TRAINER, configFile], {
      cwd: opts.cwd,
      env: { ...process.env, FAKE_STEP_MS: '0', COLUMNS: '', ...opts.env },
      stdio: ['ignore', fd, fd],
    });
    live.add(child);
    child.on('exit', () => live.delete(child));
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    return { code, output: readFileSync(opts.outputFile) };
  } finally {
    closeSync(fd);
  }
}

export function ofType<T extends TrainerEvent['type']>(events: TrainerEvent[], type: T): Extract<TrainerEvent, { type: T }>[] {
  return events.filter((e): e is Extract<TrainerEvent, { type: T }> => e.type === type);
}
