// Relay connections with keyset cursors: a cursor holds the sort key of its row, so pages stay
// stable while rows are added before them (an offset would shift).
import { badInput } from './errors.js';
import { isId } from './ids.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export function pageSize(first: number | null | undefined, field = 'first') {
  if (first == null) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 0 || first > MAX_PAGE_SIZE) {
    throw badInput(field, `must be between 0 and ${MAX_PAGE_SIZE}`);
  }
  return first;
}

export function encodeCursor(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** A check of one part of a cursor's key: what this server put there, or the cursor is not ours. */
export type CursorPart = (value: unknown) => boolean;

const INT_MAX = 2_147_483_647;
const PG_TIME = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d{1,6})?[+-]\d\d(:\d\d){0,2}$/;

/** A timestamptz as PostgreSQL prints it ("2026-11-27 12:00:00.123456+00"), with a day that exists. */
function isPgTime(value: unknown) {
  const m = typeof value === 'string' ? PG_TIME.exec(value) : null;
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day && hour < 24 && minute < 60 && second < 60;
}

export const cursorParts = {
  id: ((v) => typeof v === 'string' && isId(v)) as CursorPart,
  time: isPgTime as CursorPart,
  /** A value of an integer column. */
  int: ((v) => Number.isInteger(v) && Math.abs(v as number) <= INT_MAX) as CursorPart,
  number: ((v) => typeof v === 'number' && Number.isFinite(v)) as CursorPart,
  nullable: (part: CursorPart): CursorPart => (v) => v === null || part(v),
};

/** The key of `cursor` when each of its parts passes its check; BAD_USER_INPUT on `field` otherwise. */
export function decodeCursor(cursor: string | null | undefined, parts: CursorPart[], field = 'after'): unknown[] | null {
  if (cursor == null) return null;
  try {
    const key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length === parts.length && parts.every((valid, i) => valid(key[i]))) return key;
  } catch {
    // fall through to the error below
  }
  throw badInput(field, 'is not a cursor from this list');
}

export interface Connection<T> {
  edges: { node: T; cursor: string }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  totalCount: () => Promise<number>;
}

/** `rows` holds up to first + 1 rows: the extra one only says that a next page exists. */
export function toConnection<Row, Node = Row>(
  rows: Row[],
  first: number,
  keyOf: (row: Row) => unknown[],
  totalCount: () => Promise<number>,
  hasPreviousPage: boolean,
  nodeOf: (row: Row) => Node = (row) => row as unknown as Node,
): Connection<Node> {
  const page = rows.slice(0, first);
  const edges = page.map((row) => ({ node: nodeOf(row), cursor: encodeCursor(keyOf(row)) }));
  return {
    edges,
    pageInfo: {
      hasNextPage: rows.length > first,
      hasPreviousPage,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
    totalCount,
  };
}
