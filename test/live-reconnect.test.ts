// Live feeds across a PostgreSQL restart: the server's LISTEN connection is cut, and whatever is
// written before it listens again reaches no one by NOTIFY. Every feed must catch up from the
// database. The restart is real, on a PostgreSQL server of this file's own (restarting the shared
// one would cut every other test file's connections).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/client.js';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';
import { createBasics, type Basics } from './helpers/fixtures.js';
import { claimNewRun, registerAgent, REPORT_LOSS, type TestAgent } from './helpers/agents.js';
import { collect, flatPoints, wsClient } from './helpers/live.js';
import { ownPostgresMissing, startOwnPostgres, type OwnPostgres } from './helpers/own-postgres.js';

const missing = ownPostgresMissing();
if (missing) console.warn(`\n!!! SKIPPED live-reconnect.test.ts (live feeds across a PostgreSQL restart): ${missing}\n`);

const points = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => ({ step: from + i, loss: 1 / (from + i + 1) }));
const steps = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const OUTAGE_MS = 3000;

/** Runs an agent call until the server answers it: right after a restart its pool reconnects. */
async function whenServerAnswers<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= 100) throw err;
      await new Promise((r) => setTimeout(r, 100)); // the database is coming back: poll it
    }
  }
}

async function untilUnreachable(t: TestServer) {
  for (;;) {
    const res = await fetch(`${t.url}/healthz`);
    if (res.status === 503) return;
    await new Promise((r) => setTimeout(r, 20)); // polling for the outage, not moving time
  }
}

describe.skipIf(missing)('live feeds across a PostgreSQL restart', () => {
  let pg: OwnPostgres;
  let t: TestServer;
  let basics: Basics;
  let agent: TestAgent;
  let viewer: GqlClient;
  beforeAll(async () => {
    pg = await startOwnPostgres();
    const db = await openDatabase({ kind: 'postgres', url: pg.url });
    t = await startTestServer('postgres', { reaperIntervalSeconds: 3600 }, { database: { db, drop: () => db.close() } });
    basics = await createBasics(t.admin);
    agent = await registerAgent(t);
    viewer = await t.as('VIEWER');
  });
  afterAll(async () => {
    await t?.stop();
    pg?.destroy();
  });

  it('runLoss, runUpdated and runEvents deliver what was written while the listener was away, once and in order', async () => {
    const { runId, token } = await claimNewRun(t, basics, agent);
    await agent.start(runId, token);
    const client = wsClient(t.url, viewer.key);
    const lossQuery = `subscription($id: ID!, $since: Int) { runLoss(runId: $id, sinceStep: $since) { points { step loss } } }`;
    const updatesQuery = `runUpdated { id status progress { step } checkpoints { step } }`;
    const live = collect(client, lossQuery, { id: runId }, (d) => d.runLoss);
    const replayed = collect(client, lossQuery, { id: runId, since: -1 }, (d) => d.runLoss);
    const byRun = collect(client, `subscription($id: ID!) { ${updatesQuery.replace('runUpdated', 'runUpdated(runId: $id)')} }`, { id: runId }, (d) => d.runUpdated);
    const byExperiment = collect(
      client,
      `subscription($id: ID!) { ${updatesQuery.replace('runUpdated', 'runUpdated(experimentId: $id)')} }`,
      { id: basics.experimentId },
      (d) => d.runUpdated,
    );
    const events = collect(client, `subscription($id: ID!) { runEvents(runId: $id) { type } }`, { id: runId }, (d) => d.runEvents);
    await new Promise((r) => setTimeout(r, 300)); // every subscription is set up

    await agent.client.ok(REPORT_LOSS, { r: runId, t: token, p: points(0, 99) });
    await live.until((b) => flatPoints(b).length === 100);
    await replayed.until((b) => flatPoints(b).length === 100);

    // A restart with an outage of a few seconds (a restart that recovers, a failover). The writes
    // below land as soon as the database answers again, before the listener has heard of it.
    pg.stop();
    await untilUnreachable(t);
    await new Promise((r) => setTimeout(r, OUTAGE_MS)); // the fault's length, not a wait for an outcome
    pg.start();
    await whenServerAnswers(() => agent.client.ok(REPORT_LOSS, { r: runId, t: token, p: points(100, 149) }));
    await whenServerAnswers(() => agent.client.ok(REPORT_LOSS, { r: runId, t: token, p: points(150, 499) }));
    await whenServerAnswers(async () => {
      const beat = await agent.heartbeat(runId, token, { step: 499, totalSteps: 3000 });
      if (beat.errors) throw new Error(JSON.stringify(beat.errors));
    });
    await whenServerAnswers(() =>
      agent.client.ok(`mutation($r: ID!, $t: String!, $i: CheckpointInput!) { reportCheckpoint(runId: $r, leaseToken: $t, input: $i) { id } }`, {
        r: runId,
        t: token,
        i: { step: 250, path: '/out/p3r5on_000000250.safetensors' },
      }),
    );

    expect(flatPoints(await live.until((b) => flatPoints(b).length >= 500)).map((p) => p.step)).toEqual(steps(0, 499));
    expect(flatPoints(await replayed.until((b) => flatPoints(b).length >= 500)).map((p) => p.step)).toEqual(steps(0, 499));
    const caughtUp = (u: { id: string; progress: { step: number } | null; checkpoints: { step: number }[] }[]) =>
      u.some((x) => x.id === runId && x.progress?.step === 499 && x.checkpoints.length === 1);
    await byRun.until(caughtUp);
    await byExperiment.until(caughtUp);
    expect((await events.until((e) => e.some((x) => x.type === 'CHECKPOINT_SAVED'))).map((e) => e.type)).toEqual(['CHECKPOINT_SAVED']);

    // Live again: what is written now arrives by NOTIFY as before, with nothing repeated.
    await agent.client.ok(REPORT_LOSS, { r: runId, t: token, p: points(500, 509) });
    expect(flatPoints(await live.until((b) => flatPoints(b).length >= 510)).map((p) => p.step)).toEqual(steps(0, 509));
    expect(flatPoints(await replayed.until((b) => flatPoints(b).length >= 510)).map((p) => p.step)).toEqual(steps(0, 509));
    await agent.complete(runId, token, 'SUCCEEDED');
    // A run completes SUCCEEDED once its final checkpoint is stored: the test agent reports and stores it first.
    expect((await events.until((e) => e.some((x) => x.type === 'SUCCEEDED'))).map((e) => e.type)).toEqual([
      'CHECKPOINT_SAVED',
      'CHECKPOINT_SAVED',
      'CHECKPOINT_STORED',
      'SUCCEEDED',
    ]);
    expect([live, replayed, byRun, byExperiment, events].flatMap((s) => s.errors)).toEqual([]);
    await client.dispose();
  }, 120_000);
});
