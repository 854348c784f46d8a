// Every `extensions.code` a loralab client can meet, in one list: the server throws only these,
// and the agent (agents/) and the page (web/) import this file to compare codes, so a code renamed
// or misspelt on either side fails `npm run typecheck`. It imports nothing, so both can bundle it.
export const ERROR_CODES = [
  /** No key, or one the server does not know (revoked, mistyped). */
  'UNAUTHENTICATED',
  /** The key's role may not call the field, or the key may not act as that agent. */
  'FORBIDDEN',
  /** An argument is wrong; `extensions.field` names it ("input.hyperparameters.rank"). */
  'BAD_USER_INPUT',
  /** The HTTP request itself is unreadable (its body is not JSON). */
  'BAD_REQUEST',
  'NOT_FOUND',
  /** The run's lease is no longer this token's: the agent stops training it. */
  'LEASE_LOST',
  /** The run's status has no such move (lifecycle.ts). */
  'INVALID_TRANSITION',
  'CONFLICT',
  /** Too deep, too costly, or a statement ran out of time (`extensions.reason`). */
  'QUERY_TOO_COMPLEX',
  'PAYLOAD_TOO_LARGE',
  'RATE_LIMITED',
  /** A subscriber fell too far behind its live feed and was dropped; subscribing again catches up. */
  'SUBSCRIBER_TOO_SLOW',
  /** A live feed lost its database connection; subscribing again catches up. */
  'LIVE_FEED_INTERRUPTED',
  /** A fault of the server's: the same request may succeed later. */
  'INTERNAL_SERVER_ERROR',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export const isErrorCode = (code: unknown): code is ErrorCode => (ERROR_CODES as readonly unknown[]).includes(code);
