// The agent's reporting against a real server: batching, the spool while the server is away,
// LEASE_LOST, refused reports, heartbeats.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, type ApiError } from '../../agents/api-client.js';
import { Heartbeater, Reporter } from '../../agents/reporter.js';
import { Spool } from '../../agents/spool.js';
import { startServer } from '../../src/server.js';
import { expireLease, registerAgent, storeFinalCheckpoint, type TestAgent } from '../helpers/agents.js';
import { databaseKinds } from '../helpers/databases.js';
import { createBasics, queueRun, type Basics } from '../helpers/fixtures.js';
import { allLossPoints, runState, waitFor } from '../helpers/gpu-agent.js';
import { startTestServer, testConfig, type TestServer } from '../helpers/server.js';
import { tempDir } from './helpers.js';

const points = (from: number, n: number, loss = (s: number) => 1 / (s + 1)) =>
  Array.from({ length: n }, (_, i) => ({ step: from + i, loss: loss(from + i), lr: 1e-4 }));

/** The loss entries written to a spool file, as point counts, in order. */
function spooledLossBatches(file: string): number[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"op":"loss"'))
    .map((l) => (JSON.parse(l) as { points: unknown[] }).points.length);
}

describe.each(databaseKinds)('reporting on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  let agent: TestAgent;
  let dir: string;
  let cleanup: () => Promise<void>;
  let n = 0;

  beforeAll(async () => {
    t = await startTestServer(kind, { leaseTtlSeconds: 30, reaperIntervalSeconds: 3600 });
    basics = await createBasics(t.admin);
    agent = await registerAgent(t, { gpus: Array.from({ length: 8 }, (_, index) => ({ index, name: 'Fake GPU', memoryMb: 24_000 })) });
    ({ dir, cleanup } = await tempDir('reporter'));
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
    await cleanup?.();
  });

  async function claimed(server = t, client = agent) {
    const run = await queueRun(server.admin, basics, { hyperparameters: { steps: 3000 } });
    const claim = (await client.claim())!;
    expect(claim.run.id).toBe(run.id);
    return { runId: run.id, token: claim.leaseToken };
  }

  function reporter(runId: string, token: string, opts: { server?: string; onLeaseLost?: (err: ApiError) => void; lines?: string[] } = {}) {
    const file = path.join(dir, `spool-${++n}.jsonl`);
    const spool = Spool.create(file, { runId, leaseToken: token, attempt: 1 });
    const api = new ApiClient({ server: opts.server ?? t.url, token: agent.client.key! });
    const r = new Reporter({ api, spool, log: (l) => opts.lines?.push(l), onLeaseLost: opts.onLeaseLost, maxDelayMs: 200 });
    return { r, file, api };
  }

  it('sends loss in batches of at most 1,000 points (the rest after 500 ms), each step once with its latest value', async () => {
    const { runId, token } = await claimed();
    const { r, file } = reporter(runId, token);
    r.start();
    for (const p of points(0, 2500)) r.loss(p);
    r.loss({ step: 2499, loss: 0.125, lr: 1e-4 });
    // Two full batches went out at once; the last 500 wait for the timer.
    expect(spooledLossBatches(file)).toEqual([1000, 1000]);
    await waitFor('the last batch', async () => spooledLossBatches(file).length === 3);
    expect(spooledLossBatches(file)).toEqual([1000, 1000, 500]);
    expect(await r.drain()).toBe('sent');
    r.close();
    const stored = await allLossPoints(t.admin, runId);
    expect(stored.length).toBe(2500);
    expect(stored.at(-1)).toEqual({ step: 2499, loss: 0.125, lr: 1e-4 });
    expect((await runState(t.admin, runId, 'status')).status).toBe('RUNNING');
  });

  it('keeps reports in the spool while the server is away and sends them, in order, when it is back', async () => {
    // A server of its own: this test stops and restarts it on the same port and database.
    const own = await startTestServer(kind, { leaseTtlSeconds: 30, reaperIntervalSeconds: 3600 });
    let server = own.server;
    try {
      const ownBasics = await createBasics(own.admin);
      const ownAgent = await registerAgent(own);
      const run = await queueRun(own.admin, ownBasics, { hyperparameters: { steps: 200 } });
      const claim = (await ownAgent.claim())!;
      const file = path.join(dir, 'outage.jsonl');
      const spool = Spool.create(file, { runId: run.id, leaseToken: claim.leaseToken, attempt: 1 });
      const lines: string[] = [];
      const r = new Reporter({
        api: new ApiClient({ server: own.url, token: ownAgent.client.key! }),
        spool,
        log: (l) => lines.push(l),
        maxDelayMs: 200,
        // As the agent's uploads do before the completion goes: the final checkpoint's bytes.
        beforeComplete: async () => void (await storeFinalCheckpoint(ownAgent.client, run.id, claim.leaseToken)),
      });
      r.start();
      for (const p of points(0, 50)) r.loss(p);
      expect(await r.drain()).toBe('sent');

      await server.close();
      for (const p of points(50, 150)) r.loss(p);
      r.checkpoint({ step: 100, path: '/out/run_000000100.safetensors', sizeBytes: 1234, sha256: 'c'.repeat(64) });
      r.sample({ step: 100, promptIndex: 0, prompt: 'p3r5on on a beach', path: '/out/samples/1718000000000__000000100_0.jpg' });
      r.checkpoint({ step: 200, path: '/out/run.safetensors', sizeBytes: 1234, sha256: 'd'.repeat(64), isFinal: true });
      r.complete('SUCCEEDED', null);
      r.flushLoss();
      await waitFor('the sender to notice', async () => r.sender.offline);
      expect(spool.pending().map((e) => e.op)).toEqual(['loss', 'checkpoint', 'sample', 'checkpoint', 'complete']);

      server = await startServer({ config: testConfig({ ...own.server.app.config, port: own.server.port }), db: own.database.db, log: pino({ level: 'silent' }) });
      expect(await r.drain()).toBe('sent');
      r.close();
      expect(spool.pending()).toEqual([]);
      expect((await allLossPoints(own.admin, run.id)).map((p) => p.step)).toEqual(points(0, 200).map((p) => p.step));
      const detail = await runState(own.admin, run.id, 'status checkpoints { step isFinal } samples { step prompt }');
      expect(detail).toEqual({
        status: 'SUCCEEDED',
        checkpoints: [
          { step: 100, isFinal: false },
          { step: 200, isFinal: true },
        ],
        samples: [{ step: 100, prompt: 'p3r5on on a beach' }],
      });
      expect(lines.some((l) => l.startsWith('server unreachable'))).toBe(true);
      expect(lines.some((l) => l.startsWith('server answers again'))).toBe(true);
    } finally {
      await server.close();
      await own.database.drop();
    }
  });

  it('waits for the uploads before the completion, and completes as FAILED (UPLOAD_FAILED) when the final checkpoint never got stored', async () => {
    for (const store of [true, false]) {
      const { runId, token } = await claimed();
      const file = path.join(dir, `spool-${++n}.jsonl`);
      const spool = Spool.create(file, { runId, leaseToken: token, attempt: 1 });
      const lines: string[] = [];
      let waited = 0;
      const r = new Reporter({
        api: new ApiClient({ server: t.url, token: agent.client.key! }),
        spool,
        log: (l) => lines.push(l),
        maxDelayMs: 200,
        beforeComplete: async () => {
          waited++;
          if (store) await storeFinalCheckpoint(agent.client, runId, token);
        },
      });
      r.start();
      r.complete('SUCCEEDED', null);
      expect(await r.drain()).toBe('sent');
      r.close();
      expect(waited).toBe(1);
      const run = await runState(t.admin, runId, 'status error { code }');
      expect(run).toEqual(store ? { status: 'SUCCEEDED', error: null } : { status: 'FAILED', error: { code: 'UPLOAD_FAILED' } });
      expect(r.sender.completedAs).toBe(run.status);
      if (!store) expect(lines.some((l) => l.includes('does not have the final checkpoint'))).toBe(true);
    }
  });

  it('stops at LEASE_LOST: the spool is abandoned and the runner is told', async () => {
    const { runId, token } = await claimed();
    const lost: ApiError[] = [];
    const { r, file } = reporter(runId, token, { onLeaseLost: (err) => lost.push(err) });
    r.start();
    expect(await r.drain()).toBe('sent');
    await expireLease(t, runId);
    await t.server.reaper.sweep();
    r.loss({ step: 0, loss: 0.5 });
    r.checkpoint({ step: 10, path: '/out/x_000000010.safetensors' });
    expect(await r.drain()).toBe('lease_lost');
    expect(lost.map((e) => e.code)).toEqual(['LEASE_LOST']);
    expect(readFileSync(file, 'utf8')).toContain('"abandoned":"LEASE_LOST');
    r.loss({ step: 1, loss: 0.5 }); // ignored from now on
    r.close();
    expect(Spool.open(file).pending()).toEqual([]);
    expect(await allLossPoints(t.admin, runId)).toEqual([]);
  });

  it('skips a report the server refuses for good, and sends the ones after it', async () => {
    const { runId, token } = await claimed();
    const lines: string[] = [];
    const { r } = reporter(runId, token, { lines });
    r.checkpoint({ step: 10, path: '/out/x.safetensors', isFinal: true }); // the final one is at step 3000
    r.loss({ step: 0, loss: 0.5 });
    expect(await r.drain()).toBe('sent');
    r.close();
    expect(lines.find((l) => l.startsWith('server refused the checkpoint at step 10'))).toContain('BAD_USER_INPUT');
    expect(await allLossPoints(t.admin, runId)).toEqual([{ step: 0, loss: 0.5, lr: null }]);
  });

  it('skips a report the server keeps failing on while it answers other calls, so the reports after it are not held up', async () => {
    // A database that cannot store one particular checkpoint: the server answers INTERNAL_SERVER_ERROR.
    await t.server.db.orm.execute(sql`create or replace function refuse_poison() returns trigger language plpgsql as $$
      begin if new.path like '%poison%' then raise exception 'cannot store %', new.path; end if; return new; end $$`);
    await t.server.db.orm.execute(sql`create trigger refuse_poison before insert on checkpoints for each row execute function refuse_poison()`);
    try {
      const { runId, token } = await claimed();
      const lines: string[] = [];
      const { r, api } = reporter(runId, token, { lines });
      const beats = new Heartbeater({ api, runId, leaseToken: token, intervalMs: 100, progress: async () => null, onCancel: () => {}, onLeaseLost: () => {}, log: () => {} });
      beats.start();
      r.checkpoint({ step: 10, path: '/out/poison_000000010.safetensors' });
      r.checkpoint({ step: 20, path: '/out/fine_000000020.safetensors' });
      r.complete('CANCELLED', null);
      expect(await r.drain()).toBe('sent');
      beats.stop();
      r.close();
      expect(lines.find((l) => l.startsWith('the server fails on the checkpoint at step 10'))).toContain('5 times) while it answers other calls; skipped');
      expect(await runState(t.admin, runId, 'status checkpoints { step }')).toEqual({ status: 'CANCELLED', checkpoints: [{ step: 20 }] });
    } finally {
      await t.server.db.orm.execute(sql`drop trigger refuse_poison on checkpoints`);
    }
  });

  it('delivers a completion whatever its trainer printed: NUL bytes and a 5 MB log tail are cleaned, and an error the server cannot store goes plainer', async () => {
    // A database that cannot store one particular log tail: the server answers INTERNAL_SERVER_ERROR.
    await t.server.db.orm.execute(sql`create or replace function refuse_poison_tail() returns trigger language plpgsql as $$
      begin if new.error_log_tail like '%poison%' then raise exception 'cannot store this log tail'; end if; return new; end $$`);
    await t.server.db.orm.execute(sql`create trigger refuse_poison_tail before update on runs for each row execute function refuse_poison_tail()`);
    try {
      const runs = [await claimed(), await claimed()];
      const lines: string[] = [];
      const sent = runs.map(({ runId, token }) => reporter(runId, token, { lines }));
      const beats = runs.map(({ runId, token }, i) => {
        const b = new Heartbeater({ api: sent[i]!.api, runId, leaseToken: token, intervalMs: 100, progress: async () => null, onCancel: () => {}, onLeaseLost: () => {}, log: () => {} });
        b.start();
        return b;
      });
      const hugeTail = `${'x'.repeat(5 * 1024 * 1024)}\nRuntimeError: CUDA error\u0000 at the end`;
      sent[0]!.r.complete('FAILED', { code: 'TRAINER_ERROR', message: 'CUDA error: an illegal memory access\u0000 was encountered', logTail: hugeTail });
      sent[1]!.r.complete('FAILED', { code: 'OUT_OF_MEMORY', message: 'CUDA out of memory. Tried to allocate 2.00 GiB', logTail: 'step 10 poison\n' });
      for (const { r } of sent) expect(await r.drain()).toBe('sent');
      for (const b of beats) b.stop();
      for (const { r } of sent) r.close();

      const first = await runState(t.admin, runs[0]!.runId, 'status error { code message logTail }');
      expect(first.status).toBe('FAILED');
      expect(first.error.message).toBe('CUDA error: an illegal memory access\uFFFD was encountered');
      expect(first.error.logTail.length).toBe(200_000);
      expect(first.error.logTail.endsWith('RuntimeError: CUDA error\uFFFD at the end')).toBe(true);
      // The server failed on the log tail: the completion went again without it.
      expect(await runState(t.admin, runs[1]!.runId, 'status error { code message logTail }')).toEqual({
        status: 'FAILED',
        error: { code: 'OUT_OF_MEMORY', message: 'CUDA out of memory. Tried to allocate 2.00 GiB', logTail: null },
      });
      expect(lines.some((l) => l.includes('sending it plainer'))).toBe(true);
      expect(lines.some((l) => l.includes('skipped'))).toBe(false);
    } finally {
      await t.server.db.orm.execute(sql`drop trigger refuse_poison_tail on runs`);
    }
  });

  it('heartbeats carry progress and bring back a cancel request', async () => {
    const { runId, token } = await claimed();
    let cancelled = 0;
    const beats = new Heartbeater({
      api: new ApiClient({ server: t.url, token: agent.client.key! }),
      runId,
      leaseToken: token,
      intervalMs: 100,
      progress: async () => ({ step: 7, totalSteps: 3000, secondsPerStep: 1.5, vramUsedMb: 17_000, gpuUtilization: 97 }),
      onCancel: () => cancelled++,
      onLeaseLost: () => {},
      log: () => {},
    });
    beats.start();
    try {
      await waitFor('progress', async () => (await runState(t.admin, runId, 'progress { step totalSteps secondsPerStep }')).progress?.step === 7);
      expect((await runState(t.admin, runId, 'progress { step totalSteps secondsPerStep }')).progress).toEqual({ step: 7, totalSteps: 3000, secondsPerStep: 1.5 });
      await t.admin.ok(`mutation($id: ID!) { cancelRun(id: $id) { status } }`, { id: runId });
      await waitFor('the cancel request', async () => cancelled > 0);
    } finally {
      beats.stop();
    }
  });
});
