// Every row of the run lifecycle's transition table (src/modules/runs/lifecycle.ts), walked through
// the API: a fresh run brought to the row's status the way clients bring it there, the row's event
// done the way a client does it, and the status read back. A row added to the table without a way
// to reach it here fails the test.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUN_STATUSES, sourcesOf, TRANSITIONS, type RunEventName, type RunStatus, type Transition } from '../src/modules/runs/lifecycle.js';
import { databaseKinds } from './helpers/databases.js';
import { createBasics, queueRun, type Basics } from './helpers/fixtures.js';
import { expireLease, getRun, registerAgent, type TestAgent } from './helpers/agents.js';
import { startTestServer, type TestServer } from './helpers/server.js';

interface Held {
  runId: string;
  agent?: TestAgent;
  token?: string;
}

const CANCEL = `mutation($id: ID!) { cancelRun(id: $id) { id status } }`;
const RETRY = `mutation($id: ID!) { retryRun(id: $id) { id status } }`;

/** The one transition a client cannot bring about on purpose; test/claiming.test.ts covers it. */
const NOT_DRIVEN: RunEventName[] = ['releaseClaim'];

describe.each(databaseKinds)('the run lifecycle on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600, retryBackoffSeconds: 0 });
    basics = await createBasics(t.admin);
  });
  afterAll(() => t?.stop());

  /** A new run in `status`, held by its own agent when the status is a held one. */
  async function reach(status: RunStatus, maxAttempts = 3): Promise<Held> {
    // Nothing else may be claimable: leftovers of earlier rows are finished here.
    await t.server.db.orm.execute(sql`update runs set status = 'CANCELLED' where status = 'QUEUED'`);
    const run = await queueRun(t.admin, basics, { maxAttempts });
    if (status === 'QUEUED') return { runId: run.id };
    if (status === 'CANCELLED') {
      await t.admin.ok(CANCEL, { id: run.id });
      return { runId: run.id };
    }
    const agent = await registerAgent(t);
    const claim = (await agent.claim())!;
    expect(claim.run.id).toBe(run.id);
    const held = { runId: run.id, agent, token: claim.leaseToken };
    if (status === 'CLAIMED') return held;
    if (status === 'CANCELLING') {
      await t.admin.ok(CANCEL, { id: run.id });
      return held;
    }
    expect((await agent.start(run.id, claim.leaseToken)).errors).toBeUndefined();
    if (status === 'RUNNING') return held;
    const outcome = await agent.complete(run.id, claim.leaseToken, status, status === 'FAILED' ? { code: 'TRAINER_EXIT', message: 'exit 1' } : undefined);
    expect(outcome.errors).toBeUndefined();
    return held;
  }

  const drive: Record<RunEventName, (row: Transition, run: Held) => Promise<unknown>> = {
    claim: async (_, run) => {
      expect((await (await registerAgent(t)).claim())?.run.id).toBe(run.runId);
    },
    releaseClaim: async () => {
      throw new Error('not driven through the API');
    },
    start: (_, run) => run.agent!.start(run.runId, run.token!),
    complete: (row, run) => run.agent!.complete(run.runId, run.token!, row.to, row.to === 'FAILED' ? { code: 'TRAINER_EXIT', message: 'exit 1' } : undefined),
    cancel: (_, run) => t.admin.ok(CANCEL, { id: run.runId }),
    retry: (_, run) => t.admin.ok(RETRY, { id: run.runId }),
    leaseExpired: async (_, run) => {
      await expireLease(t, run.runId);
      expect(await t.server.reaper.sweep()).toBe(1);
    },
  };

  const rows = TRANSITIONS.filter((row) => !NOT_DRIVEN.includes(row.on)).map((row) => [`${row.on}: ${row.from} → ${row.to}${row.when ? ` (${row.when})` : ''}`, row] as const);

  it.each(rows)('%s', async (_, row) => {
    // A lease that expires with no attempts left fails the run; with attempts left it requeues it.
    const run = await reach(row.from, row.on === 'leaseExpired' && row.to === 'FAILED' ? 1 : 3);
    const result = (await drive[row.on](row, run)) as { errors?: unknown } | undefined;
    expect(result?.errors).toBeUndefined();
    expect((await getRun(t.admin, run.runId)).status).toBe(row.to);
  });

  it('refuses cancelRun and retryRun from every status the table has no such move from', async () => {
    for (const [event, mutation] of [['cancel', CANCEL], ['retry', RETRY]] as const) {
      for (const status of RUN_STATUSES.filter((s) => !sourcesOf(event).includes(s))) {
        const run = await reach(status);
        // A second cancel of a run already being cancelled is the same request, answered as is.
        if (event === 'cancel' && status === 'CANCELLING') expect((await t.admin.ok(mutation, { id: run.runId })).cancelRun.status).toBe('CANCELLING');
        else await t.admin.fails('INVALID_TRANSITION', mutation, { id: run.runId });
        expect((await getRun(t.admin, run.runId)).status, `${event} from ${status}`).toBe(status);
      }
    }
  });
});
