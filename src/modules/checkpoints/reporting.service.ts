// Checkpoints and samples reported by the agent holding the run.
import { z } from 'zod';
import { badInput } from '../../graphql/errors.js';
import { parseId } from '../../graphql/ids.js';
import type { Principal } from '../keys/keys.service.js';
import { explainFencedMiss } from '../dispatch/dispatch.service.js';
import { parseInput } from '../validation.js';
import * as store from './checkpoints.store.js';
import type { ServiceDeps } from '../service-deps.js';

const checkpointInput = z.object({
  step: z.number().int().min(0, 'must be 0 or more'),
  path: z.string().trim().min(1, 'must not be empty').max(4096),
  sizeBytes: z.number().min(0, 'must not be negative').nullish(),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
    .transform((s) => s.toLowerCase())
    .nullish(),
  isFinal: z.boolean().nullish(),
  pruned: z.boolean().nullish(),
});

/**
 * A checkpoint the trainer saved (or pruned: "Removing old save"). One fenced statement writes it,
 * its EMA, its event and the announcements (checkpoints.store: reportCheckpoint); only a refusal
 * costs more, to say why.
 */
export async function reportCheckpoint({ db }: ServiceDeps, principal: Principal, args: { runId: string; leaseToken: string; input: unknown }) {
  const runId = parseId(args.runId, 'runId');
  const c = parseInput(checkpointInput, args.input, 'input');
  const fence = { runId, leaseToken: args.leaseToken, apiKeyId: principal.keyId };
  const { runSteps, saved } = await store.reportCheckpoint(db, fence, {
    step: c.step,
    path: c.path,
    sizeBytes: c.sizeBytes ?? null,
    sha256: c.sha256 ?? null,
    isFinal: c.isFinal ?? false,
    pruned: c.pruned ?? false,
  });
  if (saved) return saved;
  // The final checkpoint is the one at the run's last step: exactly one per run.
  if (runSteps != null && c.isFinal && c.step !== runSteps) throw badInput('input.step', `the final checkpoint is at step ${runSteps}, the run's total`);
  return explainFencedMiss(db.orm, principal, runId, args.leaseToken, 'report a checkpoint for');
}

const MAX_PROMPT = 2000;

const sampleInput = z.object({
  step: z.number().int().min(0, 'must be 0 or more'),
  promptIndex: z.number().int().min(0, 'must be 0 or more'),
  // The trainer's prompt as it printed it: cut to size, never refused.
  prompt: z
    .string()
    .nullish()
    .transform((p) => (p != null && p.length > MAX_PROMPT ? p.slice(0, MAX_PROMPT) : p)),
  path: z.string().trim().min(1, 'must not be empty').max(4096),
});

export async function reportSample({ db }: ServiceDeps, principal: Principal, args: { runId: string; leaseToken: string; input: unknown }) {
  const runId = parseId(args.runId, 'runId');
  const s = parseInput(sampleInput, args.input, 'input');
  const fence = { runId, leaseToken: args.leaseToken, apiKeyId: principal.keyId };
  const saved = await store.reportSample(db, fence, { step: s.step, promptIndex: s.promptIndex, prompt: s.prompt ?? null, path: s.path });
  return saved ?? explainFencedMiss(db.orm, principal, runId, args.leaseToken, 'report a sample for');
}
