import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import parsePrometheusTextFormat, { type PrometheusFamily, type PrometheusSample } from 'parse-prometheus-text-format';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createBasics, queueRun, type Basics } from './helpers/fixtures.js';
import { claimNewRun, expireLease, registerAgent, REPORT_LOSS } from './helpers/agents.js';
import { collect, wsClient } from './helpers/live.js';
import { dashboardSeries } from './helpers/dashboard.js';

const METRICS_TOKEN = 'metrics-token-for-tests-0123456789';

describe.each(databaseKinds)('GET /metrics on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600, metricsToken: METRICS_TOKEN });
    basics = await createBasics(t.admin);
  });
  afterAll(() => t?.stop());

  const scrape = (key: string | null) => fetch(`${t.url}/metrics`, { headers: key ? { authorization: `Bearer ${key}` } : {} });

  let lastText = '';
  async function families(key: string | null = METRICS_TOKEN) {
    const res = await scrape(key);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    lastText = await res.text();
    const parsed = parsePrometheusTextFormat(lastText);
    return new Map(parsed.map((f) => [f.name, f]));
  }

  /**
   * One labelled series of a histogram. The parser folds a histogram's label sets into one, so it
   * is handed the family's comment lines and that series' lines only.
   */
  function histogramSeries(name: string, label: string): PrometheusSample | undefined {
    const lines = lastText.split('\n').filter((l) => l.startsWith(`# HELP ${name} `) || l.startsWith(`# TYPE ${name} `) || (l.startsWith(name) && l.includes(label)));
    return parsePrometheusTextFormat(`${lines.join('\n')}\n`)[0]?.metrics[0];
  }

  const value = (family: PrometheusFamily | undefined, labels: Record<string, string> = {}) => {
    const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    return sample?.value === undefined ? undefined : Number(sample.value);
  };

  it('answers an ADMIN key and METRICS_TOKEN, and refuses no key, a wrong token and every other role', async () => {
    expect((await scrape(t.admin.key)).status).toBe(200);
    expect((await scrape(METRICS_TOKEN)).status).toBe(200);
    const anonymous = await scrape(null);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as any).errors[0].extensions.code).toBe('UNAUTHENTICATED');
    expect((await scrape(`${METRICS_TOKEN}x`)).status).toBe(401);
    for (const role of ['VIEWER', 'EDITOR', 'AGENT'] as const) {
      const res = await scrape((await t.as(role)).key);
      expect(res.status, role).toBe(403);
      expect(((await res.json()) as any).errors[0].extensions.code, role).toBe('FORBIDDEN');
    }
  });

  it('carries the named series, all loralab_, that follow what the server does', async () => {
    const before = await families();
    const probesBefore = Number(histogramSeries('loralab_graphql_request_duration_seconds', 'operation="MetricsProbe"')?.buckets?.['+Inf'] ?? 0);
    const ingestedBefore = value(before.get('loralab_loss_points_ingested_total')) ?? 0;
    const requeuedBefore = value(before.get('loralab_reaper_actions_total'), { action: 'requeued' }) ?? 0;
    const notFoundBefore = value(before.get('loralab_graphql_errors_total'), { code: 'NOT_FOUND' }) ?? 0;
    const queuedBefore = value(before.get('loralab_runs'), { status: 'QUEUED' })!;
    const runningBefore = value(before.get('loralab_runs'), { status: 'CLAIMED' })!;

    const agent = await registerAgent(t);
    const { runId, token } = await claimNewRun(t, basics, agent);
    // A dashboard watching the run's loss, over WebSocket.
    const ws = wsClient(t.url, t.admin.key);
    const live = collect(ws, `subscription($id: ID!) { runLoss(runId: $id) { points { step } } }`, { id: runId }, (d) => d.runLoss);
    const viewer = await t.as('VIEWER');
    // Subscribed once a report reaches it.
    for (let step = 1; live.items.length === 0; step++) {
      await agent.client.ok(REPORT_LOSS, { r: runId, t: token, p: [{ step, loss: 0.5 }] });
      await new Promise((r) => setTimeout(r, 20));
    }
    const during = await families();
    expect(value(during.get('loralab_subscriptions_active'), { feed: 'runLoss' })).toBe(1);
    expect(value(during.get('loralab_agents'), { status: 'BUSY' })).toBeGreaterThanOrEqual(1);
    live.stop();
    await ws.dispose();

    await agent.client.ok(REPORT_LOSS, { r: runId, t: token, p: Array.from({ length: 50 }, (_, i) => ({ step: 1000 + i, loss: 0.1 })) });
    await queueRun(t.admin, basics);
    await viewer.ok(`query MetricsProbe { experiments(first: 1) { totalCount } }`);
    await t.admin.fails('NOT_FOUND', `mutation($id: ID!) { cancelRun(id: $id) { id } }`, { id: '00000000-0000-0000-0000-000000000000' });
    await expireLease(t, runId);
    expect(await t.server.reaper.sweep()).toBe(1);

    const after = await families();
    for (const name of after.keys()) expect(name).toMatch(/^loralab_/);
    for (const name of [
      'loralab_runs',
      'loralab_queue_oldest_seconds',
      'loralab_agents',
      'loralab_graphql_request_duration_seconds',
      'loralab_http_request_duration_seconds',
      'loralab_graphql_errors_total',
      'loralab_loss_points_ingested_total',
      'loralab_subscriptions_active',
      'loralab_live_lag_seconds',
      'loralab_reaper_actions_total',
      'loralab_artifact_bytes_total',
      'loralab_db_pool',
      'loralab_heavy_requests',
      'loralab_db_connections',
      'loralab_process_cpu_seconds_total',
    ]) {
      expect(after.has(name), name).toBe(true);
    }
    expect(after.get('loralab_graphql_request_duration_seconds')!.type).toBe('HISTOGRAM');
    // The Grafana dashboard asks only for series the server has (the agent's are checked by its test).
    const served = dashboardSeries().filter((name) => !name.startsWith('loralab_agent_'));
    expect(served.length).toBeGreaterThan(10);
    for (const name of served) expect(after.has(name), `dashboard series ${name}`).toBe(true);
    const probe = histogramSeries('loralab_graphql_request_duration_seconds', 'operation="MetricsProbe"');
    // The parser keeps a labelled series' buckets (not its _count): +Inf counts every observation.
    // Counters are the process's, shared by the servers of this file.
    expect(Number(probe?.buckets?.['+Inf']) - probesBefore).toBe(1);
    expect(Object.keys(probe!.buckets!).length).toBeGreaterThan(5);
    expect(value(after.get('loralab_graphql_errors_total'), { code: 'NOT_FOUND' })! - notFoundBefore).toBe(1);
    expect(value(after.get('loralab_loss_points_ingested_total'))! - ingestedBefore).toBeGreaterThanOrEqual(51);
    expect(value(after.get('loralab_reaper_actions_total'), { action: 'requeued' })! - requeuedBefore).toBe(1);
    expect(value(after.get('loralab_runs'), { status: 'QUEUED' })! - queuedBefore).toBe(2); // the requeued one and the new one
    expect(value(after.get('loralab_runs'), { status: 'CLAIMED' })).toBe(runningBefore);
    expect(value(after.get('loralab_queue_oldest_seconds'))).toBeGreaterThanOrEqual(0);
    expect(value(after.get('loralab_subscriptions_active'), { feed: 'runLoss' })).toBe(0);
    expect(Number(after.get('loralab_live_lag_seconds')!.metrics[0]!.count)).toBeGreaterThan(0); // unlabelled: _count kept
    expect(value(after.get('loralab_db_pool'), { state: 'size' })).toBeGreaterThanOrEqual(1);
  });
});
