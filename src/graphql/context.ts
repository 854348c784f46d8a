import type { Principal } from '../modules/keys/keys.service.js';
import { createLoaders, type Loaders } from './loaders.js';
import type { Feeds } from '../live/feeds.js';
import { readScopeOf, type ReadScope } from '../modules/agents/read-scope.js';
import type { ServiceDeps } from '../modules/service-deps.js';
import type { RunCount } from './limits.js';

/** What lives as long as the server: shared by every request. Services get the ServiceDeps part. */
export interface AppServices extends ServiceDeps {
  feeds: Feeds;
  /** How many runs there are, for the cost of aggregates over them (limits.ts). */
  runCount: RunCount;
}

export interface Context extends AppServices {
  principal: Principal | null;
  /** What the key may read: null for everything (people's keys), its agents' work for an AGENT key. */
  readScope: ReadScope;
  requestId: string;
  loaders: Loaders;
  /** Aborted when the client goes away before the answer (used by long polls). */
  signal?: AbortSignal;
  /** How the client reached this server (`http://host:port`): the base of the embedded store's signed URLs. */
  origin: string;
}

export function createContext(
  app: AppServices,
  principal: Principal | null,
  requestId: string,
  signal?: AbortSignal,
  origin = `http://${app.config.host.includes(':') ? `[${app.config.host}]` : app.config.host}:${app.config.port}`,
): Context {
  return {
    ...app,
    principal,
    readScope: readScopeOf(principal),
    requestId,
    log: app.log.child({ requestId }),
    loaders: createLoaders(app.db.orm),
    signal,
    origin,
  };
}
