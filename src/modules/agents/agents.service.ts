import { z } from 'zod';
import type { Executor } from '../../db/client.js';
import { badInput, forbidden, notFound } from '../../graphql/errors.js';
import { parseId } from '../../graphql/ids.js';
import type { Principal } from '../keys/keys.service.js';
import { name, parseInput } from '../validation.js';
import * as store from './agents.store.js';
import type { ServiceDeps } from '../service-deps.js';
import type { ReadScope } from './read-scope.js';

const registerInput = z.object({
  name,
  hostname: z.string().trim().max(255).nullish(),
  gpus: z
    .array(
      z.object({
        index: z.number().int().min(0, 'must be 0 or more').max(255),
        name: z.string().trim().min(1, 'must not be empty').max(200),
        memoryMb: z.number().int().min(1, 'must be positive').max(10_000_000),
      }),
    )
    .min(1, 'an agent needs at least one GPU')
    .max(64),
  labels: z.array(z.string().trim().min(1, 'a label must not be empty').max(100)).max(50).nullish(),
  hourlyCostUsd: z.number().min(0, 'must not be negative').max(10_000).nullish(),
  version: z.string().max(100).nullish(),
});

export async function registerAgent({ db: { orm: db } }: ServiceDeps, principal: Principal, input: unknown) {
  const a = parseInput(registerInput, input, 'input');
  const indexes = new Set<number>();
  a.gpus.forEach((gpu, i) => {
    if (indexes.has(gpu.index)) throw badInput(`input.gpus.${i}.index`, `GPU ${gpu.index} appears twice`);
    indexes.add(gpu.index);
  });
  return store.upsertAgent(db, {
    apiKeyId: principal.keyId,
    name: a.name,
    hostname: a.hostname ?? null,
    gpus: a.gpus,
    // A run's minVramMb must fit on one GPU: the largest one decides what the agent can hold.
    maxGpuMemoryMb: Math.max(...a.gpus.map((g) => g.memoryMb)),
    gpuCount: a.gpus.length,
    labels: [...new Set(a.labels ?? [])],
    hourlyCostUsd: a.hourlyCostUsd ?? null,
    version: a.version ?? null,
  });
}

/** FORBIDDEN for a key acting as an agent it did not register. */
export const cannotActAs = (agentId: string) => forbidden(`This key did not register agent ${agentId} and cannot act as it`);

/** The agent, when the calling key may act as it: AGENT keys only as the agents they registered. */
export async function requireActingAgent(db: Executor, principal: Principal, agentId: string, field = 'agentId') {
  const [agent] = await store.findAgentsByIds(db, [parseId(agentId, field)]);
  if (!agent) throw notFound(field, 'Agent', agentId);
  if (principal.role !== 'ADMIN' && agent.apiKeyId !== principal.keyId) {
    throw cannotActAs(agentId);
  }
  return agent;
}

export async function setAgentDraining({ db: { orm: db } }: ServiceDeps, principal: Principal, agentId: string, draining: boolean) {
  const agent = await requireActingAgent(db, principal, agentId);
  return (await store.setDraining(db, agent.id, draining))!;
}

export const listAgents = ({ db }: ServiceDeps, readScope: ReadScope) => store.listAgents(db.orm, readScope);

/** IDLE, BUSY, DRAINING or OFFLINE. Agents heartbeat at a third of the lease: three missed beats is one lease. */
export function statusOf(agent: store.AgentRecord, leaseTtlSeconds: number, heldRuns: readonly unknown[]) {
  if (Date.now() - agent.lastSeenAt.getTime() > leaseTtlSeconds * 1000) return 'OFFLINE';
  if (agent.draining) return 'DRAINING';
  return heldRuns.length > 0 ? 'BUSY' : 'IDLE';
}

/** The agent an AGENT key acts as (the one seen last), for `viewer`. */
export async function agentOfKey({ db: { orm: db } }: ServiceDeps, principal: Principal) {
  if (principal.role !== 'AGENT') return null;
  const [agent] = await store.findAgentsByKey(db, principal.keyId);
  return agent ?? null;
}
