// The CLI's GraphQL client, and the exit codes its failures map to (docs/cli.md lists them).
import http from 'node:http';
import https from 'node:https';

export const EXIT = {
  OK: 0,
  /** Something asked for failed: a folder that did not import, a refused request, a file that did not verify. */
  FAILED: 1,
  /** The command line itself is wrong (unknown option, missing argument, no token). */
  USAGE: 2,
  /** The server could not be reached, or answered something that is not loralab's GraphQL. */
  UNREACHABLE: 3,
  /** The key is missing, wrong, revoked, or its role may not do this. */
  DENIED: 4,
  /** The run, sweep or other record named does not exist. */
  NOT_FOUND: 5,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

const EXIT_OF_CODE: Record<string, number> = { UNAUTHENTICATED: EXIT.DENIED, FORBIDDEN: EXIT.DENIED, NOT_FOUND: EXIT.NOT_FOUND };

export interface ApiOptions {
  server: string;
  token: string;
  timeoutMs?: number;
}

export class Api {
  readonly server: string;
  readonly graphqlUrl: string;

  constructor(private readonly options: ApiOptions) {
    // A base URL or one ending in /graphql, as the agent takes it.
    this.server = options.server.replace(/\/+$/, '').replace(/\/graphql$/, '');
    this.graphqlUrl = `${this.server}/graphql`;
  }

  async call<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    let res: { status: number; ok: boolean };
    let text: string;
    try {
      ({ res, text } = await post(this.graphqlUrl, JSON.stringify({ query, variables }), this.options.token, this.options.timeoutMs ?? 120_000));
    } catch (err) {
      throw new CliError(`cannot reach ${this.graphqlUrl}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.UNREACHABLE);
    }
    let body: { data?: T | null; errors?: { message: string; extensions?: { code?: string } }[] } | null = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    const first = body?.errors?.[0];
    if (first) {
      const code = first.extensions?.code;
      throw new CliError(`${first.message}${code ? ` (${code})` : ''}`, (code ? EXIT_OF_CODE[code] : undefined) ?? EXIT.FAILED, code);
    }
    if (res.status === 401 || res.status === 429) throw new CliError(`${this.graphqlUrl} answered HTTP ${res.status}: ${text.slice(0, 200)}`, EXIT.DENIED);
    if (!res.ok || !body?.data) throw new CliError(`${this.graphqlUrl} answered HTTP ${res.status} without data — is ${this.server} a loralab server?`, EXIT.UNREACHABLE);
    return body.data;
  }

  /** Every node of a connection, page by page. */
  async all<N>(query: string, variables: Record<string, unknown>, pick: (data: never) => { edges: { node: N }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } }) {
    const nodes: N[] = [];
    let after: string | null = null;
    for (;;) {
      const page = pick((await this.call(query, { ...variables, after })) as never);
      nodes.push(...page.edges.map((e) => e.node));
      if (!page.pageInfo.hasNextPage) return nodes;
      after = page.pageInfo.endCursor;
    }
  }
}

/** Connections kept open between calls: an import makes hundreds, and a new one each is a handshake each. */
const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

/**
 * One POST through node:http(s). fetch cost the CLI several ms of CPU per call (its streams and
 * bookkeeping), which at hundreds of calls an import was a good part of the CLI's CPU.
 */
function post(url: string, body: string, token: string, timeoutMs: number): Promise<{ res: { status: number; ok: boolean }; text: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const request = (secure ? https : http).request(
      target,
      {
        method: 'POST',
        agent: secure ? agents.https : agents.http,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), authorization: `Bearer ${token}` },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          resolve({ res: { status, ok: status >= 200 && status < 300 }, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(Object.assign(new Error(`no answer in ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
    request.on('error', reject);
    request.end(body);
  });
}
