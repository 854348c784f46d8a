// Query depth and cost limits, checked after parsing and before anything executes.
import {
  getNamedType,
  getNullableType,
  GraphQLError,
  isListType,
  Kind,
  parse,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLSchema,
} from 'graphql';
import depthLimit from 'graphql-depth-limit';
import { getComplexity, type ComplexityEstimator } from 'graphql-query-complexity';
import type { ApolloServerPlugin } from '@apollo/server';
import { apiError } from './errors.js';
import { currentShare } from '../db/fair-share.js';
import type { HeavyLane } from './heavy-lane.js';

export const MAX_DEPTH = 12;
/** Roughly the number of objects a query may ask for: runs(first: 500) with a dozen nested fields each fits. */
export const MAX_COST = 200_000;
/** A request costing this much or more is heavy (graphql/heavy-lane.ts): the largest pages and curves, not ordinary reads. */
export const HEAVY_COST = MAX_COST / 4;
const ASSUMED_LIST_LENGTH = 10;

/**
 * The least a loss bucket costs, however few of its fields are asked for: every figure of it is
 * folded from the points and sent through the server whatever the selection (a curve of 10,000
 * one-field buckets is not 10,000 times cheaper than one of 10,000 full ones).
 */
const BUCKET_COST = 4;

/** Fields whose work is an aggregate over the runs a filter matches (every run, at worst). */
const AGGREGATES_OVER_RUNS = new Set(['Query.compareRuns', 'Query.checkpointMatrix', 'RunConnection.totalCount']);

/**
 * A field costs 1 plus its children times how many of them it can return: `first` when the field
 * takes one, a guess for other lists, 1 for single objects; a connection's `edges` is already
 * counted by the field's `first`. Two kinds of field cost the work behind them instead:
 * - a loss curve costs its buckets (`maxPoints`, for each run of lossCurves): each is an object
 *   folded from many points;
 * - an aggregate over runs (compareRuns, checkpointMatrix, a runs list's totalCount) costs the runs
 *   it reads: every run there is, as the filter may match them all.
 */
function estimatorFor(runs: number): ComplexityEstimator {
  const rowsRead = (typeName: string, fieldName: string) => (AGGREGATES_OVER_RUNS.has(`${typeName}.${fieldName}`) ? runs : 0);
  return ({ field, args, childComplexity: children, type, node }) => {
    const returned = getNamedType(field.type).name;
    const childComplexity = returned === 'LossBucket' ? Math.max(children, BUCKET_COST) : children;
    let multiplier = 1;
    if (typeof args.first === 'number') multiplier = args.first;
    else if (typeof args.maxPoints === 'number') {
      // lossCurves' buckets are a child list, counted as ASSUMED_LIST_LENGTH long: scale it to maxPoints.
      multiplier = Array.isArray(args.runIds) ? args.runIds.length * Math.ceil(args.maxPoints / ASSUMED_LIST_LENGTH) : args.maxPoints;
    } else if (isListType(getNullableType(field.type)) && !type.name.endsWith('Connection')) multiplier = ASSUMED_LIST_LENGTH;
    else if (field.args.some((a) => a.name === 'first')) multiplier = 50;
    if (returned.endsWith('Connection') && typeof args.first !== 'number') multiplier = 50;
    const rows = rowsRead(type.name, field.name);
    // A connection's totalCount is counted once per connection, not once per item it returns: only
    // the rest of its selection is multiplied by `first`. (Multiplied, a runs page of 50 with its
    // count cost 50 times the runs there are, and was refused past a few thousand runs.)
    let once = 0;
    if (returned.endsWith('Connection')) {
      for (const selection of node.selectionSet?.selections ?? []) {
        // What this estimator gives a totalCount field: 1, plus the runs it reads.
        if (selection.kind === Kind.FIELD && selection.name.value === 'totalCount') once += 1 + rowsRead(returned, 'totalCount');
      }
    }
    return 1 + rows + once + (childComplexity - once) * Math.max(1, multiplier);
  };
}

/**
 * How many runs there are, for the cost of aggregates over them: read at start and then every
 * `everyMs` in the background, so a cost check never waits for the database.
 */
export class RunCount {
  private value = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly read: () => Promise<number>) {}

  async refresh() {
    try {
      this.value = await this.read();
    } catch {
      // the last count stands until the database answers again
    }
  }

  start(everyMs: number) {
    this.timer = setInterval(() => void this.refresh(), everyMs);
    this.timer.unref();
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
  }

  get current() {
    return this.value;
  }
}

/** The run count as cost keys see it: costs are remembered per power of two of it. */
const runsScale = (runs: number) => (runs <= 0 ? 0 : 2 ** Math.ceil(Math.log2(runs)));

/**
 * Apollo parses each distinct query text once and hands every request the same DocumentNode, so
 * what was learned about a document is kept with it: depth never depends on variables, and cost
 * depends only on the numeric ones. An agent's claim/complete loop then checks its two documents once.
 */
const shallowDocuments = new WeakSet<DocumentNode>();
const knownCosts = new WeakMap<DocumentNode, Map<string, number>>();
const MAX_COSTS_PER_DOCUMENT = 100;

/** The key of what cost depends on: the operation and the numeric variables; null when uncacheable. */
function costKey(variables: Record<string, unknown>, operationName: string | null | undefined, runs: number) {
  const numeric: [string, number][] = [];
  for (const [name, value] of Object.entries(variables)) {
    // Lists count too (lossCurves' runIds), by their length.
    if (Array.isArray(value)) numeric.push([name, -value.length]);
    if (typeof value !== 'number') continue;
    if (!Number.isFinite(value)) return null; // let coercion refuse it below
    numeric.push([name, value]);
  }
  return JSON.stringify([operationName ?? null, runs, numeric]);
}

export function checkQueryLimits(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> = {},
  operationName?: string | null,
  runCount = 0,
) {
  if (!shallowDocuments.has(document)) {
    const depthErrors = validate(schema, document, [depthLimit(MAX_DEPTH)]);
    if (depthErrors.length) {
      throw apiError('QUERY_TOO_COMPLEX', `Query is nested deeper than ${MAX_DEPTH} levels`, { maxDepth: MAX_DEPTH, http: { status: 400 } });
    }
    shallowDocuments.add(document);
  }
  const runs = runsScale(runCount);
  const key = costKey(variables, operationName, runs);
  const costs = knownCosts.get(document);
  const known = key == null ? undefined : costs?.get(key);
  const cost = known ?? measureCost(schema, document, variables, operationName, runs);
  if (known === undefined && key != null) {
    const map = costs ?? new Map<string, number>();
    if (map.size >= MAX_COSTS_PER_DOCUMENT) map.clear();
    map.set(key, cost);
    knownCosts.set(document, map);
  }
  if (cost > MAX_COST) {
    throw apiError('QUERY_TOO_COMPLEX', `Query would cost ${cost}; the budget is ${MAX_COST}. Ask for fewer items per list`, {
      cost,
      maxCost: MAX_COST,
      http: { status: 400 },
    });
  }
  return cost;
}

function measureCost(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown>, operationName: string | null | undefined, runs: number) {
  try {
    // The estimator reads numeric arguments (first, maxPoints) and the length of runIds; big list
    // variables (5,000 loss points) would be coerced a second time for nothing, so they are passed
    // as short as they can be while keeping the length of an id list.
    const light = Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, Array.isArray(v) ? (v.length && typeof v[0] === 'string' && v.length <= 1000 ? v : []) : v]));
    return getComplexity({ schema, query: document, variables: light, operationName: operationName ?? undefined, estimators: [estimatorFor(runs)] });
  } catch (err) {
    // getComplexity coerces the variables first; a bad one (1e999 for a Float) is the client's error.
    throw apiError('BAD_USER_INPUT', err instanceof Error ? err.message : String(err));
  }
}

/** Tokens a document may have: far above any real operation, far below what stalls the parser. */
export const MAX_TOKENS = 20_000;

/**
 * A subscribe message as graphql-ws executes it, or the errors that answer it: the same checks as
 * an HTTP request (syntax, validation, depth and cost), none of them thrown.
 */
export function prepareSubscription(
  schema: GraphQLSchema,
  payload: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null },
  runCount: RunCount,
): ExecutionArgs | readonly GraphQLError[] {
  try {
    const document = parse(payload.query, { maxTokens: MAX_TOKENS });
    const errors = validate(schema, document);
    if (errors.length) return errors;
    checkQueryLimits(schema, document, payload.variables ?? {}, payload.operationName, runCount.current);
    return { schema, document, variableValues: payload.variables, operationName: payload.operationName };
  } catch (err) {
    if (err instanceof GraphQLError) return [err];
    // A RangeError from a document nested past the stack, say.
    return [apiError('BAD_USER_INPUT', `The subscription could not be read: ${err instanceof Error ? err.message : String(err)}`)];
  }
}

export const queryLimitsPlugin = (runCount: RunCount, heavyLane: HeavyLane): ApolloServerPlugin => ({
  async requestDidStart() {
    return {
      async didResolveOperation({ schema, document, request }) {
        const cost = checkQueryLimits(schema, document, request.variables ?? {}, request.operationName, runCount.current);
        const share = currentShare();
        // The turn ends once the answer is written (server.ts), or when the request ends otherwise.
        if (cost >= HEAVY_COST && share) await heavyLane.enter(share);
      },
    };
  },
});
