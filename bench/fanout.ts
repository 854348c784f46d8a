// Issue 4: live fan-out through LISTEN/NOTIFY. One reporter sends 2,000 points/s to replica A while
// 200 subscribers listen to that run's loss, half on replica A and half on replica B; we measure the
// delay from sending each batch to each subscriber receiving it, and both servers' memory.
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { createBasics, createKey, freshPostgres, gql, isMain, percentile, startServerProcess, table, ms } from './lib.js';

const SUBSCRIBERS = 200;
const POINTS_PER_SECOND = 2000;
const BATCH = 100;
const SECONDS = 10;

export async function run() {
  const pg = await freshPostgres();
  const env = { REAPER_INTERVAL_SECONDS: '3600' };
  const a = await startServerProcess({ databaseUrl: pg.url, env });
  const b = await startServerProcess({ databaseUrl: pg.url, adminKey: a.adminKey, env });
  const clients: ReturnType<typeof createClient>[] = [];
  try {
    const basics = await createBasics(a.url, a.adminKey);
    const agentKey = await createKey(a.url, a.adminKey, 'AGENT');
    const { registerAgent } = await gql(a.url, agentKey, `mutation { registerAgent(input: { name: "bench", gpus: [{ index: 0, name: "H100", memoryMb: 81559 }] }) { id } }`);
    await gql(a.url, a.adminKey, `mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`, { i: basics });
    const { claimRun } = await gql(a.url, agentKey, `mutation($a: ID!) { claimRun(agentId: $a) { run { id } leaseToken } }`, { a: registerAgent.id });
    const runId = claimRun.run.id as string;
    const rssBefore = { a: a.rssMb(), b: b.rssMb() };

    const sentAt = new Map<number, number>(); // first step of a batch → when it was sent
    const latencies: number[] = [];
    let received = 0;
    await Promise.all(
      Array.from({ length: SUBSCRIBERS }, (_, i) => {
        const server = i % 2 === 0 ? a : b;
        const client = createClient({
          url: `${server.url.replace('http', 'ws')}/graphql`,
          webSocketImpl: WebSocket,
          connectionParams: { authorization: `Bearer ${a.adminKey}` },
        });
        clients.push(client);
        return new Promise<void>((ready) => {
          client.on('connected', () => setTimeout(ready, 50));
          client.subscribe<{ runLoss: { points: { step: number }[] } }>(
            { query: `subscription($id: ID!) { runLoss(runId: $id) { points { step } } }`, variables: { id: runId } },
            {
              next: ({ data }) => {
                const now = performance.now();
                for (const p of data!.runLoss.points) {
                  const sent = sentAt.get(p.step);
                  if (sent != null) latencies.push(now - sent);
                }
                received += data!.runLoss.points.length;
              },
              error: (err) => console.error('subscriber error', err),
              complete: () => {},
            },
          );
        });
      }),
    );
    await new Promise((r) => setTimeout(r, 500)); // every subscription is registered server-side

    const report = `mutation($r: ID!, $t: String!, $p: [LossPointInput!]!) { reportLoss(runId: $r, leaseToken: $t, points: $p) { accepted } }`;
    const batches = (POINTS_PER_SECOND / BATCH) * SECONDS;
    const interval = (BATCH / POINTS_PER_SECOND) * 1000;
    const start = performance.now();
    let peak = { a: 0, b: 0 };
    for (let i = 0; i < batches; i++) {
      const due = start + i * interval;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const from = i * BATCH;
      // Latency is counted for the first point of each batch: when it left, when it arrived.
      sentAt.set(from, performance.now());
      await gql(a.url, agentKey, report, { r: runId, t: claimRun.leaseToken, p: Array.from({ length: BATCH }, (_, j) => ({ step: from + j, loss: 0.4 })) });
      if (i % 20 === 0) peak = { a: Math.max(peak.a, a.rssMb()), b: Math.max(peak.b, b.rssMb()) };
    }
    const sendSeconds = (performance.now() - start) / 1000;
    const expected = batches * BATCH * SUBSCRIBERS;
    for (let i = 0; i < 100 && received < expected; i++) await new Promise((r) => setTimeout(r, 100));
    table('Live fan-out: 1 reporter, 200 subscribers on 2 replicas, PostgreSQL LISTEN/NOTIFY (issue 4)', [
      ['points sent', `${batches * BATCH} in ${sendSeconds.toFixed(1)} s (${((batches * BATCH) / sendSeconds).toFixed(0)} points/s, batches of ${BATCH})`],
      ['points delivered', `${received} of ${expected}`],
      ['delivery latency', `p50 ${ms(percentile(latencies, 50))}, p99 ${ms(percentile(latencies, 99))}   (goal p99 ≤ 50 ms; ${latencies.length} samples)`],
      ['server RSS', `A ${rssBefore.a.toFixed(0)} → peak ${peak.a.toFixed(0)} MB, B ${rssBefore.b.toFixed(0)} → peak ${peak.b.toFixed(0)} MB`],
    ]);
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
    await Promise.all([a.stop(), b.stop()]);
    await pg.drop();
  }
}

if (isMain(import.meta.url)) await run();
