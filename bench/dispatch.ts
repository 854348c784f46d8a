// Issue 3: claims per second with 20 concurrent agents over 5,000 queued runs on PostgreSQL (zero
// double claims); the same over 1,000 more runs with the agent's own claim document (trainer
// config, captions, strategy, dataset); and how fast a waiting claimRun(waitSeconds) answers once a
// run is queued.
import os from 'node:os';
import { createBasics, createKey, databaseCpuSeconds, freshPostgres, gql, isMain, percentile, queueRuns, startServerProcess, table, ms, FINISH_ATTEMPT, FINISHED_STATUS } from './lib.js';
import { connectPostgres } from '../src/db/client.js';

const RUNS = 5000;
const AGENTS = 20;
const AGENT_DOCUMENT_RUNS = 1000;

export async function run() {
  const pg = await freshPostgres();
  const server = await startServerProcess({ databaseUrl: pg.url, env: { REAPER_INTERVAL_SECONDS: '3600' } });
  try {
    const { url, adminKey } = server;
    const basics = await createBasics(url, adminKey);
    await queueRuns(url, adminKey, basics, RUNS);
    const agentKey = await createKey(url, adminKey, 'AGENT');
    const agents = await Promise.all(
      Array.from({ length: AGENTS }, async (_, i) => {
        const { registerAgent } = await gql(url, agentKey, `mutation($i: RegisterAgentInput!) { registerAgent(input: $i) { id } }`, {
          i: { name: `bench-${i}`, gpus: [{ index: 0, name: 'H100', memoryMb: 81_559 }] },
        });
        return registerAgent.id as string;
      }),
    );

    // Each agent: claim, complete, claim again, until the queue is empty.
    const observer = connectPostgres(pg.url, { max: 1, onnotice: () => {} });
    const drain = async (claimDocument: string) => {
      const claimTimes: number[] = [];
      const claimed: string[] = [];
      // The database's backends outlive the loop (pooled connections), so their CPU time brackets it.
      const cpuBefore = { server: server.cpuSeconds(), database: await databaseCpuSeconds(observer, pg.name), client: process.cpuUsage() };
      const started = performance.now();
      await Promise.all(
        agents.map(async (agentId) => {
          for (;;) {
            const t0 = performance.now();
            const { claimRun } = await gql(url, agentKey, claimDocument, { a: agentId });
            claimTimes.push(performance.now() - t0);
            if (!claimRun) return;
            claimed.push(claimRun.run.id);
            await gql(url, agentKey, FINISH_ATTEMPT, {
              r: claimRun.run.id,
              t: claimRun.leaseToken,
            });
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const clientCpu = process.cpuUsage(cpuBefore.client);
      const cpuPerClaim = {
        server: ((server.cpuSeconds() - cpuBefore.server) * 1000) / claimed.length,
        database: (((await databaseCpuSeconds(observer, pg.name)) - cpuBefore.database) * 1000) / claimed.length,
        client: (clientCpu.user + clientCpu.system) / 1000 / claimed.length,
      };
      return { claimed, claimTimes, perSecond: claimed.length / seconds, cpuPerClaim };
    };
    const { claimed, claimTimes, perSecond, cpuPerClaim } = await drain(`mutation($a: ID!) { claimRun(agentId: $a) { run { id } leaseToken } }`);
    if (process.env.BENCH_DEBUG) console.log('claims done', claimed.length);
    const sql = connectPostgres(pg.url, { max: 1, onnotice: () => {} });
    const [check] = await sql`select count(*)::int as runs, count(*) filter (where attempt = 1 and status = ${FINISHED_STATUS})::int as once,
      (select count(*)::int from run_events where type = 'CLAIMED') as claim_events from runs`;
    await sql.end();
    const doubles = claimed.length - new Set(claimed).size + (check!.claim_events - check!.runs);

    // The same loop over 1,000 more runs, each claim asking for what the agent asks for: the
    // rendered trainer config, the staged captions and the run's strategy and dataset.
    await queueRuns(url, adminKey, basics, AGENT_DOCUMENT_RUNS);
    const withAgentDocument = await drain(`mutation($a: ID!) { claimRun(agentId: $a) {
      leaseToken attempt leaseExpiresAt trainerConfig captions { fileName text }
      run { id name hyperparameters { steps } requirements { gpuCount } captionStrategy { kind } dataset { id uri imageCount } } } }`);
    await observer.end();

    // Wake-up: an agent waits in claimRun(waitSeconds: 30); another client queues a run.
    const waiter = agents[0]!;
    const latencies: number[] = [];
    for (let i = 0; i < 40; i++) {
      const answer = gql(url, agentKey, `mutation($a: ID!) { claimRun(agentId: $a, waitSeconds: 30) { run { id } leaseToken } }`, { a: waiter }).then((d) => ({ d, at: performance.now() }));
      await new Promise((r) => setTimeout(r, 50)); // the claim is waiting
      const queuedAt = performance.now();
      await gql(url, adminKey, `mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`, { i: basics });
      const { d, at } = await answer;
      latencies.push(at - queuedAt);
      await gql(url, agentKey, FINISH_ATTEMPT, { r: d.claimRun.run.id, t: d.claimRun.leaseToken });
    }

    table('Dispatch on PostgreSQL (issue 3)', [
      ['runs claimed', `${claimed.length} of ${RUNS} by ${AGENTS} concurrent agents (claim + complete each)`],
      ['claims per second', `${perSecond.toFixed(0)} /s   (goal ≥ 500/s)`],
      ['claimRun latency', `p50 ${ms(percentile(claimTimes, 50))}, p99 ${ms(percentile(claimTimes, 99))}`],
      ['CPU per claim + complete', `server ${ms(cpuPerClaim.server)}, PostgreSQL ${ms(cpuPerClaim.database)}, bench client ${ms(cpuPerClaim.client)} (${os.cpus().length} cores shared)`],
      [
        "with the agent's claim document",
        `${withAgentDocument.perSecond.toFixed(0)} /s, p50 ${ms(percentile(withAgentDocument.claimTimes, 50))}; CPU server ${ms(withAgentDocument.cpuPerClaim.server)}, PostgreSQL ${ms(withAgentDocument.cpuPerClaim.database)} (${AGENT_DOCUMENT_RUNS} more runs; trainerConfig, captions, strategy and dataset too)`,
      ],
      ['double claims', `${doubles}   (every run attempt 1 and ${FINISHED_STATUS}: ${check!.once === RUNS ? 'yes' : `no, ${check!.once}`})`],
      ['wake-up latency', `p50 ${ms(percentile(latencies, 50))}, p99 ${ms(percentile(latencies, 99))} (queueRun answered → waiting claimRun answered, 40 runs)`],
    ]);
  } finally {
    await server.stop();
    await pg.drop();
  }
}

if (isMain(import.meta.url)) await run();
