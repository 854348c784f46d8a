// The API server: Apollo over express and graphql-ws on one HTTP port, both at /graphql.
import type { GraphQLSchema } from 'graphql';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import express, { type ErrorRequestHandler } from 'express';
import { ApolloServer } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { openDatabase, type Database } from './db/client.js';
import { currentShare, Share, withShare } from './db/fair-share.js';
import { HeavyLane } from './graphql/heavy-lane.js';
import { Notifier } from './live/notify.js';
import { createFeeds } from './live/feeds.js';
import { buildSchema } from './graphql/schema.js';
import { localGateway } from './graphql/executor.js';
import { createContext, type AppServices, type Context } from './graphql/context.js';
import { prepareSubscription, queryLimitsPlugin, RunCount } from './graphql/limits.js';
import { countRuns } from './modules/runs/runs.store.js';
import { ensureAdminKey, type Principal } from './modules/keys/keys.service.js';
import { Authenticator } from './modules/keys/authenticator.js';
import { lockDataDir } from './datadir-lock.js';
import { webRoutes } from './web.js';
import { subscribeSharingResults } from './live/shared-results.js';
import { Reaper } from './modules/dispatch/reaper.js';
import { createLogger } from './log.js';
import { secureDataDir } from './datadir-modes.js';
import { AuthThrottle } from './modules/keys/auth-throttle.js';
import { findActiveKeyIds } from './modules/keys/keys.store.js';
import { SignInGate } from './graphql/sign-in.js';
import { KeySockets } from './graphql/key-sockets.js';
import { introspectionNeedsKeyPlugin } from './graphql/introspection.js';
import { graphqlPage } from './graphql/landing-page.js';
import { stringifyResult } from './graphql/stringify.js';
import { errorResponse, publicError } from './graphql/errors.js';
import { REMEMBER_KEY_MS } from './modules/keys/authenticator.js';
import { createArtifactService } from './modules/artifacts/artifacts.service.js';
import { artifactRoutes } from './modules/artifacts/routes.js';
import { metricsRoute, timeOperations, timeRequests } from './telemetry/routes.js';
import { serverCollectors } from './telemetry/collectors.js';
import { countError } from './telemetry/metrics.js';

export const MAX_BODY = '4mb';

export interface RunningServer {
  url: string;
  port: number;
  db: Database;
  app: AppServices;
  /** The admin key created on this start (empty database), else null. */
  createdAdminKey: string | null;
  reaper: Reaper;
  close(): Promise<void>;
}

export interface StartOptions {
  config: Config;
  log?: Logger;
  /** An already open database (tests); the server then does not close it. */
  db?: Database;
  /** The clock of the failed-authentication throttle (tests move it instead of sleeping). */
  clock?: () => number;
  /** How often the keys of open WebSockets are asked about, besides revocation NOTIFYs. */
  keyRecheckMs?: number;
}

export async function startServer({
  config,
  log = createLogger(config.logLevel),
  db: givenDb,
  clock,
  keyRecheckMs = REMEMBER_KEY_MS,
}: StartOptions): Promise<RunningServer> {
  // The page's freshness check (a walk over web/) runs while the database opens.
  const web = webRoutes(log);
  const onPglite = !givenDb && !config.databaseUrl;
  // DATA_DIR itself first: 0700 keeps everyone out of what is under it while PGlite opens, and the
  // one walk over everything under it comes after the open, which creates files 0666.
  if (onPglite) secureDataDir(config.dataDir, log, 'before start', { deep: false });
  const releaseLock = onPglite ? await lockDataDir(config.dataDir) : null;
  let schema: GraphQLSchema;
  let db: Database;
  try {
    const opening =
      givenDb ??
      (config.databaseUrl
        ? openDatabase({ kind: 'postgres', url: config.databaseUrl, maxConnections: config.databasePoolSize, statementTimeoutMs: config.statementTimeoutSeconds * 1000 })
        : openDatabase({ kind: 'pglite', dataDir: path.join(config.dataDir, 'pgdata') }));
    // Built while the database opens: PGlite compiles its WebAssembly on other threads meanwhile.
    schema = buildSchema();
    db = await opening;
  } catch (err) {
    await releaseLock?.();
    throw err;
  }
  // A first start has just created the database's files, with PGlite's modes.
  if (onPglite) secureDataDir(config.dataDir, log, 'after opening the database');

  const createdAdminKey = await ensureAdminKey(db, config.adminKey);
  if (createdAdminKey && !config.databaseUrl && !givenDb) {
    const keyFile = path.join(path.resolve(config.dataDir), 'admin-key');
    writeFileSync(keyFile, `${createdAdminKey}\n`, { mode: 0o600 });
    chmodSync(keyFile, 0o600);
  }

  const notifier = new Notifier(db);
  const authenticator = new Authenticator(db.orm);
  await authenticator.start(notifier);
  const throttle = new AuthThrottle({
    limit: config.authFailureLimit,
    windowMs: config.authFailureWindowSeconds * 1000,
    now: clock,
    log: log.child({ module: 'auth' }),
  });
  const keySockets = new KeySockets((ids) => findActiveKeyIds(db.orm, ids), log.child({ module: 'websocket' }));
  const gate = new SignInGate(authenticator, throttle, keySockets, config.trustProxy, log.child({ module: 'auth' }));
  authenticator.onRevoked((keyId) => keySockets.revoked(keyId));
  keySockets.start(keyRecheckMs);
  const artifacts = await createArtifactService({ db, config, log: log.child({ module: 'artifacts' }) });
  artifacts.warnAboutReplicas();
  const runCount = new RunCount(() => countRuns(db.orm, {}));
  await runCount.refresh();
  // With the reaper's sweeps: tests that count statements turn both off together.
  runCount.start(config.reaperIntervalSeconds * 1000);
  const app: AppServices = { db, config, log, notifier, authenticator, artifacts, runCount, feeds: createFeeds(db, notifier, log.child({ module: 'feeds' })) };
  const expressApp = express();
  const httpServer = http.createServer(expressApp);

  const wsServer = new WebSocketServer({ server: httpServer, path: '/graphql' });
  const wsCleanup = useServer<{ authorization?: string }, { principal?: Principal | null }>(
    {
      schema,
      subscribe: subscribeSharingResults,
      onConnect: (ctx) => gate.openSocket(ctx),
      // Parsed, validated and held to the limits here, so that a bad operation gets an error of
      // its own: anything thrown from this hook closes the whole socket (4500) with the client's
      // other subscriptions.
      onSubscribe: async (ctx, _id, payload) => (await gate.recheckSocket(ctx)) ?? prepareSubscription(schema, payload, runCount),
      // Errors a resolver did not mean for the client (SQL, stack) are logged and answered generically, as over HTTP.
      onNext: (_ctx, _id, _payload, _args, result) =>
        result.errors ? { ...result, errors: result.errors.map((e) => countError(publicError(e.toJSON(), e.originalError ?? e, log, config.statementTimeoutSeconds))) } : undefined,
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => countError(publicError(e.toJSON(), e.originalError ?? e, log, config.statementTimeoutSeconds))),
      context: (ctx): Context => createContext(app, ctx.extra.principal ?? null, randomUUID(), undefined, `http://${ctx.extra.request.headers.host}`),
    },
    wsServer,
  );

  const heavyLane = new HeavyLane(config.statementTimeoutSeconds * 1000);

  const apollo = new ApolloServer<Context>({
    // The schema, with queries compiled by graphql-jit (graphql/executor.ts).
    gateway: localGateway(schema),
    // Introspection answers signed-in keys only (introspectionNeedsKeyPlugin).
    introspection: true,
    logger: log,
    // index.ts owns shutdown. Apollo's own SIGTERM handler would stop the server under our feet and
    // re-raise the signal, and the two shutdowns together hung until the 10 s deadline (exit 1).
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: false,
    // A heavy request's turn (graphql/heavy-lane.ts) ends with the last of its work: its answer's text.
    stringifyResult: (value) => {
      const text = stringifyResult(value);
      const share = currentShare();
      if (!share) return text;
      if (typeof text === 'string') {
        heavyLane.leave(share);
        return text;
      }
      return text.finally(() => heavyLane.leave(share));
    },
    // Expected failures carry their own code; anything else is a bug whose details (SQL, stack)
    // belong in the log, not in the client's answer.
    formatError: (formatted, error) => countError(publicError(formatted, unwrapResolverError(error), log, config.statementTimeoutSeconds)),
    plugins: [
      // Apollo's default landing page loads its sandbox from a CDN; GET /graphql shows graphqlPage.
      ApolloServerPluginLandingPageDisabled(),
      introspectionNeedsKeyPlugin,
      // Cache hints are never used here, and the plugin wraps every field resolver: turning it off
      // makes large answers (a compareRuns of many groups) markedly faster (bench/compare.ts).
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginDrainHttpServer({ httpServer }),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              await wsCleanup.dispose();
            },
          };
        },
      },
      queryLimitsPlugin(runCount, heavyLane),
      timeOperations,
      {
        async requestDidStart({ contextValue, request }) {
          const started = performance.now();
          return {
            async willSendResponse({ errors }) {
              contextValue.log.debug(
                { operation: request.operationName, ms: Math.round(performance.now() - started), errors: errors?.length ?? 0 },
                'graphql request',
              );
            },
          };
        },
      },
    ],
  });
  await apollo.start();

  expressApp.disable('x-powered-by');
  expressApp.use(timeRequests);
  // Express would sha1 every answer for an ETag; GraphQL POSTs are never revalidated.
  expressApp.set('etag', false);
  expressApp.get('/healthz', async (_req, res) => {
    const ok = await db.ping();
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'database unreachable' });
  });
  expressApp.get('/metrics', metricsRoute({ gate, metricsToken: config.metricsToken, collectors: serverCollectors(db, app.feeds, config.leaseTtlSeconds, heavyLane) }));
  if (artifacts.signer) expressApp.use(artifactRoutes(artifacts.driver as never, artifacts.signer, log.child({ module: 'artifacts' })));
  expressApp.use(web);
  expressApp.get('/graphql', graphqlPage);
  expressApp.use(
    '/graphql',
    gate.http(),
    express.json({ limit: MAX_BODY }),
    // Each request's statements take their turn with other requests' (db/fair-share.ts), and a
    // heavy request waits for its turn among heavy ones (graphql/heavy-lane.ts).
    (_req, res, next) => {
      const share = new Share(config.statementTimeoutSeconds * 1000);
      res.on('close', () => heavyLane.leave(share));
      withShare(share, next);
    },
    expressMiddleware(apollo, {
      context: async ({ req, res }) => {
        const controller = new AbortController();
        // A long poll (claimRun waitSeconds) learns here that its client left.
        res.on('close', () => {
          if (!res.writableFinished) controller.abort();
        });
        const requestId = (req.headers['x-request-id'] as string | undefined) ?? randomUUID();
        return createContext(app, (res.locals.principal as Principal | null) ?? null, requestId, controller.signal, `${req.protocol}://${req.get('host')}`);
      },
    }),
  );
  const bodyErrors: ErrorRequestHandler = (err, _req, res, next) => {
    if (err?.type === 'entity.too.large') {
      res.status(413).json(errorResponse('PAYLOAD_TOO_LARGE', `Request body is larger than ${MAX_BODY}`));
      return;
    }
    if (err?.type === 'entity.parse.failed') {
      res.status(400).json(errorResponse('BAD_REQUEST', 'Request body is not valid JSON'));
      return;
    }
    next(err);
  };
  expressApp.use(bodyErrors);

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => resolve());
  });
  const reaper = new Reaper(db, { intervalSeconds: config.reaperIntervalSeconds, backoffSeconds: config.retryBackoffSeconds, leaseTtlSeconds: config.leaseTtlSeconds }, log.child({ module: 'reaper' }));
  reaper.start();

  const address = httpServer.address() as { port: number };
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${address.port}`;
  log.info({ url: `${url}/graphql`, database: db.kind }, 'loralab API listening');

  let closing: Promise<void> | null = null;
  return {
    url,
    port: address.port,
    db,
    app,
    createdAdminKey,
    reaper,
    close() {
      closing ??= (async () => {
        await reaper.stop();
        keySockets.stop();
        runCount.stop();
        await apollo.stop(); // stops accepting, drains HTTP and WebSocket
        await notifier.close();
        await artifacts.close();
        if (!givenDb) await db.close();
        await releaseLock?.();
      })();
      return closing;
    },
  };
}
