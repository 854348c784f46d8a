// Issue 19: a fleet's load. Simulated agents (heartbeat every 20 s, a loss batch every second while
// training, long-poll claims) and dashboards (a runs page and a loss curve every 5 s) against two
// API replicas (separate processes) on one PostgreSQL. Prints each replica's CPU per agent, p50/p99
// of every agent operation and of the dashboards' reads, the database connections used (sampled
// from pg_stat_activity and from each replica's /metrics), and anything that failed or timed out.
//
// FLEET_AGENTS (1000), FLEET_DASHBOARDS (200), FLEET_SECONDS (60; `npm run bench` runs 20 unless
// set), FLEET_POOL (DATABASE_POOL_SIZE per replica, 10).
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import os from 'node:os';
import { Pool } from 'undici';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { connectPostgres } from '../src/db/client.js';
import { createBasics, createKey, databaseCpuSeconds, freshPostgres, isMain, ms, percentile, queueRuns, startServerProcess, table, type ServerProcess, FINISH_ATTEMPT } from './lib.js';

const env = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);

const LONG_POLL_SECONDS = 20;
const HEARTBEAT_MS = 20_000;
const DASHBOARD_EVERY_MS = 5_000;
/** A request that takes longer than this (a long poll's wait included) counts as timed out. */
const TIMEOUT_MS = (LONG_POLL_SECONDS + 10) * 1000;
const STEPS_PER_BATCH = 5;

const Q = {
  register: `mutation($i: RegisterAgentInput!) { registerAgent(input: $i) { id } }`,
  claim: `mutation($a: ID!, $w: Int) { claimRun(agentId: $a, waitSeconds: $w) { leaseToken run { id hyperparameters { steps } } } }`,
  start: `mutation($r: ID!, $t: String!) { startRun(runId: $r, leaseToken: $t) { id } }`,
  loss: `mutation($r: ID!, $t: String!, $p: [LossPointInput!]!) { reportLoss(runId: $r, leaseToken: $t, points: $p) { accepted } }`,
  heartbeat: `mutation($r: ID!, $t: String!, $p: ProgressInput) { heartbeat(runId: $r, leaseToken: $t, progress: $p) { cancelRequested } }`,
  complete: FINISH_ATTEMPT,
  page: `query($e: ID) { runs(first: 50, filter: { experimentId: $e }, orderBy: { field: QUEUED_AT, direction: DESC }) {
    edges { node { id name status progress { step totalSteps } lossSummary { lastStep lastLoss minLoss emaLoss } agent { name } } } } }`,
  curve: `query($r: ID!) { run(id: $r) { id status lossCurve(maxPoints: 500) { step min max mean last } } }`,
  queue: `mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`,
};

type Op = 'registerAgent' | 'claimRun (got a run)' | 'claimRun (empty long poll)' | 'startRun' | 'reportLoss' | 'heartbeat' | 'completeRun' | 'dashboard runs page' | 'dashboard lossCurve' | 'queueRun';

class Recorder {
  readonly times = new Map<Op, number[]>();
  failures = new Map<string, number>();
  timeouts = 0;
  record(op: Op, msTaken: number) {
    let list = this.times.get(op);
    if (!list) this.times.set(op, (list = []));
    list.push(msTaken);
    if (msTaken > TIMEOUT_MS) this.timeouts++;
  }
  fail(op: string, why: string) {
    const key = `${op}: ${why.slice(0, 120)}`;
    this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
  }
}

/** One GraphQL client per replica with a connection per simulated client, as real agents have. */
function client(url: string, connections: number) {
  const pool = new Pool(url, { connections, headersTimeout: TIMEOUT_MS + 5000, bodyTimeout: TIMEOUT_MS + 5000, keepAliveTimeout: 60_000 });
  return {
    pool,
    async gql<T = any>(key: string, query: string, variables: Record<string, unknown>): Promise<T> {
      const res = await pool.request({
        path: '/graphql',
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ query, variables }),
      });
      const body = JSON.parse(await res.body.text()) as { data: T; errors?: { message: string; extensions?: { code?: string } }[] };
      if (body.errors?.length) throw new Error(`${body.errors[0]!.extensions?.code ?? ''} ${body.errors[0]!.message}`);
      return body.data;
    },
  };
}
type Client = ReturnType<typeof client>;

const sleep = (msToWait: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, msToWait);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

async function timedCall<T>(rec: Recorder, op: Op | ((result: T) => Op), fn: () => Promise<T>): Promise<T | undefined> {
  const t0 = performance.now();
  try {
    const result = await fn();
    rec.record(typeof op === 'function' ? op(result) : op, performance.now() - t0);
    return result;
  } catch (err) {
    rec.fail(typeof op === 'function' ? 'claimRun' : op, (err as Error).message);
    return undefined;
  }
}

/** One simulated agent: claim (long poll), start, a loss batch a second, a heartbeat every 20 s, complete. */
async function agentLoop(c: Client, key: string, agentId: string, rec: Recorder, signal: AbortSignal, trainSeconds: () => number) {
  while (!signal.aborted) {
    const claimed = await timedCall(
      rec,
      (d: any) => (d.claimRun ? 'claimRun (got a run)' : 'claimRun (empty long poll)'),
      () => c.gql(key, Q.claim, { a: agentId, w: LONG_POLL_SECONDS }),
    );
    if (signal.aborted) return;
    if (!claimed) {
      await sleep(1000, signal);
      continue;
    }
    const assignment = (claimed as any).claimRun;
    if (!assignment) continue;
    const r = assignment.run.id as string;
    const t = assignment.leaseToken as string;
    await timedCall(rec, 'startRun', () => c.gql(key, Q.start, { r, t }));
    const seconds = trainSeconds();
    let step = 0;
    let lastBeat = performance.now();
    for (let s = 0; s < seconds && !signal.aborted; s++) {
      await sleep(1000, signal);
      const points = Array.from({ length: STEPS_PER_BATCH }, () => ({ step: step++, loss: 0.3 + Math.random() * 0.1, lr: 4e-4 }));
      await timedCall(rec, 'reportLoss', () => c.gql(key, Q.loss, { r, t, p: points }));
      if (performance.now() - lastBeat >= HEARTBEAT_MS) {
        lastBeat = performance.now();
        await timedCall(rec, 'heartbeat', () => c.gql(key, Q.heartbeat, { r, t, p: { step, totalSteps: seconds * STEPS_PER_BATCH, secondsPerStep: 1 / STEPS_PER_BATCH } }));
      }
    }
    if (signal.aborted) return;
    await timedCall(rec, 'completeRun', () => c.gql(key, Q.complete, { r, t }));
  }
}

async function dashboardLoop(c: Client, key: string, experimentId: string, runIds: () => string[], rec: Recorder, signal: AbortSignal) {
  await sleep(Math.random() * DASHBOARD_EVERY_MS, signal); // spread over the interval
  while (!signal.aborted) {
    await timedCall(rec, 'dashboard runs page', () => c.gql(key, Q.page, { e: experimentId }));
    const ids = runIds();
    if (ids.length) await timedCall(rec, 'dashboard lossCurve', () => c.gql(key, Q.curve, { r: ids[Math.floor(Math.random() * ids.length)] }));
    await sleep(DASHBOARD_EVERY_MS, signal);
  }
}

async function scrapePool(server: ServerProcess) {
  const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.adminKey}` } });
  const families = parsePrometheusTextFormat(await res.text());
  const pool = families.find((f) => f.name === 'loralab_db_pool')?.metrics ?? [];
  const get = (state: string) => Number(pool.find((m) => m.labels?.state === state)?.value ?? 0);
  return { active: get('active'), waiting: get('waiting'), slots: get('slots'), size: get('size') };
}

export interface FleetOptions {
  agents?: number;
  dashboards?: number;
  seconds?: number;
  poolSize?: number;
}

export async function fleet(options: FleetOptions = {}) {
  const AGENTS = options.agents ?? env('FLEET_AGENTS', 1000);
  const DASHBOARDS = options.dashboards ?? env('FLEET_DASHBOARDS', 200);
  const SECONDS = options.seconds ?? env('FLEET_SECONDS', 60);
  const POOL = options.poolSize ?? env('FLEET_POOL', 10);
  const pg = await freshPostgres();
  const serverEnv = { DATABASE_POOL_SIZE: String(POOL), LEASE_TTL_SECONDS: '60', AUTH_FAILURE_LIMIT: '100000' };
  const first = await startServerProcess({ databaseUrl: pg.url, env: serverEnv });
  const second = await startServerProcess({ databaseUrl: pg.url, env: serverEnv, adminKey: first.adminKey });
  const replicas = [first, second];
  const observer = connectPostgres(pg.url, { max: 1, onnotice: () => {} });
  const rec = new Recorder();
  const controller = new AbortController();
  setMaxListeners(0, controller.signal); // every simulated client waits on it
  try {
    const { adminKey } = first;
    const basics = await createBasics(first.url, adminKey);
    const agentKey = await createKey(first.url, adminKey, 'AGENT');
    const viewerKey = await createKey(first.url, adminKey, 'VIEWER');
    // Enough work that most agents train and the rest wait in long polls; more trickles in.
    await queueRuns(first.url, adminKey, basics, Math.round(AGENTS * 0.7));
    const clients = replicas.map((r) => client(r.url, Math.ceil((AGENTS + DASHBOARDS) / 2) + 16));

    const agentIds: string[] = [];
    for (let i = 0; i < AGENTS; i += 50) {
      const ids = await Promise.all(
        Array.from({ length: Math.min(50, AGENTS - i) }, (_, j) =>
          timedCall(rec, 'registerAgent', () =>
            clients[(i + j) % 2]!.gql(agentKey, Q.register, { i: { name: `fleet-${i + j}-${randomBytes(3).toString('hex')}`, gpus: [{ index: 0, name: 'H100', memoryMb: 81_559 }] } }),
          ),
        ),
      );
      agentIds.push(...ids.map((d: any) => d?.registerAgent.id as string));
    }

    const runningIds = async () =>
      (await observer<{ id: string }[]>`select id from runs where status = 'RUNNING' limit 200`).map((r) => r.id);
    let watched: string[] = [];
    const signal = controller.signal;

    const cpuBefore = { servers: replicas.map((r) => r.cpuSeconds()), database: await databaseCpuSeconds(observer, pg.name), client: process.cpuUsage() };
    const started = performance.now();
    let connections = 0;
    let poolPeak = { active: 0, waiting: 0 };
    const sampler = (async () => {
      while (!signal.aborted) {
        const [row] = await observer<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where datname = ${pg.name} and application_name = 'loralab'`;
        connections = Math.max(connections, row!.n);
        if (process.env.BENCH_DEBUG) {
          const states = await observer<{ k: string; n: number }[]>`select coalesce(wait_event_type || ':' || wait_event, state) || ' ' || left(regexp_replace(query, '\s+', ' ', 'g'), 70) as k, count(*)::int as n
            from pg_stat_activity where datname = ${pg.name} and pid <> pg_backend_pid() and state <> 'idle' group by 1 order by 2 desc limit 6`;
          console.log(new Date().toISOString().slice(11, 19), JSON.stringify(await scrapePool(first)), states.map((s) => `${s.n}× ${s.k}`).join(' | '));
        }
        watched = await runningIds();
        for (const replica of replicas) {
          const p = await scrapePool(replica).catch(() => null);
          if (p) poolPeak = { active: Math.max(poolPeak.active, p.active), waiting: Math.max(poolPeak.waiting, p.waiting) };
        }
        await sleep(1000, signal);
      }
    })();
    // Training lasts 20–50 s, so agents finish and claim again within the window.
    const loops = [
      ...agentIds.map((id, i) => agentLoop(clients[i % 2]!, agentKey, id, rec, signal, () => 20 + Math.floor(Math.random() * 30))),
      ...Array.from({ length: DASHBOARDS }, (_, i) => dashboardLoop(clients[i % 2]!, viewerKey, basics.experimentId, () => watched, rec, signal)),
      (async () => {
        // A run queued every 200 ms: the wake-ups of waiting long polls.
        while (!signal.aborted) {
          await timedCall(rec, 'queueRun', () => clients[0]!.gql(adminKey, Q.queue, { i: basics }));
          await sleep(200, signal);
        }
      })(),
    ];
    await sleep(SECONDS * 1000, AbortSignal.timeout(SECONDS * 1000 + 1000));
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = { servers: replicas.map((r) => r.cpuSeconds()), database: await databaseCpuSeconds(observer, pg.name), client: process.cpuUsage(cpuBefore.client) };
    controller.abort();
    // Requests in flight (long polls) end within their wait.
    await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, TIMEOUT_MS))]);
    await sampler;
    await Promise.all(clients.map((c) => c.pool.destroy()));

    const perReplica = replicas.map((_, i) => cpuAfter.servers[i]! - cpuBefore.servers[i]!);
    const agentsPerReplica = AGENTS / 2;
    const cpuShare = perReplica.map((s) => s / seconds); // cores
    const msPerAgentSecond = perReplica.map((s) => (s * 1000) / seconds / agentsPerReplica);
    const lines: [string, string][] = [
      ['load', `${AGENTS} agents and ${DASHBOARDS} dashboards on 2 replicas, ${seconds.toFixed(0)} s; DATABASE_POOL_SIZE ${POOL} per replica (${os.cpus().length} cores shared)`],
      ['server CPU per replica', perReplica.map((s, i) => `#${i + 1} ${(cpuShare[i]! * 100).toFixed(0)} % of a core = ${msPerAgentSecond[i]!.toFixed(3)} ms CPU per agent per second`).join('; ')],
      ['PostgreSQL CPU', `${(((cpuAfter.database - cpuBefore.database) / seconds) * 100).toFixed(0)} % of a core`],
      ['bench client CPU', `${(((cpuAfter.client.user + cpuAfter.client.system) / 1e6 / seconds) * 100).toFixed(0)} % of a core`],
    ];
    for (const [op, times] of [...rec.times.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      lines.push([op, `n ${times.length}, p50 ${ms(percentile(times, 50))}, p99 ${ms(percentile(times, 99))}, max ${ms(Math.max(...times))}`]);
    }
    lines.push(['database connections', `peak ${connections} (2 replicas × (pool ${POOL} + a listener + a notifier)); replicas' request slots: peak active ${poolPeak.active}, peak waiting ${poolPeak.waiting}`]);
    lines.push(['timed out (> ' + TIMEOUT_MS / 1000 + ' s)', String(rec.timeouts)]);
    lines.push(['failed', rec.failures.size ? [...rec.failures].map(([k, v]) => `${v}× ${k}`).join('; ') : '0']);
    const coresPerReplica = Math.max(...cpuShare);
    // CPU per agent says how many agents a core serves only while nothing waits: once requests time
    // out, the limit was elsewhere (the database's commits, the machine) and the CPU figure is low.
    const healthy = rec.timeouts === 0 && rec.failures.size === 0;
    lines.push([
      'agents one replica serves',
      healthy
        ? `${Math.floor(agentsPerReplica / coresPerReplica)} per core of server CPU at this load (${agentsPerReplica} agents took ${(coresPerReplica * 100).toFixed(0)} % of a core)`
        : `not measured: requests timed out or failed, so this load is past what the setup serves (${agentsPerReplica} agents per replica)`,
    ]);
    table(`A fleet's load on PostgreSQL (issue 19)`, lines);
    return { rec, msPerAgentSecond, connections, poolPeak };
  } finally {
    controller.abort();
    await observer.end();
    await Promise.all(replicas.map((r) => r.stop()));
    await pg.drop();
  }
}

export async function run() {
  await fleet({ seconds: env('FLEET_SECONDS', 20) });
}

if (isMain(import.meta.url)) await fleet();
