// Signed URLs of the embedded store: the server's own routes, readable without an Authorization
// header, each bound to one method, one path and its parameters, until it expires. The key lives
// in the database, so a URL signed by one replica is good on every other.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { rows, type Executor } from '../../db/client.js';

const KEY_NAME = 'artifact-url-key';

/** The shared signing key: made by the first server to start, read by every later one. */
export async function loadSigningKey(db: Executor): Promise<Buffer> {
  // DO UPDATE (a no-op) rather than DO NOTHING: it waits for a replica inserting the key at the same
  // moment and returns the committed row, where a read in this statement's snapshot would miss it.
  const [row] = await rows<{ value: string }>(
    db,
    sql`/* loadSigningKey */
      insert into server_secrets (name, value) values (${KEY_NAME}, ${randomBytes(32).toString('base64')})
      on conflict (name) do update set name = excluded.name
      returning value`,
  );
  return Buffer.from(row!.value, 'base64');
}

export type Verdict = 'valid' | 'expired' | 'invalid';

export class UrlSigner {
  constructor(private readonly key: Buffer) {}

  private mac(method: string, path: string, params: [string, string][], expires: string) {
    const canonical = [method, path, ...params.map(([k, v]) => `${k}=${v}`), `expires=${expires}`].join('\n');
    return createHmac('sha256', this.key).update(canonical).digest('base64url');
  }

  /** `path?params&expires=…&signature=…`; `path` must already be URL-encoded as it will be requested. */
  sign(method: 'GET' | 'PUT', path: string, params: Record<string, string>, expiresAt: number): string {
    const entries = Object.entries(params).sort(([a], [b]) => (a < b ? -1 : 1));
    const expires = String(expiresAt);
    const query = new URLSearchParams([...entries, ['expires', expires], ['signature', this.mac(method, path, entries, expires)]]);
    return `${path}?${query}`;
  }

  /**
   * Checks a request against its signature. `params` are the signed parameters the route reads
   * (everything in the query but expires and signature); an extra or missing one fails.
   */
  verify(method: 'GET' | 'PUT', path: string, query: URLSearchParams, nowSeconds: number): Verdict {
    const expires = query.get('expires');
    const signature = query.get('signature');
    if (!expires || !signature || !/^\d{1,12}$/.test(expires)) return 'invalid';
    const params = [...query.entries()].filter(([k]) => k !== 'expires' && k !== 'signature').sort(([a], [b]) => (a < b ? -1 : 1));
    const expected = Buffer.from(this.mac(method, path, params, expires));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
    return Number(expires) < nowSeconds ? 'expired' : 'valid';
  }
}
