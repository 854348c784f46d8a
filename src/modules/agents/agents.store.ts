import { asc, inArray, sql } from 'drizzle-orm';
import { agents, runs } from '../../db/schema.js';
import type { Executor } from '../../db/client.js';

export type AgentRecord = typeof agents.$inferSelect;

export function findAgentsByIds(db: Executor, ids: readonly string[]) {
  return db.select().from(agents).where(inArray(agents.id, [...ids]));
}

export function listAgents(db: Executor) {
  return db.select().from(agents).orderBy(asc(agents.name), asc(agents.id));
}

/** Runs an agent holds now (claimed, running or being cancelled), oldest claim first. */
export function findActiveRunsByAgents(db: Executor, agentIds: readonly string[]) {
  return db
    .select()
    .from(runs)
    .where(sql`${runs.agentId} = any(${sql.param([...agentIds])}::uuid[]) and ${runs.status} in ('CLAIMED', 'RUNNING', 'CANCELLING')`)
    .orderBy(asc(runs.claimedAt));
}
