// GraphQL over HTTP with the signed-in key; an UNAUTHENTICATED answer signs the page out.
import { isErrorCode, type ErrorCode } from '../../src/graphql/error-codes.js';

const KEY = 'loralab.apiKey';

/** The server's code, or the page's own when there was no answer to read one from. */
export type PageErrorCode = ErrorCode | 'NETWORK' | 'ERROR' | `HTTP_${number}`;

export class ApiError extends Error {
  constructor(
    readonly code: PageErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export const getKey = () => localStorage.getItem(KEY);
export const setKey = (key: string) => localStorage.setItem(KEY, key);
export const clearKey = () => localStorage.removeItem(KEY);

const unauthenticated = new Set<(message: string) => void>();
/** Called when the server refuses the stored key (HTTP or WebSocket). */
export function onUnauthenticated(fn: (message: string) => void) {
  unauthenticated.add(fn);
}
export function signOut(message = '') {
  clearKey();
  for (const fn of unauthenticated) fn(message);
}

export const REJECTED = 'That key was not accepted';

export async function gql<T = any>(query: string, variables: Record<string, unknown> = {}, key = getKey()): Promise<T> {
  let res: Response;
  try {
    res = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError('NETWORK', 'The server could not be reached');
  }
  const body = (await res.json().catch(() => null)) as { data?: T; errors?: { message: string; extensions?: { code?: string; field?: string } }[] } | null;
  if (!body) throw new ApiError(`HTTP_${res.status}`, `The server answered ${res.status}`);
  const first = body.errors?.[0];
  if (first) {
    const code = first.extensions?.code;
    const error = new ApiError(isErrorCode(code) ? code : 'ERROR', first.message, first.extensions?.field);
    // A key that stopped working (revoked) while signed in: back to the sign-in form.
    if (error.code === 'UNAUTHENTICATED' && key === getKey()) signOut(REJECTED);
    throw error;
  }
  return body.data as T;
}

export type Role = 'VIEWER' | 'EDITOR' | 'ADMIN' | 'AGENT';
let role: Role | null = null;
let roleKnown: Promise<Role | null> = Promise.resolve(null);
export const viewerRole = () => role;
export const setViewerRole = (r: Role | null) => {
  role = r;
  roleKnown = Promise.resolve(r);
};
/** The role arrives while a view already loads its data; views await this before drawing buttons. */
export const whenRoleKnown = () => roleKnown;
export function expectRole(pending: Promise<Role>) {
  roleKnown = pending.then(
    (r) => (role = r),
    () => null,
  );
  return roleKnown;
}
export const canEdit = () => role === 'EDITOR' || role === 'ADMIN';
