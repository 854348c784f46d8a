// What every service is handed: one bundle of the long-lived parts, the first argument of every
// service function a resolver calls (as the systems of a job engine share one set of resources).
// A resolver passes its context, which carries them; a test or a script can build one from a
// server's parts. Pure rules (a run's progress, an agent's status) take only what they compute on,
// and helpers that must run inside a caller's transaction take that transaction (an Executor).
//
// A service that reads through drizzle only names what it uses: `{ db: { orm: db } }: ServiceDeps`.
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Database } from '../db/client.js';
import type { Notifier } from '../live/notify.js';
import type { Authenticator } from './keys/authenticator.js';
import type { ArtifactService } from './artifacts/artifacts.service.js';

export interface ServiceDeps {
  db: Database;
  config: Config;
  log: Logger;
  /** LISTEN/NOTIFY for the parts that wait on the database (long-poll claims). */
  notifier: Notifier;
  /** Signed-in keys, remembered; a revocation forgets one at once. */
  authenticator: Authenticator;
  /** The object store behind artifacts (uploads, signed URLs). */
  artifacts: ArtifactService;
}
