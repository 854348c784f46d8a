import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { databaseKinds, TEST_DATABASE_URL, createPostgresDatabase } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createBasics, createExperiment, queueRun, type Basics } from './helpers/fixtures.js';
import { claimNewRun, registerAgent, type TestAgent, REPORT_LOSS } from './helpers/agents.js';
import { collect, flatPoints, wsClient } from './helpers/live.js';
import { openDatabase } from '../src/db/client.js';
import { Channels } from '../src/live/notify.js';

const report = REPORT_LOSS;
const runLoss = `subscription($id: ID!, $since: Int) { runLoss(runId: $id, sinceStep: $since) { runId points { step loss } } }`;
const points = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => ({ step: from + i, loss: 1 / (from + i + 1) }));
const steps = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe.each(databaseKinds)('live subscriptions on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  let agent: TestAgent;
  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600 });
    basics = await createBasics(t.admin);
    agent = await registerAgent(t, { gpus: Array.from({ length: 8 }, (_, index) => ({ index, name: 'A', memoryMb: 24_000 })) });
  });
  afterAll(() => t?.stop());

  const claimed = () => claimNewRun(t, basics, agent);

  it('replays points after sinceStep, then streams live ones, with no gap and no duplicate while points arrive', async () => {
    const { runId, token } = await claimed();
    await agent.client.ok(report, { r: runId, t: token, p: points(0, 1999) });
    const viewer = await t.as('VIEWER');
    const client = wsClient(t.url, viewer.key);
    // Reporting goes on while the subscriber replays.
    const reporting = (async () => {
      for (let from = 2000; from < 4000; from += 100) await agent.client.ok(report, { r: runId, t: token, p: points(from, from + 99) });
    })();
    const sub = collect(client, runLoss, { id: runId, since: 499 }, (d) => d.runLoss);
    await reporting;
    const received = flatPoints(await sub.until((b) => flatPoints(b).length >= 3500));
    await new Promise((r) => setTimeout(r, 200)); // anything extra would be a duplicate
    expect(flatPoints(sub.items).map((p) => p.step)).toEqual(steps(3500, 500));
    expect(received[0]).toEqual({ step: 500, loss: 1 / 501 });
    sub.stop();
    await client.dispose();
  });

  it('delivers a batch whose notification was lost after its commit when the agent sends it again, before the next one', async () => {
    const { runId, token } = await claimed();
    const viewer = await t.as('VIEWER');
    const client = wsClient(t.url, viewer.key);
    const live = collect(client, runLoss, { id: runId }, (d) => d.runLoss);
    await new Promise((r) => setTimeout(r, 200)); // the subscription is set up
    await agent.client.ok(report, { r: runId, t: token, p: points(0, 9) });
    await live.until((b) => flatPoints(b).length === 10);
    // The server stops between the next batch's commit and its NOTIFY: the batch is written, no
    // subscriber hears of it, and the agent gets no answer.
    const db = t.database.db;
    const notify = db.notifyAfterCommit;
    db.notifyAfterCommit = async () => {
      db.notifyAfterCommit = notify;
      throw new Error('the server stopped after the commit');
    };
    expect((await agent.client.request(report, { r: runId, t: token, p: points(10, 19) })).errors).toBeDefined();
    // The agent sends it again, as it does every batch it got no answer for: all duplicates now.
    expect((await agent.client.ok(report, { r: runId, t: token, p: points(10, 19) })).reportLoss).toEqual({ accepted: 0, duplicates: 10 });
    await agent.client.ok(report, { r: runId, t: token, p: points(20, 29) });
    expect(flatPoints(await live.until((b) => flatPoints(b).length >= 30, 10_000)).map((p) => p.step)).toEqual(steps(30));
    await new Promise((r) => setTimeout(r, 200)); // anything extra would be a duplicate
    expect(flatPoints(live.items).map((p) => p.step)).toEqual(steps(30));
    await client.dispose();
    // The agent's GPUs are for the other tests' runs.
    expect((await agent.complete(runId, token, 'FAILED', { code: 'TEST', message: 'done' })).errors).toBeUndefined();
  });

  it('replays everything with sinceStep -1 and nothing without sinceStep', async () => {
    const { runId, token } = await claimed();
    await agent.client.ok(report, { r: runId, t: token, p: points(0, 9) });
    const client = wsClient(t.url, t.admin.key);
    const all = collect(client, runLoss, { id: runId, since: -1 }, (d) => d.runLoss);
    const live = collect(client, runLoss, { id: runId }, (d) => d.runLoss);
    await all.until((b) => flatPoints(b).length === 10);
    await new Promise((r) => setTimeout(r, 100)); // both subscriptions are set up
    await agent.client.ok(report, { r: runId, t: token, p: points(10, 14) });
    expect(flatPoints(await live.until((b) => flatPoints(b).length === 5)).map((p) => p.step)).toEqual([10, 11, 12, 13, 14]);
    expect(flatPoints(await all.until((b) => flatPoints(b).length === 15)).map((p) => p.step)).toEqual(steps(15));
    await client.dispose();
  });

  it('streams the same fields whether a batch came inside the notification or was read back', async () => {
    const { runId, token } = await claimed();
    const client = wsClient(t.url, t.admin.key);
    const full = `subscription($id: ID!) { runLoss(runId: $id) { points { step loss lr recordedAt } } }`;
    const live = collect(client, full, { id: runId }, (d) => d.runLoss);
    await new Promise((r) => setTimeout(r, 200)); // the subscription is set up
    await agent.client.ok(report, { r: runId, t: token, p: points(0, 2).map((p) => ({ ...p, lr: 2e-4 })) });
    await agent.client.ok(report, { r: runId, t: token, p: points(3, 302) });
    const got = flatPoints(await live.until((b) => flatPoints(b).length === 303));
    const stored = (await t.admin.ok(`query($id: ID!) { run(id: $id) { lossPoints(first: 1000) { step loss lr recordedAt } } }`, { id: runId })).run.lossPoints;
    expect(got).toEqual(stored);
    live.stop();
    await client.dispose();
  });

  it('gives each of many subscribers of one run what its own query asked for', async () => {
    const { runId, token } = await claimed();
    const other = await claimed();
    const client = wsClient(t.url, t.admin.key);
    // Live events are executed once per distinct query text, operation and variables: these differ in each.
    const stepsOnly = collect(client, `subscription($id: ID!) { runLoss(runId: $id) { points { step } } }`, { id: runId }, (d) => d.runLoss);
    const withLoss = [0, 1].map(() => collect(client, runLoss, { id: runId }, (d) => d.runLoss));
    const otherRun = collect(client, runLoss, { id: other.runId }, (d) => d.runLoss);
    await new Promise((r) => setTimeout(r, 200)); // every subscription is set up
    // Small batches travel inside the NOTIFY; a large one is read back from the table: both arrive.
    await agent.client.ok(report, { r: runId, t: token, p: points(0, 4) });
    await agent.client.ok(report, { r: runId, t: token, p: points(5, 404) });
    await agent.client.ok(report, { r: other.runId, t: other.token, p: points(100, 101) });
    expect(flatPoints(await stepsOnly.until((b) => flatPoints(b).length === 405))).toEqual(steps(405).map((step) => ({ step })));
    for (const sub of withLoss) {
      const got = await sub.until((b) => flatPoints(b).length === 405);
      expect(got.every((b) => b.runId === runId)).toBe(true);
      expect(flatPoints(got)).toEqual(points(0, 404));
    }
    const otherGot = await otherRun.until((b) => flatPoints(b).length === 2);
    expect(otherGot.every((b) => b.runId === other.runId)).toBe(true);
    expect(flatPoints(otherGot)).toEqual(points(100, 101));
    for (const sub of [stepsOnly, ...withLoss, otherRun]) sub.stop();
    await client.dispose();
  });

  it('pushes run updates on status and progress, and run events', async () => {
    const run = await queueRun(t.admin, basics);
    const client = wsClient(t.url, t.admin.key);
    const updates = collect(client, `subscription($id: ID!) { runUpdated(runId: $id) { id status progress { step } lossSummary { points } } }`, { id: run.id }, (d) => d.runUpdated);
    const byExperiment = collect(client, `subscription($id: ID!) { runUpdated(experimentId: $id) { id status } }`, { id: basics.experimentId }, (d) => d.runUpdated);
    const events = collect(client, `subscription($id: ID!) { runEvents(runId: $id) { type runId } }`, { id: run.id }, (d) => d.runEvents);
    await new Promise((r) => setTimeout(r, 200));
    const claim = (await agent.claim())!;
    expect(claim.run.id).toBe(run.id);
    await agent.start(run.id, claim.leaseToken);
    await agent.client.ok(report, { r: run.id, t: claim.leaseToken, p: points(0, 9) });
    await agent.heartbeat(run.id, claim.leaseToken, { step: 10, totalSteps: 3000 });
    // runUpdated pushes the run as it is when the update is executed: a heartbeat and a completion that
    // arrive together are one update (a SUCCEEDED run's progress is its total), so see the heartbeat first.
    await updates.until((u) => u.some((x) => x.progress?.step === 10 && x.lossSummary.points === 10));
    await agent.complete(run.id, claim.leaseToken, 'SUCCEEDED');
    const seen = await updates.until((u) => u.some((x) => x.status === 'SUCCEEDED'));
    expect(seen.find((u) => u.status === 'SUCCEEDED')?.progress?.step).toBe(3000);
    expect(seen.map((u) => u.status)).toContain('RUNNING');
    await byExperiment.until((u) => u.some((x) => x.id === run.id && x.status === 'SUCCEEDED'));
    const types = (await events.until((e) => e.some((x) => x.type === 'SUCCEEDED'))).map((e) => e.type);
    // The final checkpoint is reported and stored before a run may succeed.
    expect(types).toEqual(['CLAIMED', 'STARTED', 'CHECKPOINT_SAVED', 'CHECKPOINT_STORED', 'SUCCEEDED']);
    await client.dispose();
  });

  it("announces each of a sweep's runs to runUpdated(experimentId), with one statement for all of them", async () => {
    const experimentId = await createExperiment(t.admin, { name: 'announced sweep' });
    const sweep = async (grid: Record<string, unknown>) => {
      const before = t.server.db.stats.statements;
      const { queueSweep } = await t.admin.ok(`mutation($input: QueueSweepInput!) { queueSweep(input: $input) { id } }`, {
        input: { base: { experimentId, datasetId: basics.datasetId, captionStrategyId: basics.strategyId }, grid },
      });
      return { ids: queueSweep.map((r: { id: string }) => r.id as string).sort(), statements: t.server.db.stats.statements - before };
    };
    // Six times the runs, the same statements: nothing is sent per run (no subscriber reads yet).
    const small = await sweep({ rank: [4, 8] });
    const large = await sweep({ rank: [4, 8, 16, 32], learningRate: [1e-4, 2e-4, 4e-4] });
    expect(large.statements).toBe(small.statements);

    const client = wsClient(t.url, t.admin.key);
    const byExperiment = collect(client, `subscription($id: ID!) { runUpdated(experimentId: $id) { id status } }`, { id: experimentId }, (d) => d.runUpdated);
    await new Promise((r) => setTimeout(r, 200));
    const { ids } = await sweep({ rank: [64, 128], steps: [500, 1000, 1500] });
    const seen = await byExperiment.until((u) => new Set(u.map((x) => x.id)).size === ids.length);
    expect([...new Set(seen.map((x) => x.id))].sort()).toEqual(ids);
    expect(seen.every((x) => x.status === 'QUEUED')).toBe(true);
    await client.dispose();
    // Later tests claim what they queue: none of these may be in the way.
    for (const id of [...small.ids, ...large.ids, ...ids]) await t.admin.ok(`mutation($id: ID!) { cancelRun(id: $id) { id } }`, { id });
  });

  it('needs a key in connectionParams', async () => {
    const { runId } = await claimed();
    for (const key of [null, 'llk_not_a_key']) {
      const client = wsClient(t.url, key);
      const sub = collect(client, runLoss, { id: runId }, (d) => d.runLoss);
      await expect(sub.until(() => false, 5000)).rejects.toThrow(/subscription ended/);
      await client.dispose();
    }
  });

  it('answers a subscribe it cannot parse or validate with an error for that operation, and keeps the socket and its other subscriptions', async () => {
    const { runId, token } = await claimed();
    const client = wsClient(t.url, t.admin.key);
    let closes = 0;
    client.on('closed', () => closes++);
    const healthy = collect(client, runLoss, { id: runId }, (d) => d.runLoss);
    await new Promise((r) => setTimeout(r, 200)); // the subscription is set up
    const bad = [
      `subscription { runLoss(runId: "${runId}") { points { step }`, // unterminated
      `subscription { runLoss(runId: "${runId}") { ...A } } fragment A on LossBatch { ...B } fragment B on LossBatch { ...A }`,
      `subscription { runLoss(runId: "${runId}") { nope } }`,
      `subscription { runLoss(runId: "${runId}") { ${'points { '.repeat(20)} step ${'} '.repeat(20)} } }`,
    ];
    for (const query of bad) {
      const sub = collect(client, query, {}, (d) => d);
      await expect(sub.until(() => false, 5000)).rejects.toThrow(/subscription ended/);
      expect(JSON.stringify(sub.errors)).not.toMatch(/Maximum call stack|Internal/);
    }
    await agent.client.ok(report, { r: runId, t: token, p: points(0, 4) });
    expect(flatPoints(await healthy.until((b) => flatPoints(b).length === 5)).map((p) => p.step)).toEqual(steps(5));
    expect(closes).toBe(0);
    await client.dispose();
    await agent.complete(runId, token, 'CANCELLED');
  });

  it('answers NOT_FOUND for a run that does not exist', async () => {
    const client = wsClient(t.url, t.admin.key);
    const sub = collect(client, runLoss, { id: '00000000-0000-0000-0000-000000000000' }, (d) => d.runLoss);
    await expect(sub.until(() => false, 5000)).rejects.toThrow(/NOT_FOUND/);
    await client.dispose();
  });

  it('is not slowed by a stalled subscriber, which is dropped when it falls too far behind', async () => {
    const { runId, token } = await claimed();
    // A subscriber that stops reading from its socket.
    const stalled = new WebSocket(`${t.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    await new Promise((r) => stalled.once('open', r));
    stalled.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${t.admin.key}` } }));
    await new Promise((r) => stalled.once('message', r));
    stalled.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: runLoss, variables: { id: runId } } }));
    await new Promise((r) => setTimeout(r, 200));
    (stalled as unknown as { _socket: { pause(): void } })._socket.pause();

    const client = wsClient(t.url, t.admin.key);
    const healthy = collect(client, runLoss, { id: runId }, (d) => d.runLoss);
    await new Promise((r) => setTimeout(r, 200));
    // 60 batches of 5,000 points (~12 MB of live data) while one subscriber reads nothing.
    for (let i = 0; i < 60; i++) await agent.client.ok(report, { r: runId, t: token, p: points(i * 5000, i * 5000 + 4999) });
    await healthy.until((b) => flatPoints(b).length === 300_000, 90_000);
    expect(t.server.app.feeds.loss.size).toBe(1); // the stalled one was dropped; the healthy one stays
    stalled.terminate();
    await client.dispose();
  }, 150_000);

  it('leaves no listener behind after 100 subscribe/unsubscribe cycles', async () => {
    const { runId } = await claimed();
    const feeds = t.server.app.feeds;
    const notifierListeners = t.server.app.notifier.listenerCount(Channels.lossReported);
    const client = wsClient(t.url, t.admin.key);
    for (let i = 0; i < 100; i++) {
      const sub = collect(client, runLoss, { id: runId, since: -1 }, (d) => d.runLoss);
      await new Promise((r) => setTimeout(r, 5));
      sub.stop();
    }
    await client.dispose();
    for (let i = 0; i < 50 && feeds.loss.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(feeds.loss.size).toBe(0);
    expect(feeds.runs.size).toBe(0);
    expect(t.server.app.notifier.listenerCount(Channels.lossReported)).toBe(notifierListeners);
  });
});

describe.skipIf(!TEST_DATABASE_URL)('live data across two servers on one postgres', () => {
  it('a subscriber on one server sees points reported to the other', async () => {
    const pg = await createPostgresDatabase();
    const dbs = await Promise.all([0, 1].map(() => openDatabase({ kind: 'postgres', url: pg.url })));
    const shared = { reaperIntervalSeconds: 3600, adminKey: `llk_test_shared_${Date.now()}_0123456789` };
    const [a, b] = await Promise.all(dbs.map((db) => startTestServer('postgres', shared, { database: { db, drop: () => db.close() } })));
    try {
      const basics = await createBasics(a!.admin);
      const run = await queueRun(a!.admin, basics);
      const agentOnB = await registerAgent(b!);
      const claim = (await agentOnB.claim())!;
      const client = wsClient(a!.url, a!.admin.key);
      const sub = collect(client, runLoss, { id: run.id, since: -1 }, (d) => d.runLoss);
      const updates = collect(client, `subscription($id: ID!) { runUpdated(runId: $id) { status } }`, { id: run.id }, (d) => d.runUpdated);
      await new Promise((r) => setTimeout(r, 300));
      for (let from = 0; from < 1000; from += 250) await agentOnB.client.ok(report, { r: run.id, t: claim.leaseToken, p: points(from, from + 249) });
      await agentOnB.start(run.id, claim.leaseToken);
      expect(flatPoints(await sub.until((x) => flatPoints(x).length === 1000)).map((p) => p.step)).toEqual(steps(1000));
      await updates.until((u) => u.some((x) => x.status === 'RUNNING'));
      await client.dispose();
    } finally {
      await Promise.all([a?.server.close(), b?.server.close()]);
      await Promise.all(dbs.map((db) => db.close()));
      await pg.drop();
    }
  });
});
