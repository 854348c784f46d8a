import { asc, desc, eq, inArray, sql } from 'drizzle-orm';
import { agents, runs } from '../../db/schema.js';
import type { Executor } from '../../db/client.js';
import { agentInScope, type ReadScope } from './read-scope.js';
import { HELD_SQL } from '../runs/lifecycle.js';

export type AgentRecord = typeof agents.$inferSelect;

export function findAgentsByIds(db: Executor, ids: readonly string[]) {
  return db.select().from(agents).where(inArray(agents.id, [...ids]));
}

export function listAgents(db: Executor, readScope: ReadScope) {
  return db.select().from(agents).where(agentInScope(readScope, agents.apiKeyId)).orderBy(asc(agents.name), asc(agents.id));
}

/** Runs an agent holds now (claimed, running or being cancelled), oldest claim first. */
export function findActiveRunsByAgents(db: Executor, agentIds: readonly string[]) {
  return db
    .select()
    .from(runs)
    .where(sql`${runs.agentId} = any(${sql.param([...agentIds])}::uuid[]) and ${runs.status} in ${HELD_SQL}`)
    .orderBy(asc(runs.claimedAt));
}

export type NewAgent = Omit<typeof agents.$inferInsert, 'id' | 'createdAt' | 'lastSeenAt' | 'draining'>;

/* upsertAgent: the same key registering the same name again is the same agent (a restart). */
export async function upsertAgent(db: Executor, values: NewAgent) {
  const [row] = await db
    .insert(agents)
    .values(values)
    .onConflictDoUpdate({
      target: [agents.apiKeyId, agents.name],
      set: {
        hostname: values.hostname,
        gpus: values.gpus,
        maxGpuMemoryMb: values.maxGpuMemoryMb,
        gpuCount: values.gpuCount,
        labels: values.labels,
        hourlyCostUsd: values.hourlyCostUsd,
        version: values.version,
        draining: false,
        lastSeenAt: sql`now()`,
      },
    })
    .returning();
  return row!;
}

export async function setDraining(db: Executor, id: string, draining: boolean) {
  const [row] = await db.update(agents).set({ draining }).where(eq(agents.id, id)).returning();
  return row ?? null;
}

export function findAgentsByKey(db: Executor, apiKeyId: string) {
  return db.select().from(agents).where(eq(agents.apiKeyId, apiKeyId)).orderBy(desc(agents.lastSeenAt));
}
