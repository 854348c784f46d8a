import type { Logger } from 'pino';
import type { Database } from '../db/client.js';
import { KeyedFeed } from './feed.js';
import { Channels, type Notifier } from './notify.js';
import { loadLossBatch, type LiveLossBatch } from './loss-feed.js';
import { createEventFeed, createRunFeed } from './run-feeds.js';
import { observeLiveLag } from '../telemetry/metrics.js';

/** The live feeds of one server process, each LISTENing to its channel once. */
export function createFeeds(db: Database, notifier: Notifier, log: Logger) {
  return {
    loss: new KeyedFeed<typeof Channels.lossReported, LiveLossBatch>(
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
