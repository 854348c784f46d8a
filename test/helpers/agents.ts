// Agents as the protocol sees them: an AGENT key, a registration, and the lease-fenced calls.
import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { GqlClient, GqlResult, TestServer } from './server.js';
import { queueRun, type Basics } from './fixtures.js';

export const REPORT_LOSS = `mutation($r: ID!, $t: String!, $p: [LossPointInput!]!) { reportLoss(runId: $r, leaseToken: $t, points: $p) { accepted duplicates } }`;

export const RUN_FIELDS = `id status attempt maxAttempts agent { id name } startedAt finishedAt gpuSeconds costUsd error { code message logTail }`;

export interface TestAgent {
  client: GqlClient;
  id: string;
  claim(waitSeconds?: number): Promise<{ run: { id: string; name: string; status: string }; leaseToken: string; attempt: number; trainerConfig: string; captions: { fileName: string; text: string }[] } | null>;
  start(runId: string, leaseToken: string): Promise<GqlResult>;
  heartbeat(runId: string, leaseToken: string, progress?: Record<string, unknown>): Promise<GqlResult>;
  complete(runId: string, leaseToken: string, outcome: string, error?: Record<string, unknown>): Promise<GqlResult>;
}

export async function registerAgent(
  t: TestServer,
  input: { name?: string; gpus?: { index: number; name: string; memoryMb: number }[]; labels?: string[]; hourlyCostUsd?: number } = {},
  client?: GqlClient,
): Promise<TestAgent> {
  const agentClient = client ?? (await t.as('AGENT'));
  const { registerAgent } = await agentClient.ok(
    `mutation($input: RegisterAgentInput!) { registerAgent(input: $input) { id } }`,
    {
      input: {
        name: input.name ?? `agent-${Math.random().toString(36).slice(2, 8)}`,
        hostname: 'gpu-box',
        gpus: input.gpus ?? [{ index: 0, name: 'NVIDIA GeForce RTX 4090', memoryMb: 24564 }],
        labels: input.labels ?? [],
        hourlyCostUsd: input.hourlyCostUsd,
        version: 'test',
      },
    },
  );
  const id = registerAgent.id as string;
  return {
    client: agentClient,
    id,
    async claim(waitSeconds = 0) {
      const data = await agentClient.ok(
        `mutation($id: ID!, $wait: Int) { claimRun(agentId: $id, waitSeconds: $wait) { run { id name status } leaseToken attempt leaseExpiresAt trainerConfig captions { fileName text } } }`,
        { id, wait: waitSeconds },
      );
      return data.claimRun;
    },
    start: (runId, leaseToken) =>
      agentClient.request(`mutation($r: ID!, $t: String!) { startRun(runId: $r, leaseToken: $t) { ${RUN_FIELDS} } }`, { r: runId, t: leaseToken }),
    heartbeat: (runId, leaseToken, progress) =>
      agentClient.request(
        `mutation($r: ID!, $t: String!, $p: ProgressInput) { heartbeat(runId: $r, leaseToken: $t, progress: $p) { leaseExpiresAt cancelRequested } }`,
        { r: runId, t: leaseToken, p: progress ?? null },
      ),
    async complete(runId, leaseToken, outcome, error) {
      // An agent completes SUCCEEDED once the final checkpoint is stored; so does this one.
      if (outcome === 'SUCCEEDED') await storeFinalCheckpoint(agentClient, runId, leaseToken);
      return agentClient.request(
        `mutation($r: ID!, $t: String!, $o: RunOutcome!, $e: RunErrorInput) { completeRun(runId: $r, leaseToken: $t, outcome: $o, error: $e) { ${RUN_FIELDS} } }`,
        { r: runId, t: leaseToken, o: outcome, e: error ?? null },
      );
    },
  };
}

/**
 * What an agent does before it completes a run as SUCCEEDED: reports the final checkpoint (at the
 * run's total steps) and uploads its bytes. Refusals (a lost lease, a finished run) are left for
 * completeRun to answer. Returns the bytes stored, or null.
 */
export async function storeFinalCheckpoint(agentClient: GqlClient, runId: string, leaseToken: string): Promise<Buffer | null> {
  const { run } = await agentClient.request(`query($id: ID!) { run(id: $id) { name hyperparameters { steps } } }`, { id: runId }).then((r) => r.data ?? { run: null });
  if (!run) return null;
  const step = run.hyperparameters.steps as number;
  const bytes = Buffer.from(`final checkpoint of run ${runId}\n`);
  const fileName = `${run.name}.safetensors`.replace(/[^\w.-]+/g, '_');
  const reported = await agentClient.request(`mutation($r: ID!, $t: String!, $i: CheckpointInput!) { reportCheckpoint(runId: $r, leaseToken: $t, input: $i) { id } }`, {
    r: runId,
    t: leaseToken,
    i: { step, path: `/work/output/${fileName}`, sizeBytes: bytes.length, sha256: sha256(bytes), isFinal: true },
  });
  if (reported.errors?.length) return null;
  const begun = await agentClient.request(
    `mutation($r: ID!, $t: String!, $i: ArtifactUploadInput!) { beginRunUpload(runId: $r, leaseToken: $t, input: $i) { artifact { id } alreadyStored parts { number url } } }`,
    { r: runId, t: leaseToken, i: { kind: 'CHECKPOINT', fileName, step, sizeBytes: bytes.length, sha256: sha256(bytes) } },
  );
  if (begun.errors?.length) return null;
  const upload = begun.data.beginRunUpload;
  if (upload.alreadyStored) return bytes;
  const parts = [];
  for (const part of upload.parts as { number: number; url: string }[]) {
    const res = await fetch(part.url, { method: 'PUT', body: new Uint8Array(bytes) });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`PUT of the final checkpoint: HTTP ${res.status}`);
    parts.push({ number: part.number, etag: res.headers.get('etag')! });
  }
  await agentClient.ok(`mutation($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { id } }`, { a: upload.artifact.id, p: parts });
  return bytes;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Queues a run and has `agent` claim it (the agent must hold nothing else that fits): the run a test reports to. */
export async function claimNewRun(t: TestServer, basics: Basics, agent: TestAgent) {
  const run = await queueRun(t.admin, basics);
  const claim = await agent.claim();
  if (claim?.run.id !== run.id) throw new Error(`expected to claim run ${run.id}, got ${claim?.run.id ?? 'nothing'}`);
  return { runId: run.id as string, token: claim.leaseToken };
}

/** Moves a run's lease into the past, as if its agent had stopped heartbeating long ago. */
export async function expireLease(t: TestServer, runId: string) {
  await t.server.db.orm.execute(sql`update runs set lease_expires_at = now() - interval '1 second' where id = ${runId}`);
}

/** Moves a requeued run's backoff into the past. */
export async function endBackoff(t: TestServer, runId: string) {
  await t.server.db.orm.execute(sql`update runs set not_before = now() - interval '1 second' where id = ${runId}`);
}

export async function getRun(client: GqlClient, id: string, fields = RUN_FIELDS) {
  const { run } = await client.ok(`query($id: ID!) { run(id: $id) { ${fields} } }`, { id });
  return run;
}

export async function eventTypes(client: GqlClient, id: string): Promise<string[]> {
  const { run } = await client.ok(`query($id: ID!) { run(id: $id) { events(first: 100) { type } } }`, { id });
  return run.events.map((e: { type: string }) => e.type).reverse();
}
