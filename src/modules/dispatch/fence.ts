// The lease fence every agent write goes through, in one place. An agent may write to a run only
// while its token is the run's current lease token, the run is held (CLAIMED, RUNNING or
// CANCELLING) and the agent holding it was registered by the calling key. Each store puts this
// condition in the one statement that writes, so there is no gap between checking and writing.
import { sql } from 'drizzle-orm';
import { HELD_SQL } from '../runs/lifecycle.js';

export interface LeaseFence {
  runId: string;
  leaseToken: string;
  apiKeyId: string;
}

/** The fence as a condition on `runs r`. */
export const fencedBy = (f: LeaseFence) =>
  sql`r.id = ${f.runId} and r.lease_token = ${f.leaseToken}
      and r.agent_id in (select id from agents where api_key_id = ${f.apiKeyId})
      and r.status in ${HELD_SQL}`;

/**
 * The held run as a CTE body, locked FOR SHARE: a reaper that requeued the run (clearing the
 * token) either committed first, and then no row matches, or waits until this write commits.
 */
export const heldRun = (f: LeaseFence) => sql`select r.id, r.attempt, r.steps, r.experiment_id from runs r where ${fencedBy(f)} for share`;
