// Issue 16, resuming on another agent: the time from an agent claiming a requeued run that has a
// stored 200 MB checkpoint (and its optimizer state) to the trainer's first step after the resume,
// against a raw download of the same checkpoint bytes from the same store (goal: raw / resume ≥ 0.8).
// The same agent's claim → first step for a run from scratch is shown too: what any attempt costs
// (staging, starting the trainer) before a resume adds its download.
import { mkdtempSync, rmSync, createWriteStream } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { startAgent, type AgentHandle } from '../agents/agent.js';
import { resolveConfig } from '../agents/config.js';
import type { AgentLog } from '../agents/log.js';
import { createKey, gql, isMain, startServerProcess, table, type ServerProcess, fakeTrainerBasics } from './lib.js';

const CHECKPOINT_MIB = Number(process.env.BENCH_RESUME_CHECKPOINT_MIB ?? 200);
const TERMINAL = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

/** An agent whose log records when each run was claimed and when its trainer first reported a step's loss. */
function timedAgent(server: ServerProcess, token: string, workDir: string, name: string) {
  const claimedAt = new Map<string, number>();
  const firstStepAt = new Map<string, number>();
  const lines: string[] = [];
  const log: AgentLog = {
    info: (line) => {
      lines.push(line);
      const claimed = /^run (\w{8}) .*: claimed;/.exec(line);
      if (claimed) claimedAt.set(claimed[1]!, performance.now());
    },
    warn: (line) => lines.push(`WARNING ${line}`),
    // The runner's progress line carries the loss once the trainer has finished a step.
    progress: (key, text) => {
      if (text?.includes(' loss ') && !firstStepAt.has(key.slice(0, 8))) firstStepAt.set(key.slice(0, 8), performance.now());
    },
    close: () => {},
  };
  const config = resolveConfig(
    { server: server.url, token, workDir, name, fakeTrainer: true, gpus: '0:Fake GPU:24000', claimWaitSeconds: '1', heartbeatSeconds: '1', cancelGraceSeconds: '1' },
    {},
  );
  const handle = startAgent(config, { log, maxRetryDelayMs: 1000 });
  return {
    handle,
    lines,
    async claimToFirstStep(runId: string) {
      const key = runId.slice(0, 8);
      const deadline = Date.now() + 300_000;
      while (!firstStepAt.has(key)) {
        if (Date.now() > deadline) throw new Error(`no first step for run ${runId}:\n${lines.join('\n')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return (firstStepAt.get(key)! - claimedAt.get(key)!) / 1000;
    },
  };
}

async function stopAgent(agent: AgentHandle) {
  agent.stop();
  agent.stop();
  await agent.done;
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 600_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const statusOf = async (server: ServerProcess, id: string) =>
  (await gql(server.url, server.adminKey, `query($id: ID!) { run(id: $id) { status } }`, { id })).run.status as string;

/** The baseline: one GET of the URL into a file, no checks. */
async function rawDownload(url: string, file: string) {
  const started = performance.now();
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(url, resolve).on('error', reject));
  await pipeline(res, createWriteStream(file));
  return (performance.now() - started) / 1000;
}

export async function run() {
  const dir = mkdtempSync(path.join(tmpdir(), 'loralab-bench-resume-'));
  const server = await startServerProcess();
  try {
    const agentKey = await createKey(server.url, server.adminKey, 'AGENT');
    const basics = await fakeTrainerBasics(server.url, server.adminKey, dir);
    const queue = async (fake: Record<string, unknown>) =>
      (
        await gql(server.url, server.adminKey, `mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`, {
          i: { ...basics, hyperparameters: { steps: 30, saveEvery: 10, sampleEvery: 1000, extra: { loralab_fake_trainer: { stepMs: 5, ...fake } } } },
        })
      ).queueRun.id as string;

    // Setup: agent A trains a run until its step-10 checkpoint (CHECKPOINT_MIB) and optimizer state
    // are stored, its trainer hanging at step 12; the run is cancelled and queued again.
    const resumable = await queue({ checkpointMiB: CHECKPOINT_MIB, fail: 'hang', atStep: 12, fromScratchOnly: true });
    const a = timedAgent(server, agentKey, path.join(dir, 'work-a'), 'bench-a');
    await waitUntil('the step-10 checkpoint and optimizer state stored', async () => {
      const { run } = await gql(server.url, server.adminKey, `query($id: ID!) { run(id: $id) { artifacts { kind step stored } } }`, { id: resumable });
      const stored = (kind: string) => run.artifacts.some((x: { kind: string; step: number; stored: boolean }) => x.kind === kind && x.step === 10 && x.stored);
      return stored('CHECKPOINT') && stored('OPTIMIZER_STATE');
    });
    await gql(server.url, server.adminKey, `mutation($id: ID!) { cancelRun(id: $id) { id } }`, { id: resumable });
    await waitUntil('the run cancelled', async () => TERMINAL.includes(await statusOf(server, resumable)));
    await stopAgent(a.handle);
    const { run: stored } = await gql(server.url, server.adminKey, `query($id: ID!) { run(id: $id) { artifacts(kind: CHECKPOINT) { step url sizeBytes } } }`, { id: resumable });
    const checkpoint = stored.artifacts.find((x: { step: number }) => x.step === 10);

    // Agent B, with an empty work folder: first a run from scratch (it also warms the trainer's
    // compile cache), then the resumable run, requeued.
    const b = timedAgent(server, agentKey, path.join(dir, 'work-b'), 'bench-b');
    const scratch = await queue({});
    const fromScratch = await b.claimToFirstStep(scratch);
    await waitUntil('the run from scratch finished', async () => TERMINAL.includes(await statusOf(server, scratch)));

    const raw = [await rawDownload(checkpoint.url, path.join(dir, 'raw-1'))];
    await gql(server.url, server.adminKey, `mutation($id: ID!) { retryRun(id: $id) { id } }`, { id: resumable });
    const resumed = await b.claimToFirstStep(resumable);
    raw.push(await rawDownload(checkpoint.url, path.join(dir, 'raw-2')));
    await gql(server.url, server.adminKey, `mutation($id: ID!) { cancelRun(id: $id) { id } }`, { id: resumable }).catch(() => {});
    await stopAgent(b.handle);
    const resumedLine = b.lines.find((l) => l.includes('resuming from step'));

    const rawSeconds = Math.min(...raw);
    const mib = checkpoint.sizeBytes / 1024 / 1024;
    table(`Claim → first step after resuming from a stored ${mib.toFixed(0)} MiB checkpoint, on an agent with an empty work folder (fake trainer, embedded store)`, [
      ['raw download of the checkpoint (best of 2)', `${rawSeconds.toFixed(2)} s (${(mib / rawSeconds).toFixed(0)} MiB/s)`],
      ['claim → first step, resumed', `${resumed.toFixed(2)} s`],
      ['ratio (raw download / resumed; goal ≥ 0.8)', (rawSeconds / resumed).toFixed(2)],
      ['claim → first step, from scratch (same agent)', `${fromScratch.toFixed(2)} s`],
      ['resume cost over a start from scratch', `${(resumed - fromScratch).toFixed(2)} s (ratio raw / that: ${(rawSeconds / Math.max(0.001, resumed - fromScratch)).toFixed(2)})`],
      ['agent', resumedLine?.replace(/^run \w{8} \(.*?\) /, '') ?? '(no resume line)'],
    ]);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) await run();
