// One facade over the two databases loralab runs on: embedded PGlite (DATA_DIR) or PostgreSQL
// (DATABASE_URL) through postgres.js. Everything above this file sees one drizzle handle.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import postgres from 'postgres';
import { sql, type SQL } from 'drizzle-orm';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import { PgDialect, type PgDatabase, type PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type * as schema from './schema.js';
import { isBound, type Statement } from './statement.js';
import { PostgresListener } from './listener.js';
import { FairScheduler } from './fair-share.js';
import { NotifyBatcher } from './notify-batch.js';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url));

/** A drizzle handle: the database itself or a transaction (which must be used inside it). */
export type Executor = PgDatabase<PgQueryResultHKT, typeof schema>;

export type Unlisten = () => Promise<void>;

export interface Database {
  kind: 'pglite' | 'postgres';
  orm: Executor;
  /** Statements sent so far; tests use it to prove resolvers are free of N+1 queries. */
  readonly stats: { statements: number };
  transaction<T>(fn: (tx: Executor) => Promise<T>): Promise<T>;
  /**
   * Runs statements in order in one transaction and returns each one's rows. Each statement still
   * takes its own snapshot (READ COMMITTED), so a later one sees what an earlier one waited for.
   * On PostgreSQL BEGIN, the statements and COMMIT leave in one write: one round trip, where
   * transaction() costs one per statement plus two. For hot paths whose statements do not depend
   * on each other's results in JavaScript.
   */
  batch(statements: Statement[]): Promise<Record<string, unknown>[][]>;
  /**
   * Runs one statement as its own transaction. On PostgreSQL it is a prepared statement: parsed and
   * planned once per connection instead of on every call (a large CTE takes about a millisecond
   * to plan). For hot statements whose text is fixed: every distinct text stays prepared on each
   * connection. drizzle's execute() never prepares. A compiled statement (statement.ts) also
   * skips rebuilding its text.
   */
  prepared(statement: Statement): Promise<Record<string, unknown>[]>;
  /**
   * NOTIFY `payload` on `channel` for a write that has committed (notify-batch.ts); resolves once
   * sent. For hot writes: a NOTIFY inside the writing transaction serialises its commit with every
   * other notifying one.
   */
  notifyAfterCommit(channel: string, payload: string): Promise<void>;
  listen(channel: string, onPayload: (payload: string) => void): Promise<Unlisten>;
  /**
   * `handler` runs each time the LISTEN connection is back after a drop (a PostgreSQL restart or
   * failover) and listens again: every notification sent meanwhile is lost. PGlite never drops.
   */
  onListenerReconnect(handler: () => void): () => void;
  ping(): Promise<boolean>;
  /** Connections, the slots requests' statements share (fair-share.ts), and how many are busy or wait. */
  poolUsage(): { size: number; slots: number; active: number; waiting: number };
  close(): Promise<void>;
}

/** Raw rows of `execute()`: PGlite answers `{ rows }`, postgres.js an array. */
export async function rows<T = Record<string, unknown>>(executor: Executor, query: SQL): Promise<T[]> {
  const result = (await executor.execute(query)) as unknown;
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

/**
 * A list of finite numbers (or nulls) as one PostgreSQL array literal, to send as a single text
 * parameter (cast in SQL: `::float8[]`). Given as a list, each element is serialized and escaped on
 * its own (by postgres.js or PGlite), which at thousands of points costs about as much as the insert
 * itself. A number's toString is exact (the shortest text that reads back as the same float8).
 */
export function numberArrayText(values: readonly (number | null | undefined)[]) {
  let text = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    text += (i ? ',' : '') + (v == null ? 'NULL' : String(v));
  }
  return `${text}}`;
}

/**
 * Finite numbers as a float8[] in PostgreSQL's binary format (what array_recv reads), for a
 * parameter cast `::float8[]` on PGlite, which sends bytes as they are (openPglite): there a float8
 * read from text costs about 1.5 µs (its strtod), most of the time of inserting a row. Exact, as
 * every float8 is. PostgreSQL's driver sends bytes as bytea: use numberArrayText there.
 */
export function float8ArrayBinary(values: readonly number[]) {
  const bytes = new Uint8Array(20 + 12 * values.length);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, 1); // one dimension
  view.setInt32(4, 0); // no nulls
  view.setInt32(8, FLOAT8_OID);
  view.setInt32(12, values.length);
  view.setInt32(16, 1); // lower bound
  for (let i = 0, at = 20; i < values.length; i++, at += 12) {
    view.setInt32(at, 8);
    view.setFloat64(at + 4, values[i]!);
  }
  return bytes;
}

const FLOAT8_OID = 701;
const FLOAT8_ARRAY_OID = 1022;

const asSql = (statement: Statement) => (isBound(statement) ? statement.sql() : statement);

export type OpenOptions =
  | { kind: 'postgres'; url: string; maxConnections?: number; statementTimeoutMs?: number }
  | { kind: 'pglite'; dataDir?: string; loadDataDir?: Blob | File };

/** PostgreSQL's statement_timeout for the pool (config: STATEMENT_TIMEOUT_SECONDS). */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 15_000;

export async function openDatabase(options: OpenOptions): Promise<Database> {
  const stats = { statements: 0 };
  const logger = { logQuery: () => void stats.statements++ };
  if (options.kind === 'postgres') {
    return openPostgres(options.url, options.maxConnections ?? 10, options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS, stats, logger);
  }
  return openPglite(options, stats, logger);
}

/**
 * `target` with `methods` sent through `scheduler` (fair-share.ts): a request's statements then
 * wait their turn. Other members pass through, bound to the target (PGlite keeps private fields).
 */
function scheduled<T extends object>(target: T, scheduler: FairScheduler, methods: Record<string, (original: (...args: never[]) => unknown) => unknown>): T {
  return new Proxy(target, {
    get(t, prop) {
      const value = Reflect.get(t, prop) as unknown;
      if (typeof value !== 'function') return value;
      const original = (value as (...args: never[]) => unknown).bind(t);
      return typeof prop === 'string' && prop in methods ? methods[prop]!(original) : original;
    },
  });
}

/**
 * A postgres.js query sent only when its turn comes: the query object is lazy (it is sent when
 * awaited), and drizzle awaits it or its .values().
 */
function scheduledQuery(scheduler: FairScheduler, make: () => postgres.PendingQuery<postgres.Row[]>) {
  let asValues = false;
  let sent: Promise<unknown> | null = null;
  const send = () => (sent ??= scheduler.run(() => (asValues ? make().values() : make())));
  const query = {
    values() {
      asValues = true;
      return query;
    },
    then: (resolve?: (v: unknown) => unknown, reject?: (e: unknown) => unknown) => send().then(resolve, reject),
    catch: (reject: (e: unknown) => unknown) => send().catch(reject),
    finally: (fn: () => void) => send().finally(fn),
  };
  return query;
}

/**
 * Makes a new PGlite data folder (initdb and the migrations) in a worker thread that exits once it
 * is made. PGlite keeps what initdb allocated (about 230 MB of buffers) for as long as it runs: a
 * server that made its folder in its own thread held about 810–860 MB from then on, where one that
 * opens the folder a worker made holds about 450–480 MB (340 MB on a restart). The worker's memory
 * goes with it, for about half a second more on the first start only.
 */
async function initdbInWorker(dataDir: string) {
  const resolve = createRequire(import.meta.url).resolve;
  const entries = { pglite: resolve('@electric-sql/pglite'), drizzle: resolve('drizzle-orm/pglite'), migrator: resolve('drizzle-orm/pglite/migrator') };
  const worker = new Worker(
    `const { workerData: { entries, dataDir, migrationsFolder } } = require('node:worker_threads');
     (async () => {
       const client = await require(entries.pglite).PGlite.create(dataDir);
       await require(entries.migrator).migrate(require(entries.drizzle).drizzle({ client }), { migrationsFolder });
       await client.close();
     })();`,
    { eval: true, workerData: { entries, dataDir, migrationsFolder: MIGRATIONS_FOLDER }, execArgv: [] },
  );
  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`making the database folder ${dataDir} stopped with exit code ${code}`))));
  });
}

async function openPglite(
  options: { dataDir?: string; loadDataDir?: Blob | File },
  stats: { statements: number },
  logger: { logQuery: () => void },
): Promise<Database> {
  if (options.dataDir) mkdirSync(path.dirname(path.resolve(options.dataDir)), { recursive: true });
  if (options.dataDir && !options.loadDataDir && !existsSync(path.join(options.dataDir, 'PG_VERSION'))) await initdbInWorker(options.dataDir);
  const client = await PGlite.create(options.dataDir, options.loadDataDir ? { loadDataDir: options.loadDataDir } : {});
  // A float8[] parameter given as bytes (float8ArrayBinary) goes as they are, in binary format:
  // PGlite sends a parameter that is bytes so, once its serializer for the type hands them back.
  const float8Array = client.serializers[FLOAT8_ARRAY_OID]!;
  client.serializers[FLOAT8_ARRAY_OID] = (value: unknown) => (value instanceof Uint8Array ? (value as unknown as string) : float8Array(value));
  // One statement at a time: PGlite runs them one by one anyway, in order of arrival.
  const scheduler = new FairScheduler(1, 1);
  const fair = scheduled(client, scheduler, {
    query: (query) => (...args: never[]) => scheduler.run(() => query(...args) as Promise<unknown>),
    transaction: (transaction) => (...args: never[]) => scheduler.run(() => transaction(...args) as Promise<unknown>),
  });
  const orm = drizzlePglite({ client: fair, logger }) as unknown as Executor;
  if (await migrationsPending(orm)) await migratePglite(orm as never, { migrationsFolder: MIGRATIONS_FOLDER });
  return {
    kind: 'pglite',
    orm,
    stats,
    transaction: (fn) => orm.transaction(fn as never) as never,
    batch: (statements) =>
      orm.transaction(async (tx) => {
        const results: Record<string, unknown>[][] = [];
        for (const statement of statements) results.push(await rows(tx, asSql(statement)));
        return results;
      }),
    prepared: (statement) => rows(orm, asSql(statement)),
    // One connection, one statement at a time: nothing to gain from batching.
    notifyAfterCommit: async (channel, payload) => void (await fair.query('select pg_notify($1, $2)', [channel, payload])),
    async listen(channel, onPayload) {
      const unsubscribe = await client.listen(channel, onPayload);
      return async () => {
        if (!client.closed) await unsubscribe();
      };
    },
    onListenerReconnect: () => () => {},
    poolUsage: () => ({ size: 1, ...scheduler.usage() }),
    ping: () => client.query('select 1').then(() => true, () => false),
    close: () => (client.closed ? Promise.resolve() : client.close()),
  };
}

/**
 * postgres.js, reading libpq's `?host=/var/run/postgresql` (a Unix socket directory) the way psql
 * does; postgres.js itself would pass it on as a server setting. On one host the socket costs a
 * quarter of the CPU per round trip that loopback TCP does on these machines.
 */
export function connectPostgres(url: string, options: postgres.Options<{}> = {}) {
  const parsed = new URL(url);
  const socketDir = parsed.searchParams.get('host');
  if (socketDir == null) return postgres(url, options);
  parsed.searchParams.delete('host');
  return postgres(parsed.toString(), { ...options, host: socketDir });
}

async function openPostgres(
  url: string,
  maxConnections: number,
  statementTimeoutMs: number,
  stats: { statements: number },
  logger: { logQuery: () => void },
): Promise<Database> {
  await migrateUnderLock(url);
  const client = connectPostgres(url, {
    max: maxConnections,
    onnotice: () => {},
    connection: { application_name: 'loralab', statement_timeout: statementTimeoutMs },
  });
  // Requests share the pool but for two connections (the reaper, live feeds, /healthz); one request
  // holds at most a quarter of it, and heavy requests all together one connection: a heavy
  // statement keeps a database core busy, and the other cores are for everyone else (measured by
  // bench/fairness.ts: two heavy connections doubled an ordinary read's loaded p99 against one).
  const slots = Math.max(1, maxConnections - 2);
  const scheduler = new FairScheduler(slots, Math.max(1, Math.floor(slots / 4)), 1);
  const fair = scheduled(client, scheduler, {
    unsafe: (unsafe) => (...args: never[]) => scheduledQuery(scheduler, () => unsafe(...args) as postgres.PendingQuery<postgres.Row[]>),
    begin: (begin) => (...args: never[]) => scheduler.run(() => begin(...args) as Promise<unknown>),
  });
  const orm = drizzlePostgres({ client: fair, logger }) as unknown as Executor;
  const listener = new PostgresListener(url);
  const notifier = connectPostgres(url, { max: 1, onnotice: () => {}, connection: { application_name: 'loralab', synchronous_commit: 'off' } });
  const batcher = new NotifyBatcher(notifier, (err) => console.error('loralab: sending NOTIFYs failed', err));
  const dialect = new PgDialect();
  /** A drizzle statement as a postgres.js prepared query on `sql` (the pool or one reserved connection). */
  const sendPrepared = (sql: postgres.Sql, statement: Statement) => {
    const query = isBound(statement) ? statement.query(dialect) : dialect.sqlToQuery(statement);
    stats.statements++;
    return sql.unsafe(query.sql, query.params as never[], { prepare: true });
  };
  async function sendBatch(statements: Statement[]) {
    const connection = await client.reserve();
    try {
      // execute() sends at once; postgres.js pipelines everything sent before the first answer.
      const sent = [
        connection.unsafe('begin').execute(),
        ...statements.map((statement) => sendPrepared(connection, statement).execute()),
        connection.unsafe('commit').execute(),
      ];
      // A failed statement aborts the transaction: the ones after it fail with 25P02 and COMMIT
      // rolls back. The first failure in order is the one to report.
      const settled = await Promise.allSettled(sent);
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
      return settled.slice(1, -1).map((s) => [...(s as PromiseFulfilledResult<Record<string, unknown>[]>).value]);
    } finally {
      connection.release();
    }
  }
  return {
    kind: 'postgres',
    orm,
    stats,
    transaction: (fn) => orm.transaction(fn as never) as never,
    prepared: async (statement) => [...(await scheduler.run(() => sendPrepared(client, statement)))],
    batch: (statements) => scheduler.run(() => sendBatch(statements)),
    notifyAfterCommit: (channel, payload) => batcher.notify(channel, payload),
    listen: (channel, onPayload) => listener.listen(channel, onPayload),
    onListenerReconnect: (handler) => listener.onReconnect(handler),
    poolUsage: () => ({ size: maxConnections, ...scheduler.usage() }),
    ping: () =>
      client`select 1`.then(
        () => true,
        () => false,
      ),
    close: async () => {
      await listener.close();
      await batcher.close();
      await notifier.end({ timeout: 5 });
      await client.end({ timeout: 5 });
    },
  };
}

/**
 * Replicas may start together: an advisory lock on one dedicated connection makes the second wait
 * for the first to finish migrating instead of both racing to create the same tables.
 */
async function migrateUnderLock(url: string) {
  const client = connectPostgres(url, { max: 1, onnotice: () => {} });
  try {
    const orm = drizzlePostgres({ client });
    // Every start but the first after an upgrade finds nothing to do: one read says so, without
    // the lock or drizzle's DDL (CREATE SCHEMA/TABLE IF NOT EXISTS), which wait on other replicas.
    if (!(await migrationsPending(orm as never))) return;
    await orm.execute(sql`select pg_advisory_lock(${MIGRATION_LOCK_ID})`);
    await migratePostgres(orm, { migrationsFolder: MIGRATIONS_FOLDER });
    await orm.execute(sql`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`);
  } finally {
    await client.end({ timeout: 5 });
  }
}

const MIGRATION_LOCK_ID = 7_104_001;

/**
 * Whether drizzle's migrator has anything to apply: it applies each migration of the journal newer
 * than the newest one recorded in the database, so when the newest recorded is the journal's
 * newest, a restart skips reading and hashing every migration file and drizzle's DDL (on PGlite
 * those first statements cost more than opening the folder's catalog does). A database without
 * the table (a first start) has everything pending.
 */
export async function migrationsPending(orm: Executor): Promise<boolean> {
  const journal = JSON.parse(readFileSync(path.join(MIGRATIONS_FOLDER, 'meta/_journal.json'), 'utf8')) as { entries: { when: number }[] };
  const newest = Math.max(0, ...journal.entries.map((e) => e.when));
  try {
    const [last] = await rows<{ created_at: string | number }>(orm, sql`select created_at from drizzle.__drizzle_migrations order by created_at desc limit 1`);
    return !last || Number(last.created_at) < newest;
  } catch {
    return true;
  }
}
