// The server's logger. A log travels further than the database (files, log services, support
// tickets), so it carries statement names, error codes and ids, never SQL parameters, keys, key
// hashes or lease tokens, and no value longer than MAX_LOGGED_CHARS. Database errors are the
// dangerous ones: drizzle puts the whole statement and its parameters in the message, PGlite
// attaches `query` and `params`, PostgreSQL's `detail` quotes the row ("Key (key_hash)=(…)").
import pino, { type DestinationStream, type Logger } from 'pino';
import type { Config } from './config.js';

export const MAX_LOGGED_CHARS = 500;
const MAX_STACK_FRAMES = 12;
const MAX_CAUSES = 3;

/** Fields that name a secret wherever they appear in a logged object (two levels deep). */
const SECRET_FIELDS = ['authorization', 'leaseToken', 'token', 'key', 'keyHash', 'logTail', 'password'];
const REDACTED_PATHS = SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);

/** What an error may say about itself: codes and the names of database objects, not values. */
const SAFE_ERROR_FIELDS = [
  'code',
  'errno',
  'syscall',
  'severity',
  'constraint',
  'constraint_name',
  'table',
  'table_name',
  'column',
  'column_name',
  'schema',
  'schema_name',
];

export function createLogger(level: Config['logLevel'], destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      serializers: { err: serializeError, error: serializeError },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      formatters: { log: (fields) => capValues(fields, 0) as Record<string, unknown> },
    },
    destination,
  );
}

/** API keys, hex digests and long random tokens, wherever they turn up in a text. */
export function scrubSecrets(text: string) {
  return text
    .replace(/llk_[A-Za-z0-9_-]+/g, 'llk_[redacted]')
    .replace(/\b[0-9a-f]{64}\b/gi, '[redacted]')
    .replace(/\b(?![0-9a-f]{8}-[0-9a-f]{4}-)[A-Za-z0-9_-]{32,}/gi, '[redacted]'); // not a uuid: ids are worth keeping
}

export function capText(text: string, max = MAX_LOGGED_CHARS) {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/**
 * The `/* name *\/` a statement of ours carries; for drizzle's query builder, what it does to
 * which table ("insert into api_keys"); else its first words.
 */
export function statementName(query: unknown): string | undefined {
  if (typeof query !== 'string') return undefined;
  const named = /\/\*\s*([\w.-]+)\s*\*\//.exec(query);
  if (named) return named[1];
  const write = /^\s*(insert into|update|delete from)\s+"(\w+)"/i.exec(query);
  if (write) return `${write[1]!.toLowerCase()} ${write[2]}`;
  const read = /^\s*select\b.*?\bfrom\s+"(\w+)"/is.exec(query);
  if (read) return `select from ${read[1]}`;
  return capText(query.replace(/\s+/g, ' ').trim(), 80);
}

type ErrorLike = Error & Record<string, unknown>;

export function serializeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return typeof err === 'string' ? capText(scrubSecrets(err)) : err;
  const e = err as ErrorLike;
  // PGlite's minified classes are called "O": their `name` says more.
  const type = (e.constructor?.name?.length ?? 0) > 2 ? e.constructor.name : e.name;
  // postgres.js keeps the statement on its errors (not enumerable), drizzle and PGlite as `query`.
  const statement = statementName(e.query);
  // drizzle's "Failed query: <sql>\nparams: <values>": the statement's name says which, the cause says why.
  const message = e.message.startsWith('Failed query:') ? 'Failed query' : capText(scrubSecrets(e.message));
  const out: Record<string, unknown> = { type, message };
  if (statement) out.statement = statement;
  for (const field of SAFE_ERROR_FIELDS) {
    const value = e[field];
    if (typeof value === 'string' || typeof value === 'number') out[field] = typeof value === 'string' ? capText(scrubSecrets(value), 100) : value;
  }
  if (typeof e.stack === 'string') {
    // The first line repeats the message; the frames are code locations.
    out.stack = scrubSecrets(e.stack.split('\n').filter((line) => /^\s+at /.test(line)).slice(0, MAX_STACK_FRAMES).join('\n'));
  }
  const cause = e.cause ?? e.originalError;
  if (cause != null && depth < MAX_CAUSES) out.cause = serializeError(cause, depth + 1);
  return out;
}

/** Long strings capped, errors serialized, wherever they sit in a logged object. */
function capValues(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return capText(value);
  if (value instanceof Error) return depth === 0 ? value : serializeError(value);
  if (value === null || typeof value !== 'object' || depth > 4) return value;
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => capValues(v, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = depth === 0 && (k === 'err' || k === 'error') ? v : capValues(v, depth + 1);
  return out;
}
