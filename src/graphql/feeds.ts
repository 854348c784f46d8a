import type { Logger } from 'pino';
import type { Database } from '../db/client.js';
import { KeyedFeed } from '../db/feed.js';
import { Channels, type Notifier } from '../db/notify.js';
import { loadLossBatch, type LossNote, type LiveLossBatch } from '../modules/metrics/metrics.service.js';
import { createEventFeed, createRunFeed } from '../modules/runs/run-feeds.js';
import { observeLiveLag } from '../telemetry/metrics.js';

/** The live feeds of one server process, each LISTENing to its channel once. */
export function createFeeds(db: Database, notifier: Notifier, log: Logger) {
  return {
    loss: new KeyedFeed<LossNote, LiveLossBatch>(
      notifier,
      Channels.lossReported,
      (note) => [note.runId],
      observeLiveLag(loadLossBatch(db.orm)),
      (err) => log.error({ err }, 'loss feed failed'),
    ),
    runs: createRunFeed(db.orm, notifier, log),
    events: createEventFeed(db.orm, notifier, log),
  };
}

export type Feeds = ReturnType<typeof createFeeds>;
