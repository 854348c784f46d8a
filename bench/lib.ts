// Shared by the benchmarks: throwaway databases, loralab servers as child processes (so the
// measuring client never shares an event loop with the server), a GraphQL client and statistics.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { Pool } from 'undici';
import type postgres from 'postgres';
import { connectPostgres } from '../src/db/client.js';

// A PostgreSQL on this host is reached over its Unix socket, as a single-host deployment would:
// loopback TCP costs these 2-core VMs about 4× the CPU per round trip (see connectPostgres).
const LOCAL_SOCKET_DIR = '/var/run/postgresql';
export const BENCH_DATABASE_URL =
  process.env.BENCH_DATABASE_URL ||
  process.env.TEST_DATABASE_URL ||
  (existsSync(`${LOCAL_SOCKET_DIR}/.s.PGSQL.5432`) ? `postgres://postgres@localhost/test?host=${LOCAL_SOCKET_DIR}` : 'postgres://postgres@127.0.0.1:5432/test');
const ROOT = path.resolve(import.meta.dirname, '..');

export async function freshPostgres() {
  const name = `loralab_bench_${randomBytes(4).toString('hex')}`;
  const admin = connectPostgres(BENCH_DATABASE_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(BENCH_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const admin = connectPostgres(BENCH_DATABASE_URL, { max: 1, onnotice: () => {} });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export interface ServerProcess {
  url: string;
  adminKey: string;
  child: ChildProcess;
  rssMb(): number;
  /** CPU seconds (user + system) the server process has used so far. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** A loralab server in its own process, on PostgreSQL (databaseUrl) or PGlite (a temp DATA_DIR). */
export async function startServerProcess(
  options: { databaseUrl?: string; adminKey?: string; env?: Record<string, string>; nodeArgs?: string[] } = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const adminKey = options.adminKey ?? `llk_bench_${randomBytes(16).toString('hex')}`;
  const dataDir = options.databaseUrl ? undefined : mkdtempSync(path.join(tmpdir(), 'loralab-bench-'));
  // BENCH_SERVER_NODE_ARGS profiles the server under a bench, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const profileArgs = process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...profileArgs, ...(options.nodeArgs ?? []), '--import', 'tsx', 'src/index.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      // As the Dockerfile runs it: without it graphql-js checks every failed instanceof for a second
      // copy of itself, a few ms of CPU on a large answer.
      NODE_ENV: 'production',
      LORALAB_ADMIN_KEY: adminKey,
      LOG_LEVEL: 'warn',
      ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : { DATA_DIR: dataDir!, DATABASE_URL: '' }),
      ...options.env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  // A shared 2-core machine under load may take over a minute to start a server from source.
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode != null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('server did not start in 180 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    adminKey,
    child,
    cpuSeconds: () => processCpuSeconds(child.pid!),
    rssMb() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
    },
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await pools.get(url)?.destroy();
      pools.delete(url);
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// The measuring client must cost the 2-core machine as little as it can, or it measures itself:
// Node's fetch spent about 1 ms of CPU per request here, undici's pooled request about 0.13 ms.
const pools = new Map<string, Pool>();
const poolFor = (url: string) => {
  let pool = pools.get(url);
  if (!pool) pools.set(url, (pool = new Pool(url, { connections: 64 })));
  return pool;
};

/** POSTs a GraphQL request over a pooled keep-alive connection; the raw JSON text of the answer. */
export async function post(url: string, key: string, body: string): Promise<string> {
  const res = await poolFor(url).request({
    path: '/graphql',
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body,
  });
  return res.body.text();
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used, from /proc. */
export function processCpuSeconds(pid: number) {
  // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** A process's resident memory now, in MB, from /proc. */
export function processRssMb(pid: number) {
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return rss ? Number(rss[1]) / 1024 : NaN;
}

/**
 * CPU seconds used so far by the PostgreSQL backends serving one database (on this host): where a
 * 2-core machine's time goes matters more than wall time when the server and database share it.
 */
export async function databaseCpuSeconds(sql: postgres.Sql, database: string) {
  const backends = await sql<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${database} and pid <> pg_backend_pid()`;
  let total = 0;
  for (const { pid } of backends) {
    try {
      total += processCpuSeconds(pid);
    } catch {
      // the backend exited meanwhile
    }
  }
  return total;
}

export async function gql<T = any>(url: string, key: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const body = JSON.parse(await post(url, key, JSON.stringify({ query, variables }))) as { data: T; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

/**
 * How the queue benches end an attempt: FAILED with an error. A run reads SUCCEEDED only once its
 * final checkpoint's bytes are stored, and these benches measure the queue, not training or uploads.
 */
export const FINISH_ATTEMPT = `mutation($r: ID!, $t: String!) { completeRun(runId: $r, leaseToken: $t, outcome: FAILED, error: { code: "BENCH", message: "the bench trains nothing" }) { id } }`;
export const FINISHED_STATUS = 'FAILED';

export async function createKey(url: string, adminKey: string, role: string) {
  return (await gql(url, adminKey, `mutation($r: ApiRole!) { createApiKey(role: $r, name: "bench") { key } }`, { r: role })).createApiKey.key as string;
}

export async function createBasics(url: string, key: string) {
  const [e, d, s] = await Promise.all([
    gql(url, key, `mutation { createExperiment(input: { name: "bench", goal: CONCEPT }) { id } }`),
    gql(url, key, `mutation { createDataset(input: { name: "bench", uri: "/data/bench", images: [{ fileName: "a.jpg" }] }) { id } }`),
    gql(url, key, `mutation { createCaptionStrategy(input: { name: "trigger", kind: TRIGGER_ONLY, triggerWord: "p3r5on" }) { id } }`),
  ]);
  return { experimentId: e.createExperiment.id as string, datasetId: d.createDataset.id as string, captionStrategyId: s.createCaptionStrategy.id as string };
}

/**
 * What the benches that run the fake trainer through an agent queue on: a one-image dataset in a
 * folder of `dir` (the fake trainer reads nothing of it), an experiment and a NONE caption strategy.
 */
export async function fakeTrainerBasics(url: string, key: string, dir: string) {
  const datasetDir = path.join(dir, 'dataset');
  await mkdir(datasetDir, { recursive: true });
  await writeFile(path.join(datasetDir, 'a.jpg'), 'x');
  const { e, d, s } = await gql(
    url,
    key,
    `mutation($uri: String!) { e: createExperiment(input: { name: "bench", goal: CONCEPT }) { id } d: createDataset(input: { name: "bench", uri: $uri, images: [{ fileName: "a.jpg" }] }) { id }
      s: createCaptionStrategy(input: { name: "none", kind: NONE }) { id } }`,
    { uri: datasetDir },
  );
  return { experimentId: e.id as string, datasetId: d.id as string, captionStrategyId: s.id as string };
}

/** Queues `count` runs (≤ 10,000) as sweeps of up to 1,000. */
export async function queueRuns(url: string, key: string, basics: Awaited<ReturnType<typeof createBasics>>, count: number) {
  const ranks = Array.from({ length: 10 }, (_, i) => (i + 1) * 4);
  const rates = Array.from({ length: 10 }, (_, i) => (i + 1) * 1e-4);
  for (let queued = 0; queued < count; queued += 1000) {
    const steps = Array.from({ length: Math.min(10, Math.ceil((count - queued) / 100)) }, (_, i) => 1000 + i * 250 + queued);
    await gql(url, key, `mutation($input: QueueSweepInput!) { queueSweep(input: $input) { id } }`, {
      input: { base: basics, grid: { rank: ranks, learningRate: rates, steps } },
    });
  }
}

export function percentile(values: number[], p: number) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const ms = (v: number) => `${v.toFixed(v < 10 ? 2 : 1)} ms`;

export function table(title: string, rows: [string, string | number][]) {
  console.log(`\n${title}`);
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
}

export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await fn();
  return [result, performance.now() - start];
}

/** True when the module was started directly (`npx tsx bench/x.ts`), not imported by bench/run.ts. */
export const isMain = (moduleUrl: string) => process.argv[1] != null && path.resolve(process.argv[1]) === new URL(moduleUrl).pathname;
