// Inputs an attacker or a misbehaving trainer sends: each gets BAD_USER_INPUT naming the argument
// (or, for text a trainer wrote, is cleaned), never an internal error, and nothing is half-written.
import {
  buildClientSchema,
  getIntrospectionQuery,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLSchema,
} from 'graphql';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS_FOLDER } from '../src/db/client.js';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';
import { createBasics, queueRun, type Basics } from './helpers/fixtures.js';
import { claimNewRun, endBackoff, expireLease, registerAgent, REPORT_LOSS, type TestAgent } from './helpers/agents.js';
import { collect, wsClient } from './helpers/live.js';

const NUL_TEXT = 'p3r5on\u0000portrait';
const SOME_ID = '00000000-0000-4000-8000-000000000000';
/** Input fields whose text comes from a trainer: cleaned by the server, never refused. */
const TRAINER_TEXT = new Set(['RunErrorInput.message', 'RunErrorInput.logTail', 'SampleInput.prompt', 'SampleInput.path', 'CheckpointInput.path']);

interface TextLeaf {
  /** Argument path: ["input", "images", "0", "fileName"]. */
  path: string[];
  /** The input field it is (InputType.field), null for a plain argument. */
  coordinate: string | null;
  json: boolean;
}

/** Every place in `type` a string (or JSON) can be given. */
function textLeaves(type: GraphQLInputType, path: string[], coordinate: string | null, depth = 0): TextLeaf[] {
  if (isNonNullType(type)) return textLeaves(type.ofType, path, coordinate, depth);
  if (isListType(type)) return textLeaves(type.ofType, [...path, '0'], coordinate, depth);
  if (isInputObjectType(type)) {
    if (depth > 4) return [];
    return Object.values(type.getFields()).flatMap((f) => textLeaves(f.type, [...path, f.name], `${type.name}.${f.name}`, depth + 1));
  }
  const name = getNamedType(type).name;
  if (name === 'String' || name === 'ID') return [{ path, coordinate, json: false }];
  if (name === 'JSON') return [{ path, coordinate, json: true }];
  return [];
}

/** The least value of `type` GraphQL accepts; along `path` (when given) it leads to `leaf`. */
function valueOf(type: GraphQLInputType, path: string[] = [], leaf?: unknown): unknown {
  if (isNonNullType(type)) return valueOf(type.ofType, path, leaf);
  if (isListType(type)) return path.length ? [valueOf(type.ofType, path.slice(1), leaf)] : [];
  if (isInputObjectType(type)) {
    const object: Record<string, unknown> = {};
    for (const f of Object.values(type.getFields())) if (isNonNullType(f.type) && f.defaultValue === undefined) object[f.name] = valueOf(f.type);
    if (path.length) object[path[0]!] = valueOf(type.getFields()[path[0]!]!.type, path.slice(1), leaf);
    return object;
  }
  if (path.length === 0 && leaf !== undefined) return leaf;
  if (isEnumType(type)) return type.getValues()[0]!.value;
  switch (type.name) {
    case 'ID':
      return SOME_ID;
    case 'Int':
    case 'Float':
      return 1;
    case 'Boolean':
      return true;
    case 'DateTime':
      return new Date().toISOString();
    case 'JSON':
      return {};
    default:
      return 'x';
  }
}

/** An operation calling `field` with every required argument and the one at `leaf.path[0]`, all as variables. */
function operationFor(kind: 'query' | 'mutation' | 'subscription', field: GraphQLField<unknown, unknown>, leaf: TextLeaf) {
  const nul = leaf.json ? { note: NUL_TEXT } : NUL_TEXT;
  const args = field.args.filter((a) => a.name === leaf.path[0] || (isNonNullType(a.type) && a.defaultValue === undefined));
  const variables = Object.fromEntries(args.map((a) => [a.name, a.name === leaf.path[0] ? valueOf(a.type, leaf.path.slice(1), nul) : valueOf(a.type)]));
  const selection = isObjectType(getNamedType(field.type)) ? '{ __typename }' : '';
  const declared = args.map((a) => `$${a.name}: ${a.type}`).join(', ');
  const passed = args.map((a) => `${a.name}: $${a.name}`).join(', ');
  return { query: `${kind}${declared ? `(${declared})` : ''} { ${field.name}${passed ? `(${passed})` : ''} ${selection} }`, variables };
}

describe.each(databaseKinds)('hostile inputs on %s', (kind) => {
  let t: TestServer;
  let basics: Basics;
  let agent: TestAgent;
  let viewer: GqlClient;
  let schema: GraphQLSchema;
  beforeAll(async () => {
    t = await startTestServer(kind, { reaperIntervalSeconds: 3600 });
    basics = await createBasics(t.admin);
    agent = await registerAgent(t);
    viewer = await t.as('VIEWER');
    schema = buildClientSchema((await t.admin.ok(getIntrospectionQuery())) as never);
  });
  afterAll(() => t?.stop());

  it('refuses a NUL byte in any text a person sends with BAD_USER_INPUT naming the field, and cleans it in text a trainer wrote', async () => {
    const checked: string[] = [];
    for (const kind of ['query', 'mutation', 'subscription'] as const) {
      const root = kind === 'query' ? schema.getQueryType() : kind === 'mutation' ? schema.getMutationType() : schema.getSubscriptionType();
      for (const field of Object.values(root!.getFields())) {
        for (const leaf of field.args.flatMap((a) => textLeaves(a.type, [a.name], null))) {
          const { query, variables } = operationFor(kind, field, leaf);
          let errors: { message: string; extensions?: { code?: string; field?: string } }[];
          if (kind === 'subscription') {
            const client = wsClient(t.url, viewer.key);
            const sub = collect(client, query, variables, (d) => d);
            await sub.until(() => false, 5000).catch(() => {});
            errors = (sub.errors as { message: string; extensions?: { code?: string } }[][]).flat();
            await client.dispose();
          } else {
            let result = await t.admin.request(query, variables);
            if (result.errors?.[0]?.extensions?.code === 'FORBIDDEN') result = await agent.client.request(query, variables);
            errors = result.errors ?? [];
          }
          const where = `${field.name}(${leaf.path.join('.')})`;
          expect(errors.map((e) => e.extensions?.code), where).not.toContain('INTERNAL_SERVER_ERROR');
          if (leaf.coordinate && TRAINER_TEXT.has(leaf.coordinate)) {
            expect(errors.filter((e) => e.extensions?.field === leaf.path.join('.')), where).toEqual([]);
          } else {
            expect(errors[0]?.extensions, `${where}: ${JSON.stringify(errors)}`).toMatchObject({ code: 'BAD_USER_INPUT', field: leaf.path.join('.') });
            expect(errors[0]!.message, where).toMatch(/NUL/);
          }
          checked.push(where);
        }
      }
    }
    // Every text input of the schema, down to list elements and nested input objects.
    expect(checked.length).toBeGreaterThan(60);
    expect(checked).toContain('createDataset(input.images.0.caption)');
    expect(checked).toContain('queueRun(input.hyperparameters.extra)');
    expect(checked).toContain('runLoss(runId)');
  }, 120_000);

  it("keeps a trainer's text with its NUL bytes cleaned: the error of a failed run, a sample's prompt and path, a checkpoint's path", async () => {
    const { runId, token } = await claimNewRun(t, basics, agent);
    const report = (field: string, type: string, input: Record<string, unknown>) =>
      agent.client.ok(`mutation($r: ID!, $t: String!, $i: ${type}!) { ${field}(runId: $r, leaseToken: $t, input: $i) { path } }`, { r: runId, t: token, i: input });
    expect(await report('reportCheckpoint', 'CheckpointInput', { step: 250, path: '/out/a\u0000.safetensors' })).toEqual({ reportCheckpoint: { path: '/out/a\uFFFD.safetensors' } });
    expect(await report('reportSample', 'SampleInput', { step: 250, promptIndex: 0, prompt: '[trigger]\u0000 portrait', path: '/out/s\u0000.jpg' })).toEqual({
      reportSample: { path: '/out/s\uFFFD.jpg' },
    });
    const long = 'y'.repeat(30_000);
    const done = await agent.complete(runId, token, 'FAILED', { code: 'TRAINER_ERROR', message: `CUDA error\u0000${long}`, logTail: `${'z'.repeat(300_000)}\u0000end` });
    expect(done.errors).toBeUndefined();
    const { status, error, samples } = (await t.admin.ok(`query($id: ID!) { run(id: $id) { status error { code message logTail } samples { prompt } } }`, { id: runId })).run;
    expect(status).toBe('FAILED');
    expect(samples).toEqual([{ prompt: '[trigger]\uFFFD portrait' }]);
    expect(error.code).toBe('TRAINER_ERROR');
    // Too long to keep whole: the message keeps its start, the log tail its end.
    expect(error.message.startsWith('CUDA error\uFFFDyyy')).toBe(true);
    expect(error.message.length).toBe(10_000);
    expect(error.logTail.length).toBe(200_000);
    expect(error.logTail.endsWith('zz\uFFFDend')).toBe(true);
  });

  it("takes every loss a trainer can print (float32's range) and refuses larger ones; a run's curves, summary and rewrites stay exact", async () => {
    const { runId, token } = await claimNewRun(t, basics, agent);
    const F32_MAX = 3.4028234663852886e38;
    const columns = `mutation($r: ID!, $t: String!, $s: [Int!]!, $l: [Float!]!, $lr: [Float]) { reportLossColumns(runId: $r, leaseToken: $t, steps: $s, losses: $l, lrs: $lr) { accepted } }`;
    await agent.client.fails('BAD_USER_INPUT', REPORT_LOSS, { r: runId, t: token, p: [{ step: 0, loss: 0.5 }, { step: 1, loss: 1e308 }] }, 'points.1.loss');
    await agent.client.fails('BAD_USER_INPUT', REPORT_LOSS, { r: runId, t: token, p: [{ step: 0, loss: -3.5e38 }] }, 'points.0.loss');
    await agent.client.fails('BAD_USER_INPUT', REPORT_LOSS, { r: runId, t: token, p: [{ step: 0, loss: 0.5, lr: 1e308 }] }, 'points.0.lr');
    await agent.client.fails('BAD_USER_INPUT', columns, { r: runId, t: token, s: [0, 1], l: [0.5, 1e300] }, 'losses.1');

    // Spikes as large as a trainer can print, in every block of the run, both signs.
    const spike = (step: number) => (step % 7 === 0 ? F32_MAX : step % 11 === 0 ? -F32_MAX : 1 / (step + 1));
    const points = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => ({ step: from + i, loss: spike(from + i), lr: F32_MAX }));
    await agent.client.ok(REPORT_LOSS, { r: runId, t: token, p: points(0, 2999) });
    const curveQuery = `query($id: ID!, $n: Int) { run(id: $id) { lossSummary { points minLoss emaLoss } lossCurve(maxPoints: $n) { min max mean count } } }`;
    for (const n of [10, 1000, 5000]) {
      const { run } = await t.admin.ok(curveQuery, { id: runId, n });
      expect(run.lossSummary.points).toBe(3000);
      expect(run.lossSummary.minLoss).toBe(-F32_MAX);
      expect(Number.isFinite(run.lossSummary.emaLoss)).toBe(true);
      expect(run.lossCurve.reduce((n: number, b: { count: number }) => n + b.count, 0)).toBe(3000);
      expect(run.lossCurve.every((b: { mean: number }) => Number.isFinite(b.mean))).toBe(true);
      expect(Math.max(...run.lossCurve.map((b: { max: number }) => b.max))).toBe(F32_MAX);
    }

    // A newer attempt rewrites the run from step 1,000 on.
    await expireLease(t, runId);
    await t.server.reaper.sweep();
    await endBackoff(t, runId);
    const again = (await agent.claim())!;
    expect(again.run.id).toBe(runId);
    await agent.client.ok(REPORT_LOSS, { r: runId, t: again.leaseToken, p: points(1000, 1999).map((p) => ({ ...p, loss: -p.loss })) });
    const { run } = await t.admin.ok(curveQuery, { id: runId, n: 1000 });
    expect(run.lossSummary.points).toBe(3000);
    expect(Number.isFinite(run.lossSummary.emaLoss)).toBe(true);
    expect(run.lossCurve.reduce((n: number, b: { count: number }) => n + b.count, 0)).toBe(3000);
    await agent.complete(runId, again.leaseToken, 'CANCELLED');
  });

  it('repairs, on migration, a run that took an out-of-range loss before such losses were refused', async () => {
    const { runId, token } = await claimNewRun(t, basics, agent);
    await agent.client.ok(REPORT_LOSS, { r: runId, t: token, p: Array.from({ length: 300 }, (_, step) => ({ step, loss: 1 / (step + 1) })) });
    // What the server used to store for two points of 1e308 in one block: the points, and sums that overflowed.
    await t.server.db.orm.execute(sql`update loss_points set loss = 1e308 where run_id = ${runId} and step in (150, 151)`);
    await t.server.db.orm.execute(sql`update loss_blocks set loss_sum = 'Infinity', max_loss = 1e308 where run_id = ${runId} and block = 1`);
    await t.server.db.orm.execute(sql`update run_summaries set ema_loss = 'NaN' where run_id = ${runId}`);
    const file = readdirSync(MIGRATIONS_FOLDER).find((f) => f.endsWith('_clamp_out_of_range_loss.sql'))!;
    const statements = readFileSync(path.join(MIGRATIONS_FOLDER, file), 'utf8').split('--> statement-breakpoint');
    await t.server.db.transaction(async (tx) => {
      for (const statement of statements) await tx.execute(sql.raw(statement));
    });

    const F32_MAX = 3.4028234663852886e38;
    const { run } = await t.admin.ok(`query($id: ID!) { run(id: $id) { lossSummary { points emaLoss } lossCurve(maxPoints: 3) { max mean count } } }`, { id: runId });
    expect(run.lossSummary.points).toBe(300);
    expect(Number.isFinite(run.lossSummary.emaLoss)).toBe(true);
    expect(run.lossCurve.map((b: { max: number }) => b.max)).toEqual([1, F32_MAX, 1 / 201]);
    expect(run.lossCurve.every((b: { mean: number }) => Number.isFinite(b.mean))).toBe(true);
    // And the run takes more points as any other.
    await agent.client.ok(REPORT_LOSS, { r: runId, t: token, p: [{ step: 300, loss: 0.01 }] });
    await agent.complete(runId, token, 'CANCELLED');
  });

  it('answers crafted cursors with BAD_USER_INPUT naming `after`, in every list', async () => {
    const { experimentId, datasetId } = basics;
    const cursor = (key: unknown) => Buffer.from(JSON.stringify(key)).toString('base64url');
    const crafted = [
      cursor([1, {}]),
      cursor([{}, SOME_ID]),
      cursor(['not a time', SOME_ID]),
      cursor(['2026-01-01 00:00:00+00', 'not an id']),
      cursor(['2026-01-01 00:00:00\u0000+00', SOME_ID]),
      cursor([1e308]),
      cursor([-1]),
      cursor([1.5]),
      cursor('x'),
      'not base64 at all!',
    ];
    const lists: [string, Record<string, unknown>][] = [
      [`query($a: String) { datasets(after: $a) { totalCount } }`, {}],
      [`query($a: String) { experiments(after: $a) { totalCount } }`, {}],
      [`query($a: String, $d: ID!) { dataset(id: $d) { images(after: $a) { totalCount } } }`, { d: datasetId }],
      [`query($a: String, $e: ID!) { experiment(id: $e) { runs(after: $a) { totalCount } } }`, { e: experimentId }],
      ...['QUEUED_AT', 'FINISHED_AT', 'MIN_LOSS', 'RANK', 'LEARNING_RATE', 'STEPS', 'PRIORITY'].map(
        (field): [string, Record<string, unknown>] => [`query($a: String, $o: RunOrder) { runs(after: $a, orderBy: $o) { totalCount } }`, { o: { field, direction: 'ASC' } }],
      ),
    ];
    for (const [query, variables] of lists) {
      for (const a of crafted) await viewer.fails('BAD_USER_INPUT', query, { ...variables, a }, 'after');
      // A real cursor still pages.
      expect((await viewer.request(query, { ...variables, a: null })).errors).toBeUndefined();
    }
  });

  it('answers number filters an integer column cannot hold with BAD_USER_INPUT naming the value', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ rank: { eq: 1.5 } }, 'filter.rank.eq'],
      [{ steps: { gte: 1e308 } }, 'filter.steps.gte'],
      [{ priority: { lte: -1e308 } }, 'filter.priority.lte'],
      [{ rank: { in: [16, 2.5] } }, 'filter.rank.in.1'],
      [{ batchSize: { eq: 4294967296 } }, 'filter.batchSize.eq'],
    ];
    for (const [filter, field] of cases) {
      await viewer.fails('BAD_USER_INPUT', `query($f: RunFilter) { runs(filter: $f) { totalCount } }`, { f: filter }, field);
      await viewer.fails('BAD_USER_INPUT', `query($f: RunFilter) { compareRuns(filter: $f, groupBy: [RANK]) { runCount } }`, { f: filter }, field);
      await viewer.fails('BAD_USER_INPUT', `query($f: RunFilter) { checkpointMatrix(filter: $f) { steps } }`, { f: filter }, field);
    }
    // Learning rates are floats: any finite value is a fair question.
    const queued = await queueRun(t.admin, basics);
    const { runs } = await viewer.ok(`query($f: RunFilter) { runs(filter: $f) { totalCount } }`, { f: { learningRate: { lte: 1e308 }, rank: { gte: -2147483648 } } });
    expect(runs.totalCount).toBeGreaterThan(0);
    await t.admin.ok(`mutation($id: ID!) { cancelRun(id: $id) { id } }`, { id: queued.id });
  });

  it('answers lossCurve and lossPoints bounds at the ends of Int', async () => {
    const { runId, token } = await claimNewRun(t, basics, agent);
    await agent.client.ok(REPORT_LOSS, { r: runId, t: token, p: [...Array.from({ length: 300 }, (_, step) => ({ step, loss: 1 })), { step: 2147483647, loss: 2 }] });
    const curve = `query($id: ID!, $from: Int, $to: Int, $n: Int) { run(id: $id) { lossCurve(fromStep: $from, toStep: $to, maxPoints: $n) { fromStep toStep count max } } }`;
    for (const n of [1, 2, 3, 1000]) {
      const { run } = await viewer.ok(curve, { id: runId, to: 2147483647, n });
      expect(run.lossCurve.reduce((sum: number, b: { count: number }) => sum + b.count, 0)).toBe(301);
      expect(run.lossCurve.at(-1)).toMatchObject({ toStep: 2147483647, max: 2 });
    }
    expect((await viewer.ok(curve, { id: runId, from: 2147483647, to: 2147483647, n: 10 })).run.lossCurve).toEqual([{ fromStep: 2147483647, toStep: 2147483647, count: 1, max: 2 }]);
    expect((await viewer.ok(curve, { id: runId, from: 250, to: 2147483646, n: 10 })).run.lossCurve.reduce((sum: number, b: { count: number }) => sum + b.count, 0)).toBe(50);
    const { run } = await viewer.ok(`query($id: ID!) { run(id: $id) { lossPoints(afterStep: 2147483647) { step } all: lossPoints(afterStep: -2147483648, first: 10000) { step } } }`, { id: runId });
    expect(run).toMatchObject({ lossPoints: [] });
    expect(run.all).toHaveLength(301);
    await viewer.fails('BAD_USER_INPUT', curve, { id: runId, from: -2147483648, n: 10 }, 'fromStep');
    await agent.complete(runId, token, 'CANCELLED');
  });

  it('refuses JSON nested deeper than 32 levels or longer than 64 KB, in `extra` and everywhere else', async () => {
    const queueRunMutation = `mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`;
    const base = { experimentId: basics.experimentId, datasetId: basics.datasetId, captionStrategyId: basics.strategyId };
    const runsBefore = (await viewer.ok(`{ runs { totalCount } }`)).runs.totalCount;
    // 5,000 levels: more than JSON.stringify here manages, so the body is written by hand.
    const deep = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
    const body = `{"query": ${JSON.stringify(queueRunMutation)}, "variables": {"i": ${JSON.stringify({ ...base, hyperparameters: { extra: '@' } }).replace('"@"', deep)}}}`;
    const res = await fetch(`${t.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${t.admin.key}` }, body });
    const answer0 = (await res.json()) as { errors: { extensions: { code: string; field: string } }[] };
    expect(answer0.errors[0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.hyperparameters.extra' });
    await t.admin.fails('BAD_USER_INPUT', queueRunMutation, { i: { ...base, hyperparameters: { extra: { blob: 'x'.repeat(64 * 1024) } } } }, 'input.hyperparameters.extra');
    await t.admin.fails(
      'BAD_USER_INPUT',
      `mutation($i: QueueSweepInput!) { queueSweep(input: $i) { id } }`,
      { i: { base: { ...base, hyperparameters: { extra: { blob: 'x'.repeat(3_900_000) } } }, grid: { rank: Array.from({ length: 100 }, (_, i) => i + 1) } } },
      'input.base.hyperparameters.extra',
    );
    // The same JSON written into the query text is refused as well (or cannot be parsed), never an internal error.
    const literal = `mutation { queueRun(input: { experimentId: "${base.experimentId}", datasetId: "${base.datasetId}", captionStrategyId: "${base.captionStrategyId}",
      hyperparameters: { extra: ${'{ a: '.repeat(5000)}1${' }'.repeat(5000)} } }) { id } }`;
    const answer = await t.admin.request(literal);
    expect(answer.errors?.[0]?.extensions?.code).toMatch(/BAD_USER_INPUT|GRAPHQL_PARSE_FAILED/);
    expect((await viewer.ok(`{ runs { totalCount } }`)).runs.totalCount).toBe(runsBefore);

    let ok: unknown = 'bottom';
    for (let i = 0; i < 30; i++) ok = { a: ok };
    const { queueRun: run } = await t.admin.ok(queueRunMutation, { i: { ...base, hyperparameters: { extra: { nested: ok, blob: 'x'.repeat(60_000) } } } });
    await t.admin.ok(`mutation($id: ID!) { cancelRun(id: $id) { id } }`, { id: run.id });
  });
});
