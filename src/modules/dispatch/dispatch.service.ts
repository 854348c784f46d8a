// The run lifecycle: claim (with long poll), start, heartbeat, complete, cancel, retry.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Executor } from '../../db/client.js';
import { Channels, notify } from '../../live/notify.js';
import { apiError, badInput, forbidden, invalidTransition, leaseLost, notFound } from '../../graphql/errors.js';
import { parseId } from '../../graphql/ids.js';
import { isFinished, type RunOutcome } from '../runs/lifecycle.js';
import type { Principal } from '../keys/keys.service.js';
import { stagedCaptions } from '../captions/captions.service.js';
import { appendEvents } from '../runs/events.store.js';
import { announceRunChanged } from '../../live/run-feeds.js';
import { findRunsByIds, type RunRecord } from '../runs/runs.store.js';
import { trainerConfigOf } from '../runs/runs.service.js';
import { parseInput } from '../validation.js';
import type { Context } from '../../graphql/context.js';
import { isStored } from '../artifacts/artifacts.service.js';
import { cannotActAs } from '../agents/agents.service.js';
import * as store from './dispatch.store.js';
import type { CaptionStrategyRecord } from '../captions/captions.store.js';
import type { DatasetRecord } from '../datasets/datasets.store.js';
import type { ServiceDeps } from '../service-deps.js';

export const MAX_WAIT_SECONDS = 60;
/** A waiting claim re-checks this often even without a NOTIFY: the notification is only a hint. */
export const CLAIM_POLL_MS = 1000;

/**
 * A claimed run as the claim read it. The trainer config and the staged captions are rendered
 * from it only when a client asks for them (dispatch.resolvers): rendering YAML is a large share
 * of a claim's CPU.
 */
export interface Assignment {
  run: RunRecord;
  leaseToken: string;
  attempt: number;
  leaseExpiresAt: Date;
  strategy: CaptionStrategyRecord;
  dataset: DatasetRecord;
  images: store.ClaimedRow['images'];
}

/**
 * The checkpoint the claim chose for the attempt to start from, with signed GET URLs for its bytes
 * and for the optimizer state saved with it (when stored). The claim itself picked a checkpoint
 * whose bytes were stored; one pruned since (a race with pruneArtifacts) leaves nothing to resume.
 */
export async function resumePointOf(ctx: Context, a: Assignment) {
  const checkpointId = a.run.resumedFromCheckpointId;
  if (!checkpointId) return null;
  const checkpoint = await ctx.loaders.checkpoint.load(checkpointId);
  if (!checkpoint) return null;
  const files = await ctx.loaders.artifacts.artifactsByRun.load(checkpoint.runId);
  const signed = async (kind: 'CHECKPOINT' | 'OPTIMIZER_STATE') => {
    const artifact = files.find((f) => f.kind === kind && f.step === checkpoint.step && isStored(f));
    const blob = artifact && (await ctx.loaders.artifacts.blob.load(artifact.sha256));
    const url = artifact && blob ? await ctx.artifacts.signedGet(artifact, blob, ctx.origin) : null;
    return url ? { url, sha256: artifact!.sha256, sizeBytes: artifact!.sizeBytes } : null;
  };
  const [weights, optimizer] = await Promise.all([signed('CHECKPOINT'), signed('OPTIMIZER_STATE')]);
  if (!weights) return null;
  return {
    checkpoint,
    step: checkpoint.step,
    checkpointUrl: weights.url,
    checkpointSha256: weights.sha256,
    checkpointSizeBytes: weights.sizeBytes,
    optimizerStateUrl: optimizer?.url ?? null,
    optimizerStateSha256: optimizer?.sha256 ?? null,
    optimizerStateSizeBytes: optimizer?.sizeBytes ?? null,
  };
}

export const trainerConfigOfAssignment = (a: Assignment) => trainerConfigOf(a.run, a.strategy);
export const captionsOfAssignment = (a: Assignment) => stagedCaptions(a.strategy, a.images);

async function claimOnce(deps: ServiceDeps, principal: Principal, agentId: string): Promise<Assignment | null> {
  const leaseToken = randomBytes(24).toString('base64url');
  const agent = { agentId, apiKeyId: principal.keyId, actsAsAnyAgent: principal.role === 'ADMIN' };
  const [[touched], [claimed]] = await deps.db.batch(store.claimStatements(agent, leaseToken, deps.config.leaseTtlSeconds));
  if (!touched) throw notFound('agentId', 'Agent', agentId);
  if (touched.may_act !== true) throw cannotActAs(agentId);
  if (!claimed) return null;
  const { run, strategy, dataset, images } = store.claimedRow(claimed);
  return { run, leaseToken, attempt: run.attempt, leaseExpiresAt: run.leaseExpiresAt!, strategy, dataset, images };
}

/**
 * claimRun(waitSeconds): tries at once, then again whenever a run is queued anywhere (NOTIFY) or
 * every CLAIM_POLL_MS, until the wait is over or the client has gone. A claim made for a client that
 * left is released at once, so no run stays CLAIMED by nobody.
 */
export async function claimRun(
  deps: ServiceDeps,
  principal: Principal,
  args: { agentId: string; waitSeconds?: number | null },
  signal?: AbortSignal,
): Promise<Assignment | null> {
  const waitSeconds = args.waitSeconds ?? 0;
  if (!Number.isInteger(waitSeconds) || waitSeconds < 0 || waitSeconds > MAX_WAIT_SECONDS) {
    throw badInput('waitSeconds', `must be between 0 and ${MAX_WAIT_SECONDS}`);
  }
  const agentId = parseId(args.agentId, 'agentId');
  const deadline = Date.now() + waitSeconds * 1000;

  let wake: (() => void) | null = null;
  const stopListening = waitSeconds > 0 ? await deps.notifier.on(Channels.runQueued, () => wake?.()) : null;
  const onAbort = () => wake?.();
  signal?.addEventListener('abort', onAbort);
  try {
    for (;;) {
      if (signal?.aborted) return null;
      const assignment = await claimOnce(deps, principal, agentId);
      if (assignment) {
        if (signal?.aborted) {
          await store.releaseClaim(deps.db.orm, assignment.run.id, assignment.leaseToken);
          return null;
        }
        return assignment;
      }
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, CLAIM_POLL_MS));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    stopListening?.();
  }
}

const heldByAnotherKey = (runId: string) => forbidden(`Run ${runId} is held by an agent of another key`);

/**
 * A fenced write matched no row: say why. The lease is checked before ownership, so a zombie whose
 * key differs from the new holder's still learns LEASE_LOST and stops its trainer.
 */
export async function explainFencedMiss(db: Executor, principal: Principal, runId: string, leaseToken: string, action: string): Promise<never> {
  const run = await store.runForDiagnosis(db, runId);
  if (!run) throw notFound('runId', 'Run', runId);
  if (run.lease_token !== leaseToken) throw leaseLost(runId);
  if (run.api_key_id !== principal.keyId) throw heldByAnotherKey(runId);
  throw invalidTransition(`Cannot ${action} a run that is ${run.status}`, run.status);
}

export async function startRun(deps: ServiceDeps, principal: Principal, args: { runId: string; leaseToken: string }) {
  const runId = parseId(args.runId, 'runId');
  const run = await store.startRun(deps.db, { runId, leaseToken: args.leaseToken, apiKeyId: principal.keyId }, deps.config.leaseTtlSeconds);
  return run ?? explainFencedMiss(deps.db.orm, principal, runId, args.leaseToken, 'start');
}

const progressInput = z.object({
  step: z.number().int().min(0, 'must be 0 or more'),
  totalSteps: z.number().int().min(1, 'must be positive').nullish(),
  secondsPerStep: z.number().min(0, 'must be 0 or more').max(86_400).nullish(),
  vramUsedMb: z.number().int().min(0, 'must be 0 or more').nullish(),
  gpuUtilization: z.number().min(0, 'must be between 0 and 100').max(100, 'must be between 0 and 100').nullish(),
});

export async function heartbeat(
  deps: ServiceDeps,
  principal: Principal,
  args: { runId: string; leaseToken: string; progress?: unknown },
) {
  const runId = parseId(args.runId, 'runId');
  const p = args.progress == null ? null : parseInput(progressInput, args.progress, 'progress');
  const beat = await store.heartbeat(
    deps.db,
    { runId, leaseToken: args.leaseToken, apiKeyId: principal.keyId },
    deps.config.leaseTtlSeconds,
    p && {
      step: p.step,
      totalSteps: p.totalSteps ?? null,
      secondsPerStep: p.secondsPerStep ?? null,
      vramUsedMb: p.vramUsedMb ?? null,
      gpuUtilization: p.gpuUtilization ?? null,
    },
  );
  if (!beat) return explainFencedMiss(deps.db.orm, principal, runId, args.leaseToken, 'heartbeat');
  return { leaseExpiresAt: beat.lease_expires_at as Date | string, cancelRequested: beat.status === 'CANCELLING' };
}

export const MAX_ERROR_MESSAGE = 10_000;
export const MAX_LOG_TAIL = 200_000;

/**
 * The message and log tail are the trainer's own words: cut to size, never refused, or a run's
 * outcome would be lost to what its trainer printed. The code is the agent's.
 */
const errorInput = z.object({
  code: z.string().trim().min(1, 'must not be empty').max(100),
  message: z.string().transform((m) => (m.length > MAX_ERROR_MESSAGE ? `${m.slice(0, MAX_ERROR_MESSAGE - 1)}…` : m)),
  logTail: z
    .string()
    .nullish()
    .transform((t) => (t != null && t.length > MAX_LOG_TAIL ? t.slice(-MAX_LOG_TAIL) : t)),
});

export async function completeRun(
  deps: ServiceDeps,
  principal: Principal,
  args: { runId: string; leaseToken: string; outcome: RunOutcome; error?: unknown },
) {
  const runId = parseId(args.runId, 'runId');
  const error = args.error == null ? null : parseInput(errorInput, args.error, 'error');
  if (args.outcome === 'FAILED' && !error) throw badInput('error', 'a FAILED outcome needs an error (code and message)');
  const run = await store.completeRun(
    deps.db,
    { runId, leaseToken: args.leaseToken, apiKeyId: principal.keyId },
    args.outcome,
    error && args.outcome !== 'SUCCEEDED' ? { code: error.code, message: error.message, logTail: error.logTail ?? null } : null,
  );
  if (run) return run;
  // A retry of a completion that already landed (the answer was lost): the final run, not an error.
  const diagnosis = await store.runForDiagnosis(deps.db.orm, runId);
  if (diagnosis?.lease_token === args.leaseToken && isFinished(diagnosis.status)) {
    if (diagnosis.api_key_id !== principal.keyId) throw heldByAnotherKey(runId);
    const [finished] = await findRunsByIds(deps.db.orm, [runId]);
    return finished!;
  }
  if (args.outcome === 'SUCCEEDED' && diagnosis?.lease_token === args.leaseToken && diagnosis.api_key_id === principal.keyId && ['CLAIMED', 'RUNNING', 'CANCELLING'].includes(diagnosis.status)) {
    const final = await store.finalCheckpointStatus(deps.db.orm, runId);
    if (final && !final.stored) throw finalCheckpointNotStored(runId, final.steps);
  }
  return explainFencedMiss(deps.db.orm, principal, runId, args.leaseToken, 'complete');
}

/**
 * A run reads SUCCEEDED only with its final checkpoint's bytes in the store: the agent uploads it
 * (beginRunUpload … completeUpload with kind CHECKPOINT and the run's total steps) and completes
 * afterwards. CONFLICT, since the same call succeeds once the upload is complete.
 */
const finalCheckpointNotStored = (runId: string, steps: number) =>
  apiError(
    'CONFLICT',
    `Run ${runId} cannot be completed as SUCCEEDED before its final checkpoint (step ${steps}) is stored: upload it (beginRunUpload, kind CHECKPOINT, step ${steps}), then complete the run`,
    { field: 'outcome', reason: 'FINAL_CHECKPOINT_NOT_STORED' },
  );

export async function cancelRun(deps: ServiceDeps, id: string) {
  const runId = parseId(id, 'id');
  return deps.db.transaction(async (tx) => {
    const run = await store.cancelRun(tx, runId);
    if (run) {
      const now = run.status === 'CANCELLED';
      await appendEvents(tx, [{ runId, type: now ? 'CANCELLED' : 'CANCEL_REQUESTED', message: now ? 'Cancelled before any agent claimed it' : 'Cancel requested; the agent stops the trainer on its next heartbeat' }]);
      await announceRunChanged(tx, run);
      return run;
    }
    const [existing] = await findRunsByIds(tx, [runId]);
    if (!existing) throw notFound('id', 'Run', id);
    if (existing.status === 'CANCELLING') return existing; // already asked
    throw invalidTransition(`Cannot cancel a run that is ${existing.status}`, existing.status);
  });
}

export async function retryRun(deps: ServiceDeps, id: string) {
  const runId = parseId(id, 'id');
  return deps.db.transaction(async (tx) => {
    const run = await store.retryRun(tx, runId);
    if (run) {
      await appendEvents(tx, [{ runId, type: 'RETRIED', message: `Queued again with ${run.maxAttempts} more attempts` }]);
      await announceRunChanged(tx, run);
      await notify(tx, Channels.runQueued, { count: 1 });
      return run;
    }
    const [existing] = await findRunsByIds(tx, [runId]);
    if (!existing) throw notFound('id', 'Run', id);
    if (existing.importedFrom != null) throw invalidTransition(`Run ${runId} was imported from ${existing.importedFrom}; an imported run is not trained again`, existing.status);
    throw invalidTransition(`Only a FAILED or CANCELLED run can be retried; this one is ${existing.status}`, existing.status);
  });
}
