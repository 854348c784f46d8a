// Every expected failure is a GraphQLError with a stable `extensions.code`; input errors also name
// the field at fault (`extensions.field`, a path like "input.hyperparameters.rank").
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import type { Logger } from 'pino';
import type { ZodError } from 'zod';
import type { ErrorCode } from './error-codes.js';

export type { ErrorCode };

export function apiError(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}) {
  return new GraphQLError(message, { extensions: { code, ...extensions } });
}

/** An error answered before GraphQL runs (the request body, the key check), shaped as GraphQL's. */
export const errorResponse = (code: ErrorCode, message: string) => ({ errors: [{ message, extensions: { code } }] });

export const badInput = (field: string, message: string) =>
  apiError('BAD_USER_INPUT', `${field}: ${message}`, { field });

export const notFound = (field: string, what: string, id: string) =>
  apiError('NOT_FOUND', `${what} ${id} does not exist`, { field });

export const unauthenticated = (message = 'An API key is required: send "Authorization: Bearer <key>"') =>
  apiError('UNAUTHENTICATED', message);

export const forbidden = (message: string, extensions: Record<string, unknown> = {}) => apiError('FORBIDDEN', message, extensions);

export const invalidTransition = (message: string, from?: string) =>
  apiError('INVALID_TRANSITION', message, from ? { status: from } : {});

export const leaseLost = (runId: string) =>
  apiError('LEASE_LOST', `The lease on run ${runId} is no longer held by this token: stop training it`);

/** The first zod issue as BAD_USER_INPUT, its path joined under `root` ("input.images.3.fileName"). */
export function fromZodError(error: ZodError, root: string) {
  const issue = error.issues[0]!;
  const field = [root, ...issue.path.map(String)].filter(Boolean).join('.');
  return badInput(field, issue.message);
}

/**
 * The expected failure behind an error a driver wrapped (drizzle wraps whatever a statement throws):
 * a GraphQLError of ours (a request out of database time), or PostgreSQL's statement_timeout.
 */
export function expectedCause(error: unknown, statementTimeoutSeconds: number): GraphQLError | null {
  for (let e = error, depth = 0; e != null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof GraphQLError && e.extensions?.code) return e;
    if ((e as { code?: unknown }).code === '57014') {
      return apiError('QUERY_TOO_COMPLEX', `A statement of this request ran longer than ${statementTimeoutSeconds} s and was stopped. Ask for less at once`, {
        reason: 'STATEMENT_TIMEOUT',
      });
    }
  }
  return null;
}

/**
 * The error as the client sees it. Errors with a code, and GraphQL's own (syntax, validation),
 * pass; anything a resolver threw without meaning to is a bug whose details (SQL, stack) belong in
 * the log, and the client gets a generic answer. `original` is what the resolver threw.
 */
export function publicError(formatted: GraphQLFormattedError, original: unknown, log: Logger, statementTimeoutSeconds: number): GraphQLFormattedError {
  const code = formatted.extensions?.code;
  const unexpected = code === 'INTERNAL_SERVER_ERROR' || (code === undefined && original instanceof Error && !(original instanceof GraphQLError));
  if (!unexpected) return formatted;
  const expected = expectedCause(original, statementTimeoutSeconds);
  if (expected) return { ...expected.toJSON(), path: formatted.path };
  log.error({ err: original, path: formatted.path }, 'internal error');
  return { ...errorResponse('INTERNAL_SERVER_ERROR', 'Internal server error').errors[0]!, path: formatted.path };
}
