// The agent's loop: register, replay what an earlier process left unsent, then claim runs (long
// poll) while a slot and a GPU are free, running each in its own RunAttempt. The first stop request
// ends claiming and lets running runs finish; the second cancels them.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApiClient, ApiError, backoffMs, isRetryable, pause, withRetry, type Assignment } from './api-client.js';
import type { AgentConfig } from './config.js';
import { DatasetCache } from './dataset-cache.js';
import { describeGpus, GpuMonitor, probeGpus, type Gpu } from './gpu.js';
import { createLog, type AgentLog } from './log.js';
import { Heartbeater, replaySpool } from './reporter.js';
import { PID_FILE, RunAttempt, type RunResult } from './runner.js';
import { findPendingSpools, Spool, SPOOL_FILE } from './spool.js';
import { hasPendingUploads, Transfers, UPLOAD_JOURNAL, UploadQueue } from './uploads.js';
import { startMetricsServer } from './metrics.js';

export const AGENT_VERSION = '0.1.0';

export interface AgentOptions {
  log?: AgentLog;
  /** The trainer's base environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** nvidia-smi to probe with (tests point it at a stand-in). */
  nvidiaSmi?: string;
  /** Longest pause between tries while the server is away (default 5 s). */
  maxRetryDelayMs?: number;
  watcherPollMs?: number;
  /** Hears every finished attempt (tests, benchmarks). */
  onRunFinished?: (result: RunResult) => void;
}

export interface AgentHandle {
  /** Resolves with the exit code once the agent has stopped. */
  done: Promise<number>;
  /** First call: claim nothing more and let running runs finish. Second call: cancel them. */
  stop(): void;
  /** The agent's id once registered. */
  readonly agentId: string | null;
  readonly running: ReadonlyMap<string, RunAttempt>;
}

export class AgentStartError extends Error {}

export function startAgent(config: AgentConfig, options: AgentOptions = {}): AgentHandle {
  const agent = new Agent(config, options);
  return {
    done: agent.main(),
    stop: () => agent.stop(),
    get agentId() {
      return agent.agentId;
    },
    get running() {
      return agent.running;
    },
  };
}

class Agent {
  agentId: string | null = null;
  readonly running = new Map<string, RunAttempt>();
  private readonly log: AgentLog;
  private readonly api: ApiClient;
  private readonly gpuMonitor: GpuMonitor;
  private gpus: Gpu[] = [];
  private readonly busyGpus = new Set<number>();
  private stopRequests = 0;
  private exitCode = 0;
  private readonly stopController = new AbortController();
  private claimController: AbortController | null = null;
  private slotFreed: (() => void) | null = null;
  private readonly runs = new Set<Promise<void>>();
  /** At most two files move at once, whichever runs they belong to. */
  private readonly transfers = new Transfers(2);
  private readonly cache: DatasetCache;

  constructor(
    private readonly config: AgentConfig,
    private readonly options: AgentOptions,
  ) {
    this.log = options.log ?? createLog();
    this.api = new ApiClient({ server: config.server, token: config.token, userAgent: `loralab-agent/${AGENT_VERSION}` });
    this.gpuMonitor = new GpuMonitor(options.nvidiaSmi);
    this.cache = new DatasetCache(path.join(config.workDir, 'cache'), config.cacheSizeBytes, (line) => this.log.info(line));
  }

  stop(): void {
    this.stopRequests++;
    if (this.stopRequests === 1) {
      this.stopController.abort();
      this.claimController?.abort();
      this.slotFreed?.();
      if (this.running.size > 0) {
        this.log.info(`stopping: claiming no more runs; waiting for ${this.running.size} running run(s) to finish (stop again to cancel them)`);
        if (this.agentId) this.api.setDraining(this.agentId, true).catch(() => {});
      } else {
        this.log.info('stopping');
      }
    } else if (this.stopRequests === 2 && this.running.size > 0) {
      this.log.info(`cancelling ${this.running.size} running run(s)`);
      for (const run of this.running.values()) run.cancel('the agent is shutting down');
    }
  }

  private get stopping(): boolean {
    return this.stopRequests > 0;
  }

  async main(): Promise<number> {
    let metrics: Awaited<ReturnType<typeof startMetricsServer>> | null = null;
    try {
      metrics = await this.startMetrics();
      this.gpus = await this.resolveGpus();
      const c = this.config;
      this.log.info(
        `loralab agent ${c.name} ${AGENT_VERSION}: server ${c.server}, work folder ${c.workDir}, ` +
          `trainer ${c.fakeTrainer ? 'fake (bundled)' : `${c.trainerCommand!.join(' ')} in ${c.aiToolkit}`}, ` +
          `GPUs ${describeGpus(this.gpus)}, ${c.concurrency} run(s) at once`,
      );
      this.checkTrainer();
      const agentId = await this.register();
      if (agentId === null) return this.stopping ? 0 : 1;
      this.agentId = agentId;
      await this.recoverPreviousRuns();
      if (!this.stopping) {
        this.log.info('waiting for runs');
        await this.claimLoop(agentId);
      }
      await Promise.all([...this.runs]);
      this.log.info('stopped');
      return this.exitCode;
    } catch (err) {
      if (err instanceof AgentStartError) {
        this.log.warn(err.message);
        return 2;
      }
      this.log.warn(`the agent failed: ${(err as Error).stack ?? String(err)}`);
      await Promise.all([...this.runs]);
      return 1;
    } finally {
      await metrics?.close();
      this.log.close();
    }
  }

  private async startMetrics() {
    const port = this.config.metricsPort;
    if (port === null) return null;
    try {
      const server = await startMetricsServer(port);
      this.log.info(`metrics on port ${server.port} at /metrics`);
      return server;
    } catch (err) {
      throw new AgentStartError(`--metrics-port ${port}: ${(err as Error).message}`);
    }
  }

  private async resolveGpus(): Promise<Gpu[]> {
    let gpus = this.config.gpus;
    if (gpus === null) {
      try {
        gpus = await probeGpus(this.options.nvidiaSmi);
      } catch (err) {
        throw new AgentStartError((err as Error).message);
      }
    }
    if (this.config.concurrency > gpus.length) {
      throw new AgentStartError(`--concurrency ${this.config.concurrency} needs ${this.config.concurrency} GPUs; this machine has ${gpus.length}`);
    }
    return gpus;
  }

  private checkTrainer(): void {
    const c = this.config;
    if (c.fakeTrainer) return;
    if (!existsSync(c.aiToolkit!)) throw new AgentStartError(`--ai-toolkit ${c.aiToolkit} does not exist`);
    // The default command runs run.py from the ai-toolkit folder: it has to be there.
    const script = c.trainerCommand!.find((a) => a.endsWith('.py'));
    if (script && !path.isAbsolute(script) && !existsSync(path.join(c.aiToolkit!, script))) {
      throw new AgentStartError(`--ai-toolkit ${c.aiToolkit} has no ${script}: is it an ai-toolkit checkout?`);
    }
  }

  /** Registers (again: same key and name is the same agent), waiting for the server if it is away. */
  private async register(): Promise<string | null> {
    const c = this.config;
    let told = false;
    try {
      const agent = await withRetry(
        () =>
          this.api.registerAgent(
            { name: c.name, hostname: os.hostname(), gpus: this.gpus, labels: c.labels, hourlyCostUsd: c.hourlyCostUsd, version: AGENT_VERSION },
            this.stopController.signal,
          ),
        {
          signal: this.stopController.signal,
          maxDelayMs: this.options.maxRetryDelayMs,
          onRetry: (err) => {
            if (!told) this.log.info(`waiting for the server: ${err.message}`);
            told = true;
          },
        },
      );
      this.log.info(`registered as agent ${agent.id} (${agent.name})`);
      return agent.id;
    } catch (err) {
      if (this.stopping) return null;
      this.log.warn(`could not register with ${c.server}: ${(err as Error).message}`);
      return null;
    }
  }

  /**
   * Before claiming: trainers an earlier agent process left running (killed with it, they are no
   * longer watched by anyone) are stopped, and reports it could not send are sent now.
   */
  private async recoverPreviousRuns(): Promise<void> {
    for (const pidFile of attemptFiles(this.config.workDir, PID_FILE)) {
      try {
        const { pid, configPath } = JSON.parse(readFileSync(pidFile, 'utf8')) as { pid: number; configPath: string };
        // Only a process that is still that trainer (same config on its command line) is killed.
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (cmdline.split('\0').includes(configPath)) {
          process.kill(-pid, 'SIGKILL');
          this.log.info(`stopped trainer ${pid} left by an earlier agent process (${configPath})`);
        }
      } catch {
        // Gone already, or not ours.
      }
      await rm(pidFile, { force: true });
    }
    const spools = new Set(findPendingSpools(this.config.workDir));
    for (const journal of attemptFiles(this.config.workDir, UPLOAD_JOURNAL).filter(hasPendingUploads)) spools.add(path.join(path.dirname(journal), SPOOL_FILE));
    for (const file of [...spools].sort()) {
      if (this.stopping) return;
      await this.recoverAttempt(file);
    }
  }

  /**
   * An attempt an earlier agent process left unfinished: its files still to upload (each resumed
   * from what the store has) and its unsent reports, the completion last, with heartbeats meanwhile
   * so the lease holds while a large checkpoint goes up.
   */
  private async recoverAttempt(spoolFile: string): Promise<void> {
    let header;
    try {
      const spool = Spool.open(spoolFile);
      header = spool.header;
      spool.close();
    } catch {
      return;
    }
    const journal = path.join(path.dirname(spoolFile), UPLOAD_JOURNAL);
    const log = (line: string) => this.log.info(line);
    const uploads = existsSync(journal)
      ? new UploadQueue({ api: this.api, runId: header.runId, leaseToken: header.leaseToken, journal, transfers: this.transfers, log, maxDelayMs: this.options.maxRetryDelayMs })
      : null;
    const heartbeater = new Heartbeater({
      api: this.api,
      runId: header.runId,
      leaseToken: header.leaseToken,
      intervalMs: (this.config.heartbeatSeconds ?? 10) * 1000,
      progress: async () => null,
      onCancel: () => {},
      onLeaseLost: () => uploads?.stop(),
      log,
    });
    heartbeater.start();
    const onStop = () => uploads?.stop();
    this.stopController.signal.addEventListener('abort', onStop, { once: true });
    try {
      await replaySpool(this.api, spoolFile, log, this.stopController.signal, {
        beforeComplete: async () => uploads?.idle(),
        onLeaseLost: () => uploads?.stop(),
        maxDelayMs: this.options.maxRetryDelayMs,
      });
      await uploads?.idle();
    } finally {
      this.stopController.signal.removeEventListener('abort', onStop);
      heartbeater.stop();
      uploads?.close();
    }
  }

  private async claimLoop(agentId: string): Promise<void> {
    let failures = 0;
    let waitingTold = false;
    while (!this.stopping) {
      if (this.running.size >= this.config.concurrency || this.freeGpus().length === 0) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        this.slotFreed = null;
        continue;
      }
      const controller = new AbortController();
      this.claimController = controller;
      let assignment: Assignment | null;
      try {
        assignment = await this.api.claimRun(agentId, this.config.claimWaitSeconds, controller.signal);
        if (waitingTold) this.log.info('the server answers again');
        failures = 0;
        waitingTold = false;
      } catch (err) {
        if (this.stopping) break;
        if (isRetryable(err)) {
          if (!waitingTold) this.log.info(`cannot claim: ${(err as Error).message}; retrying`);
          waitingTold = true;
          await pause(backoffMs(failures++, 250, this.options.maxRetryDelayMs ?? 5000), this.stopController.signal);
          continue;
        }
        const code = err instanceof ApiError ? err.code : undefined;
        if (code === 'UNAUTHENTICATED' || code === 'FORBIDDEN') {
          this.log.warn(`the server refuses this agent's key (${(err as Error).message}); claiming no more runs`);
          this.exitCode = 1;
          break;
        }
        if (code === 'NOT_FOUND') {
          // The agent's record is gone (a fresh database): register again.
          const id = await this.register();
          if (id === null) break;
          agentId = this.agentId = id;
          continue;
        }
        this.log.warn(`claiming failed: ${(err as Error).message}`);
        await pause(backoffMs(failures++, 1000, 30_000), this.stopController.signal);
        continue;
      } finally {
        this.claimController = null;
      }
      if (assignment) this.launch(assignment);
    }
  }

  private freeGpus(): Gpu[] {
    return this.gpus.filter((g) => !this.busyGpus.has(g.index));
  }

  private launch(assignment: Assignment): void {
    const wanted = Math.max(1, assignment.run.requirements.gpuCount);
    // The server hands out a run only when this agent has that many GPUs free, as it counts them.
    const gpus = this.freeGpus().slice(0, wanted);
    for (const g of gpus) this.busyGpus.add(g.index);
    const attempt = new RunAttempt({
      api: this.api,
      config: this.config,
      log: this.log,
      gpuMonitor: this.gpuMonitor,
      assignment,
      gpus,
      env: this.options.env,
      maxRetryDelayMs: this.options.maxRetryDelayMs,
      watcherPollMs: this.options.watcherPollMs,
      transfers: this.transfers,
      cache: this.cache,
    });
    this.running.set(attempt.runId, attempt);
    // A stop that came while this claim was being answered: the run still goes through; a second
    // stop cancels it like the others.
    const job = attempt.run().then(
      (result) => this.options.onRunFinished?.(result),
      (err: unknown) => this.log.warn(`${attempt.runId}: ${(err as Error).stack ?? String(err)}`),
    );
    const tracked = job.finally(() => {
      this.running.delete(attempt.runId);
      for (const g of gpus) this.busyGpus.delete(g.index);
      this.runs.delete(tracked);
      this.slotFreed?.();
    });
    this.runs.add(tracked);
  }
}

/** The file `name` in each attempt's folder under `<workDir>/runs/<run>/<attempt>/` where it exists. */
function attemptFiles(workDir: string, name: string): string[] {
  const runsDir = path.join(workDir, 'runs');
  if (!existsSync(runsDir)) return [];
  const found: string[] = [];
  for (const run of readdirSync(runsDir, { withFileTypes: true })) {
    if (!run.isDirectory()) continue;
    for (const attempt of readdirSync(path.join(runsDir, run.name), { withFileTypes: true })) {
      const file = path.join(runsDir, run.name, attempt.name, name);
      if (attempt.isDirectory() && existsSync(file)) found.push(file);
    }
  }
  return found;
}
