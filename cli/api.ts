// The CLI's GraphQL client, and the exit codes its failures map to (docs/cli.md lists them).

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
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.options.token}` },
        body: JSON.stringify({ query, variables }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 120_000),
      });
      text = await res.text();
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach ${this.graphqlUrl}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, EXIT.UNREACHABLE);
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
