// Live events are executed once per process, not once per subscriber. graphql-js would run the
// subscription's selection over each event for every subscriber: 200 dashboards watching one run's
// loss meant 200 executions of the same 100 points per report, most of the fan-out's CPU and
// garbage. Subscribers that sent the same query text, operation and variables get the result of
// one execution over the same event object, which the feeds hand to all of them.
import { createSourceEventStream, execute, type ExecutionArgs, type ExecutionResult } from 'graphql';
import { mapAsyncIterator } from 'graphql/execution/mapAsyncIterator.js';

type Result = ExecutionResult | Promise<ExecutionResult>;

/** event object → what each distinct subscription made of it; gone with the event. */
const resultsByEvent = new WeakMap<object, Map<string, Result>>();

/**
 * Nothing a subscription field resolves may depend on who subscribed: who may subscribe is decided
 * once, by the root field's subscribe() (permissions.ts guards it), before any event is shared.
 */
export async function subscribeSharingResults(args: ExecutionArgs) {
  const stream = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in stream)) return stream; // an ExecutionResult with the errors
  const query = args.document.loc?.source.body;
  const key = query === undefined ? null : JSON.stringify([query, args.operationName ?? null, args.variableValues ?? null]);
  return mapAsyncIterator(stream, (event: unknown): Result => {
    if (key === null || event === null || typeof event !== 'object') return execute({ ...args, rootValue: event });
    let results = resultsByEvent.get(event);
    if (!results) resultsByEvent.set(event, (results = new Map()));
    let result = results.get(key);
    if (!result) results.set(key, (result = execute({ ...args, rootValue: event })));
    return result;
  });
}
