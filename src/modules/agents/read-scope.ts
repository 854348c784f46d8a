// What a key may read. People's keys (VIEWER, EDITOR, ADMIN) read everything. An AGENT key reads
// what its agents need to train and nothing else: the agents it registered, the runs they hold or
// held (the run's holder, `Run.agent`, is one of them), and those runs' datasets and caption
// strategies. Everything else does not exist for it: a list leaves it out (pages and totalCount
// count only what is in scope), a lookup by id answers as for an unknown id (null or NOT_FOUND).
// Whole kinds of records it never reads (experiments, sweeps, comparisons) are refused with
// FORBIDDEN by the permissions table (graphql/permissions.ts).
import { sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { rows } from '../../db/client.js';
import { forbidden, notFound } from '../../graphql/errors.js';
import { isId } from '../../graphql/ids.js';
import type { Principal } from '../keys/keys.service.js';

/** null: everything. */
export type ReadScope = { agentKeyId: string } | null;

export const readScopeOf = (principal: Principal | null): ReadScope =>
  principal?.role === 'AGENT' ? { agentKeyId: principal.keyId } : null;

const agentsOf = (scope: { agentKeyId: string }) => sql`(select id from agents where api_key_id = ${scope.agentKeyId})`;
const runsOf = (scope: { agentKeyId: string }) => sql`(select r.id, r.dataset_id, r.caption_strategy_id from runs r where r.agent_id in ${agentsOf(scope)})`;

/** A condition on a run's `agent_id` column; undefined for everything. */
export const runInScope = (scope: ReadScope, runAgentId: SQLWrapper): SQL | undefined =>
  scope ? sql`${runAgentId} in ${agentsOf(scope)}` : undefined;

/** A condition on an agent's `api_key_id` column. */
export const agentInScope = (scope: ReadScope, agentKeyId: SQLWrapper): SQL | undefined =>
  scope ? sql`${agentKeyId} = ${scope.agentKeyId}` : undefined;

/** A condition on a dataset's `id` column. */
export const datasetInScope = (scope: ReadScope, datasetId: SQLWrapper): SQL | undefined =>
  scope ? sql`${datasetId} in (select dataset_id from ${runsOf(scope)} held)` : undefined;

/** A condition on a caption strategy's `id` column. */
export const strategyInScope = (scope: ReadScope, strategyId: SQLWrapper): SQL | undefined =>
  scope ? sql`${strategyId} in (select caption_strategy_id from ${runsOf(scope)} held)` : undefined;

/**
 * Subscriptions name their run by id: outside the scope it is NOT_FOUND, as an unknown run is.
 * An agent key follows runs, never a whole experiment.
 */
export async function assertSubscriptionInScope(db: Executor, scope: ReadScope, args: { runId?: unknown; experimentId?: unknown }) {
  if (!scope) return;
  if (args.experimentId != null) throw forbidden('An AGENT key reads only the runs its agents hold: subscribe with runId');
  if (typeof args.runId !== 'string') return;
  const found = isId(args.runId)
    ? await rows(db, sql`/* runInScope */ select 1 from runs where id = ${args.runId} and ${runInScope(scope, sql.raw('agent_id'))}`)
    : [];
  if (found.length === 0) throw notFound('runId', 'Run', args.runId);
}
