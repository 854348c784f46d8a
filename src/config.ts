// The only reader of process.env. A wrong value stops the process at boot with one readable line.
import { z } from 'zod';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const emptyAsUndefined = (v: unknown) => (v === '' ? undefined : v);

const envSchema = z.object({
  PORT: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(0).max(65535).default(4000)),
  HOST: z.preprocess(emptyAsUndefined, z.string().min(1).default('127.0.0.1')),
  DATA_DIR: z.preprocess(emptyAsUndefined, z.string().min(1).default('./data')),
  DATABASE_URL: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
  ),
  LORALAB_ADMIN_KEY: z.preprocess(emptyAsUndefined, z.string().min(16, 'must be at least 16 characters').optional()),
  LOG_LEVEL: z.preprocess(emptyAsUndefined, z.enum(LOG_LEVELS).default('info')),
  LEASE_TTL_SECONDS: z.preprocess(emptyAsUndefined, z.coerce.number().positive().max(3600).default(60)),
  REAPER_INTERVAL_SECONDS: z.preprocess(emptyAsUndefined, z.coerce.number().positive().max(3600).default(5)),
  RETRY_BACKOFF_SECONDS: z.preprocess(emptyAsUndefined, z.coerce.number().min(0).max(86400).default(10)),
  STATEMENT_TIMEOUT_SECONDS: z.preprocess(emptyAsUndefined, z.coerce.number().positive().max(3600).default(15)),
});

export type Config = {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  adminKey: string | undefined;
  logLevel: (typeof LOG_LEVELS)[number];
  leaseTtlSeconds: number;
  reaperIntervalSeconds: number;
  retryBackoffSeconds: number;
  /** Longest a statement may run on PostgreSQL, and most database time one request may use. */
  statementTimeoutSeconds: number;
};

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0]);
    throw new ConfigError(`Invalid environment variable ${variable}=${JSON.stringify(env[variable])}: ${issue.message}`);
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir: e.DATA_DIR,
    databaseUrl: e.DATABASE_URL,
    adminKey: e.LORALAB_ADMIN_KEY,
    logLevel: e.LOG_LEVEL,
    leaseTtlSeconds: e.LEASE_TTL_SECONDS,
    reaperIntervalSeconds: e.REAPER_INTERVAL_SECONDS,
    retryBackoffSeconds: e.RETRY_BACKOFF_SECONDS,
    statementTimeoutSeconds: e.STATEMENT_TIMEOUT_SECONDS,
  };
}
