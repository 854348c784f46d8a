// The only reader of process.env. A wrong value stops the process at boot with one readable line.
import proxyaddr from 'proxy-addr';
import { z } from 'zod';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const emptyAsUndefined = (v: unknown) => (v === '' ? undefined : v);

const isTrustable = (entry: string) => {
  try {
    proxyaddr.compile(entry);
    return true;
  } catch {
    return false;
  }
};

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
  AUTH_FAILURE_LIMIT: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(1).max(100_000).default(10)),
  AUTH_FAILURE_WINDOW_SECONDS: z.preprocess(emptyAsUndefined, z.coerce.number().positive().max(86400).default(60)),
  TRUST_PROXY: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
      .refine((list) => list.every(isTrustable), 'must be a comma-separated list of addresses, subnets (10.0.0.0/8) or loopback, linklocal, uniquelocal')
      .default([]),
  ),
  PUBLIC_URL: z.preprocess(
    emptyAsUndefined,
    z
      .url('must be a URL like https://loralab.example.com')
      .transform((u) => u.replace(/\/+$/, ''))
      .optional(),
  ),
  ARTIFACT_STORE: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^(file|s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[^\s]*)?)$/, 'must be "file" or s3://BUCKET[/PREFIX]')
      .default('file'),
  ),
  S3_ENDPOINT: z.preprocess(emptyAsUndefined, z.url('must be a URL like http://minio:9000').optional()),
  S3_PUBLIC_ENDPOINT: z.preprocess(emptyAsUndefined, z.url('must be a URL like http://localhost:9000').optional()),
  S3_FORCE_PATH_STYLE: z.preprocess(emptyAsUndefined, z.enum(['true', 'false', '1', '0']).default('false')),
  ARTIFACT_URL_TTL_SECONDS: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(60).max(7 * 86400).default(900)),
  ARTIFACT_UPLOAD_URL_TTL_SECONDS: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(60).max(7 * 86400).default(3600)),
  ARTIFACT_MAX_BYTES: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(1).max(5 * 1024 ** 4).default(4 * 1024 ** 3)),
  ARTIFACT_PART_SIZE_MIB: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(5, 'must be at least 5 (the S3 minimum)').max(5120).default(64)),
  ARTIFACT_KEEP_CHECKPOINTS: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(1).max(100_000).optional()),
  STATEMENT_TIMEOUT_SECONDS: z.preprocess(emptyAsUndefined, z.coerce.number().positive().max(3600).default(15)),
  METRICS_TOKEN: z.preprocess(emptyAsUndefined, z.string().min(16, 'must be at least 16 characters').optional()),
  DATABASE_POOL_SIZE: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(3).max(1000).default(10)),
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
  /** Failed keys one client address may present per window before it must wait. */
  authFailureLimit: number;
  authFailureWindowSeconds: number;
  /** Proxies whose X-Forwarded-For is believed (a load balancer in front of the replicas). */
  trustProxy: string[];
  /** The address clients reach this server by (signed URLs of the embedded store); else the request's own. */
  publicUrl: string | undefined;
  artifacts: ArtifactConfig;
  /** Longest a statement may run on PostgreSQL, and most database time one request may use. */
  statementTimeoutSeconds: number;
  /** A bearer token that may read /metrics (besides ADMIN keys); it grants nothing else. */
  metricsToken: string | undefined;
  /** PostgreSQL connections per process (two of them for work no request does: reaper, feeds). */
  databasePoolSize: number;
};

export interface ArtifactConfig {
  /** `file` (under DATA_DIR/artifacts) or an S3-compatible bucket. */
  store: { kind: 'file' } | { kind: 's3'; bucket: string; prefix: string };
  s3Endpoint: string | undefined;
  /** The endpoint presigned URLs name, when clients reach the store by another address than the server does. */
  s3PublicEndpoint: string | undefined;
  s3ForcePathStyle: boolean;
  urlTtlSeconds: number;
  uploadUrlTtlSeconds: number;
  maxBytes: number;
  partSizeBytes: number;
  /** Newest checkpoints kept per run (besides final, promoted and rated ones); undefined keeps all. */
  keepCheckpoints: number | undefined;
}

function artifactStore(value: string): ArtifactConfig['store'] {
  if (value === 'file') return { kind: 'file' };
  const [bucket, ...prefix] = value.slice('s3://'.length).split('/');
  return { kind: 's3', bucket: bucket!, prefix: prefix.filter(Boolean).join('/') };
}

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
    authFailureLimit: e.AUTH_FAILURE_LIMIT,
    authFailureWindowSeconds: e.AUTH_FAILURE_WINDOW_SECONDS,
    trustProxy: e.TRUST_PROXY,
    publicUrl: e.PUBLIC_URL,
    artifacts: {
      store: artifactStore(e.ARTIFACT_STORE),
      s3Endpoint: e.S3_ENDPOINT,
      s3PublicEndpoint: e.S3_PUBLIC_ENDPOINT,
      s3ForcePathStyle: e.S3_FORCE_PATH_STYLE === 'true' || e.S3_FORCE_PATH_STYLE === '1',
      urlTtlSeconds: e.ARTIFACT_URL_TTL_SECONDS,
      uploadUrlTtlSeconds: e.ARTIFACT_UPLOAD_URL_TTL_SECONDS,
      maxBytes: e.ARTIFACT_MAX_BYTES,
      partSizeBytes: e.ARTIFACT_PART_SIZE_MIB * 1024 * 1024,
      keepCheckpoints: e.ARTIFACT_KEEP_CHECKPOINTS,
    },
    statementTimeoutSeconds: e.STATEMENT_TIMEOUT_SECONDS,
    metricsToken: e.METRICS_TOKEN,
    databasePoolSize: e.DATABASE_POOL_SIZE,
  };
}
