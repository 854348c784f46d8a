// The agent's own Prometheus endpoint (--metrics-port), read while it trains a run.
import net from 'node:net';
import path from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExperiment, createStrategy } from './helpers/fixtures.js';
import { agentProcess, createDatasetAt, killAgentProcesses, tempFolder, waitFor, waitForStatus } from './helpers/gpu-agent.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { dashboardSeries } from './helpers/dashboard.js';

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });

describe('the agent on --metrics-port', () => {
  let t: TestServer;
  let root: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    t = await startTestServer('pglite', { leaseTtlSeconds: 30 });
    ({ dir: root, cleanup } = await tempFolder('agent-metrics'));
  }, 60_000);
  afterAll(async () => {
    killAgentProcesses();
    await t?.stop();
    await cleanup?.();
  });

  it('serves Prometheus text with its step count, running runs, backlog and spool size, to anyone who reaches the port', { timeout: 120_000 }, async () => {
    const [experimentId, datasetId, captionStrategyId] = await Promise.all([
      createExperiment(t.admin),
      createDatasetAt(t.admin, path.join(root, 'dataset')),
      createStrategy(t.admin, { kind: 'TRIGGER_ONLY', triggerWord: 'p3r5on' }),
    ]);
    const { queueRun: run } = await t.admin.ok(`mutation($input: QueueRunInput!) { queueRun(input: $input) { id } }`, {
      input: { experimentId, datasetId, captionStrategyId, hyperparameters: { steps: 60, saveEvery: 30, sampleEvery: 30, extra: { loralab_fake_trainer: { stepMs: 60 } } } },
    });
    const port = await freePort();
    const key = (await t.as('AGENT')).key!;
    const agent = agentProcess(
      ['--server', t.url, '--token', key, '--work-dir', path.join(root, 'work'), '--fake-trainer', '--gpus', '0:Fake GPU:24000', '--claim-wait-seconds', '1', '--metrics-port', String(port)],
    );
    const scrape = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      const families = parsePrometheusTextFormat(await res.text());
      const value = (name: string, labels: Record<string, string> = {}) => {
        const sample = families.find((f) => f.name === name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
        return sample?.value === undefined ? undefined : Number(sample.value);
      };
      return { families, value };
    };

    // Mid-run: steps counted, one run active, its spool on disk.
    const during = await waitFor(
      'the agent to report steps',
      async () => {
        const m = await scrape().catch(() => undefined);
        return m && (m.value('loralab_agent_trainer_steps_total') ?? 0) >= 5 && m.value('loralab_agent_runs_active') === 1 ? m : undefined;
      },
      60_000,
    );
    for (const f of during.families) expect(f.name).toMatch(/^loralab_agent_/);
    expect(during.value('loralab_agent_upload_backlog', { kind: 'reports' })).toBeGreaterThanOrEqual(0);
    expect(during.value('loralab_agent_spool_bytes')).toBeGreaterThan(0);
    expect(during.families.some((f) => f.name === 'loralab_agent_process_cpu_seconds_total')).toBe(true);
    for (const name of dashboardSeries().filter((n) => n.startsWith('loralab_agent_'))) {
      expect(during.families.some((f) => f.name === name), `dashboard series ${name}`).toBe(true);
    }

    await waitForStatus(t.admin, run.id, ['SUCCEEDED', 'FAILED', 'CANCELLED']);
    const after = await waitFor('the run to leave the agent', async () => {
      const m = await scrape();
      return m.value('loralab_agent_runs_active') === 0 ? m : undefined;
    });
    expect(after.value('loralab_agent_trainer_steps_total')).toBe(60);
    expect(after.value('loralab_agent_upload_backlog', { kind: 'reports' })).toBe(0);
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);

    agent.child.kill('SIGTERM');
    expect((await agent.exited).code, agent.output()).toBe(0);
  });
});
