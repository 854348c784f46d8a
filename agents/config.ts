// The agent's options: each one a command-line flag and an environment variable (the flag wins),
// checked with zod into one AgentConfig. The agent's only readers of process.env are its entry
// points: cli.ts, which hands the environment in here, and demo.ts, which hands it to bootstrap().
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { parseSize } from './dataset-cache.js';
import { parseGpuOverride, type Gpu } from './gpu.js';

export interface OptionSpec {
  /** Key in the flags object commander produces (camelCase of the flag). */
  key: string;
  flags: string;
  env: string;
  description: string;
  boolean?: boolean;
}

export const OPTIONS: OptionSpec[] = [
  { key: 'server', flags: '--server <url>', env: 'LORALAB_SERVER', description: "the loralab server's base URL, e.g. http://host:4000 (…/graphql is accepted too)" },
  { key: 'token', flags: '--token <key>', env: 'LORALAB_TOKEN', description: 'an AGENT-role API key (createApiKey(role: AGENT))' },
  { key: 'workDir', flags: '--work-dir <dir>', env: 'LORALAB_WORK_DIR', description: 'where runs are staged, trained and spooled (default ./loralab-agent)' },
  { key: 'aiToolkit', flags: '--ai-toolkit <dir>', env: 'LORALAB_AI_TOOLKIT', description: 'the ai-toolkit checkout the trainer runs in (unused with --fake-trainer)' },
  { key: 'name', flags: '--name <name>', env: 'LORALAB_AGENT_NAME', description: "this agent's name (default: the host name); the same key and name is the same agent" },
  { key: 'labels', flags: '--labels <list>', env: 'LORALAB_LABELS', description: 'comma-separated labels runs can require, e.g. eu,fast-disk' },
  { key: 'hourlyCost', flags: '--hourly-cost <usd>', env: 'LORALAB_HOURLY_COST', description: "the machine's cost per hour in USD, for run costs" },
  { key: 'gpus', flags: '--gpus <list>', env: 'LORALAB_GPUS', description: 'GPUs as INDEX:NAME:MEMORY_MB[,…] instead of asking nvidia-smi' },
  { key: 'trainerCommand', flags: '--trainer-command <command>', env: 'LORALAB_TRAINER_COMMAND', description: 'the trainer, run in the ai-toolkit folder with the config path last (default "python run.py"; split on spaces, quotes group, no shell)' },
  { key: 'fakeTrainer', flags: '--fake-trainer', env: 'LORALAB_FAKE_TRAINER', description: 'train with the bundled fake trainer (no GPU needed; FAKE_STEP_MS sets its speed)', boolean: true },
  { key: 'concurrency', flags: '--concurrency <n>', env: 'LORALAB_CONCURRENCY', description: 'runs at once, each on its own GPU(s) (default 1)' },
  { key: 'heartbeatSeconds', flags: '--heartbeat-seconds <s>', env: 'LORALAB_HEARTBEAT_SECONDS', description: 'seconds between heartbeats (default: a third of the lease)' },
  { key: 'cancelGraceSeconds', flags: '--cancel-grace-seconds <s>', env: 'LORALAB_CANCEL_GRACE_SECONDS', description: 'seconds between SIGINT and SIGKILL when a run is cancelled (default 30)' },
  { key: 'claimWaitSeconds', flags: '--claim-wait-seconds <s>', env: 'LORALAB_CLAIM_WAIT_SECONDS', description: 'how long one claim waits for a queued run (long poll, ≤ 60; default 30)' },
  { key: 'cacheSize', flags: '--cache-size <size>', env: 'LORALAB_CACHE_SIZE', description: "how much the cache of stored datasets' files (under the work folder) may hold, e.g. 50GiB (default 20GiB; least recently used files go first)" },
  { key: 'metricsPort', flags: '--metrics-port <port>', env: 'LORALAB_METRICS_PORT', description: 'serve Prometheus metrics at http://<this host>:<port>/metrics (step rate, upload backlog, spool size); off by default' },
  { key: 'hfToken', flags: '--hf-token <token>', env: 'HF_TOKEN', description: "Hugging Face token passed to the trainer as HF_TOKEN (gated models such as FLUX.1-dev)" },
];

export interface AgentConfig {
  /** The base URL as given, without a trailing /graphql. */
  server: string;
  graphqlUrl: string;
  token: string;
  workDir: string;
  aiToolkit: string | null;
  name: string;
  labels: string[];
  hourlyCostUsd: number | null;
  /** From --gpus; null means: ask nvidia-smi. */
  gpus: Gpu[] | null;
  /** The trainer's argv before the config path; null with the fake trainer. */
  trainerCommand: string[] | null;
  fakeTrainer: boolean;
  concurrency: number;
  heartbeatSeconds: number | null;
  cancelGraceSeconds: number;
  claimWaitSeconds: number;
  hfToken: string | null;
  /** Bytes the stored-dataset cache may hold. */
  cacheSizeBytes: number;
  /** Port of the Prometheus endpoint; null: none. */
  metricsPort: number | null;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const DEFAULT_TRAINER_COMMAND = 'python run.py';
const DEFAULT_CACHE_BYTES = 20 * 1024 ** 3;

const text = z.string().trim().min(1);
const blankAsUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const optionalText = z.preprocess(blankAsUndefined, text.optional());
const number = (check: z.ZodNumber) => z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v), check.optional());

const schema = z.object({
  server: text.refine((s) => /^https?:\/\/[^/]/.test(s), 'must be an http:// or https:// URL, e.g. http://localhost:4000'),
  token: text,
  workDir: optionalText,
  aiToolkit: optionalText,
  name: z.preprocess(blankAsUndefined, text.max(100, 'must be at most 100 characters').optional()),
  labels: optionalText,
  hourlyCost: number(z.number().min(0, 'must be 0 or more').max(10_000, 'must be at most 10000')),
  gpus: optionalText,
  trainerCommand: optionalText,
  fakeTrainer: z.boolean(),
  concurrency: number(z.number().int('must be a whole number').min(1, 'must be at least 1').max(64, 'must be at most 64')),
  heartbeatSeconds: number(z.number().positive('must be more than 0').max(3600, 'must be at most 3600')),
  cancelGraceSeconds: number(z.number().min(0, 'must be 0 or more').max(3600, 'must be at most 3600')),
  claimWaitSeconds: number(z.number().int('must be a whole number').min(0, 'must be 0 or more').max(60, 'must be at most 60')),
  metricsPort: number(z.number().int('must be a whole number').min(1, 'must be a port, 1 to 65535').max(65535, 'must be a port, 1 to 65535')),
  hfToken: optionalText,
  cacheSize: optionalText,
});

const FLAG_OF = new Map(OPTIONS.map((o) => [o.key, o.flags.split(' ')[0]!]));

function booleanEnv(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`${name}=${JSON.stringify(value)} must be true or false (1/0, yes/no)`);
}

/**
 * Merges flags (as commander parsed them) over environment variables, validates, and fills defaults.
 * Throws a ConfigError with one readable line naming the flag and its variable.
 */
export function resolveConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): AgentConfig {
  const merged: Record<string, unknown> = {};
  for (const o of OPTIONS) {
    if (o.boolean) merged[o.key] = flags[o.key] === true || (booleanEnv(env[o.env], o.env) ?? false);
    else merged[o.key] = flags[o.key] ?? env[o.env];
  }
  for (const required of ['server', 'token'] as const) {
    const v = merged[required];
    if (v === undefined || (typeof v === 'string' && v.trim() === '')) {
      const spec = OPTIONS.find((o) => o.key === required)!;
      throw new ConfigError(`${FLAG_OF.get(required)} (or ${spec.env}) is required: ${spec.description}`);
    }
  }
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0]);
    const spec = OPTIONS.find((o) => o.key === key);
    const shown = spec ? `${FLAG_OF.get(key)} (${spec.env})` : key;
    const value = merged[key];
    throw new ConfigError(`${shown} ${value === undefined ? '' : `${JSON.stringify(value)} `}${issue.message}`.replace(/\s+/g, ' '));
  }
  const o = parsed.data;

  let gpus: Gpu[] | null = null;
  if (o.gpus !== undefined) {
    try {
      gpus = parseGpuOverride(o.gpus);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
  }

  const aiToolkit = o.aiToolkit !== undefined ? path.resolve(o.aiToolkit) : null;
  if (!o.fakeTrainer && aiToolkit === null) {
    throw new ConfigError('--ai-toolkit (or LORALAB_AI_TOOLKIT) is required: the ai-toolkit folder the trainer runs in (or use --fake-trainer)');
  }
  let trainerCommand: string[] | null = null;
  if (!o.fakeTrainer) {
    try {
      trainerCommand = splitCommand(o.trainerCommand ?? DEFAULT_TRAINER_COMMAND);
    } catch (err) {
      throw new ConfigError(`--trainer-command: ${(err as Error).message}`);
    }
    if (trainerCommand.length === 0) throw new ConfigError('--trainer-command is empty');
  }

  let cacheSizeBytes = DEFAULT_CACHE_BYTES;
  if (o.cacheSize !== undefined) {
    try {
      cacheSizeBytes = parseSize(o.cacheSize);
    } catch (err) {
      throw new ConfigError(`--cache-size (LORALAB_CACHE_SIZE) ${(err as Error).message}`);
    }
  }

  const concurrency = o.concurrency ?? 1;
  if (gpus !== null && concurrency > gpus.length) {
    throw new ConfigError(`--concurrency ${concurrency} needs ${concurrency} GPUs, but --gpus lists ${gpus.length}`);
  }

  return {
    server: baseUrl(o.server),
    graphqlUrl: `${baseUrl(o.server)}/graphql`,
    token: o.token,
    workDir: path.resolve(o.workDir ?? './loralab-agent'),
    aiToolkit,
    name: o.name ?? os.hostname(),
    labels: [...new Set((o.labels ?? '').split(',').map((l) => l.trim()).filter((l) => l.length > 0))],
    hourlyCostUsd: o.hourlyCost ?? null,
    gpus,
    trainerCommand,
    fakeTrainer: o.fakeTrainer,
    concurrency,
    heartbeatSeconds: o.heartbeatSeconds ?? null,
    cancelGraceSeconds: o.cancelGraceSeconds ?? 30,
    claimWaitSeconds: o.claimWaitSeconds ?? 30,
    hfToken: o.hfToken ?? null,
    cacheSizeBytes,
    metricsPort: o.metricsPort ?? null,
  };
}

/** `http://host:4000/`, `http://host:4000/graphql` → `http://host:4000`. */
export function baseUrl(server: string): string {
  let url = server.trim().replace(/\/+$/, '');
  if (url.endsWith('/graphql')) url = url.slice(0, -'/graphql'.length).replace(/\/+$/, '');
  return url;
}

/**
 * Splits a command line into an argument array without a shell: spaces separate, single or double
 * quotes group, a backslash escapes the next character. Nothing is expanded ($, `, ~, globs).
 */
export function splitCommand(line: string): string[] {
  const args: string[] = [];
  let current = '';
  let inArg = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote !== null) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) current += line[++i];
      else current += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inArg = true;
    } else if (c === '\\' && i + 1 < line.length) {
      current += line[++i];
      inArg = true;
    } else if (/\s/.test(c)) {
      if (inArg) args.push(current);
      current = '';
      inArg = false;
    } else {
      current += c;
      inArg = true;
    }
  }
  if (quote !== null) throw new Error(`unclosed ${quote} in ${JSON.stringify(line)}`);
  if (inArg) args.push(current);
  return args;
}
