// Gauges of one server, read when Prometheus scrapes: the database's state in one statement
// (runs by status, the oldest queued run, agents by status, connections), and this process's live
// subscriptions and database pool from memory. Nothing runs between scrapes.
import { sql } from 'drizzle-orm';
import { Gauge, Registry } from 'prom-client';
import type { Database } from '../db/client.js';
import type { HeavyLane } from '../graphql/heavy-lane.js';
import type { Feeds } from '../live/feeds.js';

const RUN_STATUSES = ['QUEUED', 'CLAIMED', 'RUNNING', 'CANCELLING', 'SUCCEEDED', 'FAILED', 'CANCELLED'] as const;
const AGENT_STATUSES = ['IDLE', 'BUSY', 'DRAINING', 'OFFLINE'] as const;

interface Snapshot {
  runs: Record<string, number> | null;
  oldest_queued_seconds: number | null;
  agents: Record<string, number> | null;
  connections: number;
}

/**
 * One statement, cheap at any size but for the runs count: the QUEUED minimum and the agents'
 * current runs come from partial indexes; counting runs by status reads the table (~10 ms at
 * 100,000 runs, once a scrape). An agent's status is the same rule as Agent.status: offline after
 * one lease without a heartbeat, else draining, else busy while it holds a run.
 */
const snapshot = (leaseTtlSeconds: number) => sql`/* telemetrySnapshot */
  select
    (select json_object_agg(status, n) from (select status, count(*)::int as n from runs group by status) s) as runs,
    (select extract(epoch from now() - min(queued_at))::float8 from runs where status = 'QUEUED') as oldest_queued_seconds,
    (select json_object_agg(status, n) from (
      select case
          when a.last_seen_at < now() - ${leaseTtlSeconds} * interval '1 second' then 'OFFLINE'
          when a.draining then 'DRAINING'
          when exists (select 1 from runs r where r.agent_id = a.id and r.status in ('CLAIMED', 'RUNNING', 'CANCELLING')) then 'BUSY'
          else 'IDLE'
        end as status, count(*)::int as n
      from agents a group by 1) g) as agents,
    (select count(*)::int from pg_stat_activity where datname = current_database() and application_name = 'loralab') as connections`;

export interface ServerCollectors {
  /** The server's gauges, read now. */
  collect(): Promise<Registry>;
}

export function serverCollectors(db: Database, feeds: Feeds, leaseTtlSeconds: number, heavyLane: Pick<HeavyLane, 'usage'>): ServerCollectors {
  const registry = new Registry();
  const registers = [registry];
  const runs = new Gauge({ name: 'loralab_runs', help: 'Runs by status', labelNames: ['status'] as const, registers });
  const oldest = new Gauge({ name: 'loralab_queue_oldest_seconds', help: 'Age of the oldest QUEUED run (0 when none waits)', registers });
  const agents = new Gauge({ name: 'loralab_agents', help: 'Agents by status', labelNames: ['status'] as const, registers });
  const connections = new Gauge({
    name: 'loralab_db_connections',
    help: 'Connections open to the database by every loralab process (all replicas; PostgreSQL pg_stat_activity)',
    registers,
  });
  const subscriptions = new Gauge({
    name: 'loralab_subscriptions_active',
    help: 'Live subscriptions held by this process, by feed',
    labelNames: ['feed'] as const,
    registers,
  });
  const pool = new Gauge({
    name: 'loralab_db_pool',
    help: "This process's database pool: size (connections), slots (for requests' statements), active (statements running for requests), waiting (statements queued for a slot)",
    labelNames: ['state'] as const,
    registers,
  });
  const heavy = new Gauge({
    name: 'loralab_heavy_requests',
    help: 'Requests the cost model counts as heavy in this process: running (one at a time) and waiting for their turn',
    labelNames: ['state'] as const,
    registers,
  });
  const statement = snapshot(leaseTtlSeconds);
  return {
    async collect() {
      const [row] = (await db.prepared(statement)) as unknown as Snapshot[];
      for (const status of RUN_STATUSES) runs.set({ status }, row?.runs?.[status] ?? 0);
      oldest.set(row?.oldest_queued_seconds ?? 0);
      for (const status of AGENT_STATUSES) agents.set({ status }, row?.agents?.[status] ?? 0);
      connections.set(row?.connections ?? 0);
      subscriptions.set({ feed: 'runLoss' }, feeds.loss.size);
      subscriptions.set({ feed: 'runUpdated' }, feeds.runs.size);
      subscriptions.set({ feed: 'runEvents' }, feeds.events.size);
      const usage = db.poolUsage();
      pool.set({ state: 'size' }, usage.size);
      pool.set({ state: 'slots' }, usage.slots);
      pool.set({ state: 'active' }, usage.active);
      pool.set({ state: 'waiting' }, usage.waiting);
      const lane = heavyLane.usage();
      heavy.set({ state: 'running' }, lane.running);
      heavy.set({ state: 'waiting' }, lane.waiting);
      return registry;
    },
  };
}
