// A graphql-ws client for tests: subscribe, collect what arrives, wait for a condition.
import WebSocket from 'ws';
import { createClient, type Client } from 'graphql-ws';

export function wsClient(httpUrl: string, key: string | null): Client {
  return createClient({
    url: `${httpUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: key ? { authorization: `Bearer ${key}` } : {},
    retryAttempts: 0,
    lazy: true,
  });
}

export interface Collected<T> {
  items: T[];
  errors: unknown[];
  completed: boolean;
  /** Resolves once `predicate(items)` holds (checked on every arrival). */
  until(predicate: (items: T[]) => boolean, timeoutMs?: number): Promise<T[]>;
  stop(): void;
}

export function collect<T = any>(client: Client, query: string, variables: Record<string, unknown>, pick: (data: any) => T): Collected<T> {
  const waiters = new Set<() => void>();
  const state: Collected<T> = {
    items: [],
    errors: [],
    completed: false,
    until(predicate, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (predicate(state.items)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(state.items);
          } else if (state.errors.length || state.completed) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(new Error(`subscription ended: ${JSON.stringify(state.errors)}`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting; got ${state.items.length} items, errors ${JSON.stringify(state.errors)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    stop: () => dispose(),
  };
  const notify = () => [...waiters].forEach((w) => w());
  const dispose = client.subscribe<any>(
    { query, variables },
    {
      next: (result) => {
        if (result.errors) state.errors.push(...result.errors);
        else state.items.push(pick(result.data));
        notify();
      },
      error: (err) => {
        state.errors.push(err);
        notify();
      },
      complete: () => {
        state.completed = true;
        notify();
      },
    },
  );
  return state;
}

export const flatPoints = (batches: { points: { step: number; loss: number }[] }[]) => batches.flatMap((b) => b.points);
