// The reaper runs in every server process. A transaction-scoped advisory lock lets one process sweep
// at a time across replicas; the others skip that tick. SKIP LOCKED in the sweep itself means even
// two sweepers could never handle one expired run twice.
import { sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import { rows, type Database } from '../../db/client.js';
import { Channels, notify } from '../../live/notify.js';
import { appendEvents } from '../runs/events.store.js';
import { reapExpiredLeases } from './dispatch.store.js';
import { announceRunsChanged } from '../../live/run-feeds.js';
import { countReaped } from '../../telemetry/metrics.js';

const REAPER_LOCK_ID = 7_104_003;

export class Reaper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;

  constructor(
    private readonly db: Database,
    private readonly options: { intervalSeconds: number; backoffSeconds: number; leaseTtlSeconds: number },
    private readonly log: Logger,
  ) {}

  start() {
    this.timer = setInterval(() => {
      this.sweep().catch((err) => this.log.error({ err }, 'reaper sweep failed'));
    }, this.options.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** One sweep; returns how many runs it moved (0 when another process holds the sweep lock). */
  sweep(): Promise<number> {
    this.running ??= this.sweepOnce().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async sweepOnce() {
    return this.db.transaction(async (tx) => {
      const [lock] = await rows<{ locked: boolean }>(tx, sql`select pg_try_advisory_xact_lock(${REAPER_LOCK_ID}) as locked`);
      if (!lock?.locked) return 0;
      const reaped = await reapExpiredLeases(tx, this.options.backoffSeconds, this.options.leaseTtlSeconds);
      if (reaped.length === 0) return 0;
      countReaped(reaped);
      await appendEvents(
        tx,
        reaped.map((r) => ({
          runId: r.id,
          type: 'LEASE_EXPIRED',
          message:
            r.status === 'QUEUED'
              ? `Agent stopped heartbeating; requeued after attempt ${r.attempt}`
              : r.status === 'FAILED'
                ? `Agent stopped heartbeating; no attempts left after ${r.attempt}`
                : 'Agent stopped heartbeating while cancelling; cancelled',
          data: { next: r.status, attempt: r.attempt, notBefore: r.not_before },
        })),
      );
      await announceRunsChanged(tx, reaped.map((r) => ({ id: r.id, experimentId: r.experiment_id, status: r.status })));
      if (reaped.some((r) => r.status === 'QUEUED')) await notify(tx, Channels.runQueued, { count: reaped.length });
      this.log.info({ runs: reaped.length }, 'reaped expired leases');
      return reaped.length;
    });
  }

  async stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
  }
}
