// GET /metrics and the request timers. Prometheus scrapes with METRICS_TOKEN (a bearer token that is
// no API key, so it never counts as a failed sign-in) or an ADMIN key; any other key is refused.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { ApolloServerPlugin } from '@apollo/server';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { SignInGate } from '../graphql/sign-in.js';
import type { Principal } from '../modules/keys/keys.service.js';
import { ROUTE_PREFIX as ARTIFACT_ROUTES } from '../modules/artifacts/drivers/file.js';
import type { ServerCollectors } from './collectors.js';
import { eventRegistry, graphqlDuration, httpDuration, operationLabel } from './metrics.js';

let processMetrics = false;

const digest = (s: string) => createHash('sha256').update(s).digest();

function routeOf(path: string) {
  if (path === '/graphql') return 'graphql';
  if (path === '/healthz' || path === '/metrics') return path.slice(1);
  if (path.startsWith(`${ARTIFACT_ROUTES}/`)) return 'artifacts';
  return 'web';
}

/** Express middleware: every HTTP request's duration, by route, method and status. */
export const timeRequests: RequestHandler = (req, res, next) => {
  const started = performance.now();
  res.once('finish', () => {
    httpDuration.observe({ route: routeOf(req.path), method: req.method, code: String(res.statusCode) }, (performance.now() - started) / 1000);
  });
  next();
};

/** Apollo plugin: every GraphQL operation's duration by operation name. */
export const timeOperations: ApolloServerPlugin = {
  async requestDidStart({ request }) {
    const started = performance.now();
    return {
      async willSendResponse({ operationName }) {
        graphqlDuration.observe({ operation: operationLabel(operationName ?? request.operationName) }, (performance.now() - started) / 1000);
      },
    };
  },
};

const refuse = (res: Parameters<RequestHandler>[1], status: 401 | 403, code: string, message: string) =>
  res.status(status).json({ errors: [{ message, extensions: { code } }] });

/** GET /metrics: the process's event series and this server's gauges, in Prometheus text format. */
export function metricsRoute(options: { gate: SignInGate; metricsToken: string | undefined; collectors: ServerCollectors }): RequestHandler {
  if (!processMetrics) {
    // CPU, memory, event-loop delay and GC of this process, as loralab_process_cpu_seconds_total and so on.
    collectDefaultMetrics({ register: eventRegistry, prefix: 'loralab_' });
    processMetrics = true;
  }
  const token = options.metricsToken ? digest(options.metricsToken) : null;
  const signIn = options.gate.http();
  const answer: RequestHandler = async (_req, res, next) => {
    try {
      const registry = Registry.merge([eventRegistry, await options.collectors.collect()]);
      res.type(registry.contentType).send(await registry.metrics());
    } catch (err) {
      next(err);
    }
  };
  return (req, res, next) => {
    const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (token && bearer && timingSafeEqual(digest(bearer), token)) return answer(req, res, next);
    return signIn(req, res, () => {
      const principal = res.locals.principal as Principal | null;
      if (!principal) return refuse(res, 401, 'UNAUTHENTICATED', 'Send an ADMIN key or METRICS_TOKEN: "Authorization: Bearer <key>"');
      if (principal.role !== 'ADMIN') return refuse(res, 403, 'FORBIDDEN', `A ${principal.role} key may not read /metrics: use an ADMIN key or METRICS_TOKEN`);
      return answer(req, res, next);
    });
  };
}
