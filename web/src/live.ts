// Subscriptions over graphql-ws, the key in connectionParams. One socket for the page; it
// reconnects by itself, and views that cannot replay (run tables) refetch on reconnect.
import { createClient, type Client } from 'graphql-ws/client';
import { getKey, REJECTED, signOut } from './api.js';
import type { TypedDocumentString } from './gql/graphql.js';

let client: Client | null = null;
const reconnected = new Set<() => void>();

function socket(): Client {
  client ??= createClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`,
    connectionParams: () => ({ authorization: `Bearer ${getKey() ?? ''}` }),
    lazy: true,
    lazyCloseTimeout: 2000,
    keepAlive: 15_000,
    retryAttempts: Infinity,
    // 4403: the server refused the key in connectionParams; retrying cannot help.
    shouldRetry: (e) => !(e && typeof e === 'object' && 'code' in e && (e as CloseEvent).code === 4403),
    on: {
      connected: (_socket, _payload, wasRetry) => {
        // Tests and people alike can tell whether live updates flow.
        document.documentElement.dataset.live = 'connected';
        if (wasRetry) for (const fn of reconnected) fn();
      },
      closed: (e) => {
        document.documentElement.dataset.live = 'closed';
        if ((e as CloseEvent)?.code === 4403) signOut(REJECTED);
      },
    },
  });
  return client;
}

declare global {
  interface Window {
    /** Drops the socket as a network failure would; the client reconnects. For tests of gap filling. */
    __loralabDropSocket?: () => void;
  }
}
window.__loralabDropSocket = () => client?.terminate();

/** Drops the socket (sign-out, or a new key). */
export function closeLive() {
  client?.dispose();
  client = null;
}

export function onReconnect(fn: () => void): () => void {
  reconnected.add(fn);
  return () => reconnected.delete(fn);
}

export interface Subscription<V> {
  /**
   * The variables sent on every (re)connection: graphql-ws sends the same payload again when it
   * reconnects, so a view may move `sinceStep` forward and a reconnect replays only the gap.
   */
  variables: V;
  dispose(): void;
}

export function subscribe<T, V extends Record<string, unknown>>(
  document: TypedDocumentString<T, V>,
  variables: V,
  onData: (data: T) => void,
  onError: (message: string) => void = (m) => console.warn(m),
): Subscription<V> {
  const payload = { query: String(document), variables };
  const dispose = socket().subscribe<T>(payload, {
    next: (result) => {
      if (result.errors?.length) onError(result.errors.map((e) => e.message).join('; '));
      else if (result.data) onData(result.data);
    },
    error: (err) => {
      if (Array.isArray(err)) onError(err.map((e: { message: string }) => e.message).join('; '));
      else if (!(err && typeof err === 'object' && 'code' in err && (err as CloseEvent).code === 4403)) onError('Live updates stopped');
    },
    complete: () => {},
  });
  return { variables, dispose };
}
