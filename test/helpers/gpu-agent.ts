// The GPU agent in tests: a dataset folder on disk, an agent in this process or as a child process
// (`node --import tsx agents/cli.ts …`, as `npm run agent` runs it), and waiting for a run's state.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAgent, type AgentHandle } from '../../agents/agent.js';
import { resolveConfig, type AgentConfig } from '../../agents/config.js';
import { silentLog } from '../../agents/log.js';
import type { GqlClient } from './server.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export async function tempFolder(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `loralab-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A dataset folder with a few tiny "images" (any bytes do for the fake trainer) and its createDataset input. */
export async function datasetFolder(dir: string, count = 3) {
  await mkdir(dir, { recursive: true });
  const images = Array.from({ length: count }, (_, i) => ({ fileName: `img${i}.jpg` }));
  for (const image of images) await writeFile(path.join(dir, image.fileName), `fake jpeg ${image.fileName}`);
  return { uri: dir, images };
}

export async function createDatasetAt(client: GqlClient, dir: string, count = 3): Promise<string> {
  const { uri, images } = await datasetFolder(dir, count);
  const data = await client.ok(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }`, {
    input: { name: `photos in ${path.basename(dir)}`, uri, images },
  });
  return data.createDataset.id as string;
}

/** Polls `probe` until it returns something other than undefined/false; fails after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs)); // polling a condition, not moving time
  }
}

export const RUN_STATE = `id status attempt agent { name } error { code message logTail } lossSummary { points lastStep }`;

export async function runState(client: GqlClient, id: string, fields = RUN_STATE) {
  const { run } = await client.ok(`query($id: ID!) { run(id: $id) { ${fields} } }`, { id });
  return run;
}

export function waitForStatus(client: GqlClient, id: string, statuses: string[], timeoutMs = 90_000) {
  return waitFor(
    `run ${id} to be ${statuses.join(' or ')}`,
    async () => {
      const run = await runState(client, id);
      return statuses.includes(run.status) ? run : undefined;
    },
    timeoutMs,
  );
}

/** Every loss point of a run, in step order. */
export async function allLossPoints(client: GqlClient, id: string): Promise<{ step: number; loss: number; lr: number | null }[]> {
  const { run } = await client.ok(`query($id: ID!) { run(id: $id) { lossPoints(first: 10000) { step loss lr } } }`, { id });
  return run.lossPoints;
}

export function agentConfig(flags: Record<string, unknown>): AgentConfig {
  return resolveConfig({ fakeTrainer: true, gpus: '0:Fake GPU:24000', claimWaitSeconds: '2', ...flags }, {});
}

export interface InProcessAgent extends AgentHandle {
  lines: string[];
}

/** An agent in this process; its log lines are kept in `lines`. */
export function agentInProcess(config: AgentConfig, env: NodeJS.ProcessEnv = process.env): InProcessAgent {
  const lines: string[] = [];
  const handle = startAgent(config, { log: silentLog((l) => lines.push(l)), env, maxRetryDelayMs: 1000, watcherPollMs: 250 });
  return Object.assign(handle, { lines });
}

export interface AgentProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();

/** `npm run agent -- <args>` as a child process (node --import tsx, so signals reach it directly). */
export function agentProcess(args: string[], env: Record<string, string> = {}, entry = 'agents/cli.ts'): AgentProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, output: () => output, exited };
}

/** SIGKILLs agent processes a failed test left behind. */
export function killAgentProcesses() {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
}

/** The trainer an agent started for a run attempt, from its pid file (null once it has exited). */
export function trainerPid(workDir: string, runId: string, attempt = 1): number | null {
  const file = path.join(workDir, 'runs', runId, `attempt-${attempt}`, 'trainer.pid');
  if (!existsSync(file)) return null;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { pid: number }).pid;
  } catch {
    return null; // being written
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
