// The agent's side of the GraphQL contract (docs/agent.md, docs/api.md), over fetch. Every failure is sorted into
// what the caller does next: `retryable` (the server could not be reached or had a passing fault:
// try again later), `lease_lost` (stop the trainer, report nothing more), `fatal` (this call will
// never succeed as sent).
import { isErrorCode, type ErrorCode } from '../src/graphql/error-codes.js';
import type { Gpu } from './gpu.js';
import { graphql } from './generated/gql.js';
import type { CheckpointInput, ClaimRunMutation, HeartbeatMutation, ProgressInput, RunErrorInput, RunOutcome, SampleInput, TypedDocumentString } from './generated/graphql.js';

export type ApiErrorKind = 'retryable' | 'lease_lost' | 'fatal';

export class ApiError extends Error {
  constructor(
    readonly kind: ApiErrorKind,
    message: string,
    /** The GraphQL error's extensions.code, when the server answered with one of loralab's. */
    readonly code?: ErrorCode,
    /** The GraphQL error's extensions.reason, when it gave one (e.g. FINAL_CHECKPOINT_NOT_STORED). */
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const isRetryable = (err: unknown) => err instanceof ApiError && err.kind === 'retryable';
export const isLeaseLost = (err: unknown) => err instanceof ApiError && err.kind === 'lease_lost';

// The schema's types, generated (agents/generated/, `npm run codegen`), never copied by hand.
export type { CheckpointInput, ProgressInput, RunErrorInput, RunOutcome, SampleInput } from './generated/graphql.js';

export interface LossPointInput {
  step: number;
  loss: number;
  lr?: number | null;
}


/** A claimed run as the agent's claim document reads it, and how long its lease lasts. */
export type Assignment = NonNullable<ClaimRunMutation['claimRun']> & {
  /** Milliseconds the lease lasts, measured from when the claim was answered (see claimRun). */
  leaseMs: number;
};

export type HeartbeatResult = HeartbeatMutation['heartbeat'];
export type ArtifactKind = 'CHECKPOINT' | 'OPTIMIZER_STATE' | 'SAMPLE' | 'TRAINER_CONFIG' | 'TRAINER_LOG';

export interface ArtifactUploadInput {
  kind: ArtifactKind;
  fileName: string;
  sizeBytes: number;
  sha256: string;
  contentType?: string | null;
  step?: number | null;
  promptIndex?: number | null;
}

export interface ArtifactUpload {
  artifact: { id: string; stored: boolean };
  alreadyStored: boolean;
  partSize: number | null;
  parts: { number: number; url: string }[];
}

export interface StoredFile {
  fileName: string;
  sha256: string | null;
  /** Signed GET URL; null until the bytes are stored. */
  url: string | null;
  /** The dataset's own caption file for the image (`<stem>.txt`), when one was uploaded. */
  captionFile?: { fileName: string; sha256: string; url: string | null } | null;
}


export interface ApiClientOptions {
  /** The server's base URL (http://host:4000). */
  server: string;
  token: string;
  /** Per request, unless the call says otherwise (claims add their wait). */
  timeoutMs?: number;
  userAgent?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;

// Codes after which the same request can succeed later without changing it.
const RETRYABLE_CODES = new Set<ErrorCode>(['INTERNAL_SERVER_ERROR']);
const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

export class ApiClient {
  readonly graphqlUrl: string;
  /** When the server last answered a call without error (Date.now()); 0 before the first. */
  lastSuccessAt = 0;
  private readonly timeoutMs: number;

  constructor(private readonly options: ApiClientOptions) {
    this.graphqlUrl = `${options.server.replace(/\/+$/, '')}/graphql`;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /**
   * One GraphQL operation. `signal` aborts it (the abort's reason is thrown as is, not as an
   * ApiError); a request that runs out of time is retryable.
   */
  async request<T, V = Record<string, unknown>>(
    query: TypedDocumentString<T, V> | string,
    variables: V,
    opts: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<{ data: T; date: string | null }> {
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? this.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.graphqlUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${this.options.token}`,
          ...(this.options.userAgent ? { 'user-agent': this.options.userAgent } : {}),
        },
        body: JSON.stringify({ query: query.toString(), variables }),
        signal,
      });
      text = await res.text();
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = timeout.aborted ? 'timed out' : (cause?.code ?? cause?.message ?? (err as Error).message);
      throw new ApiError('retryable', `cannot reach ${this.graphqlUrl}: ${why}`);
    }

    const body = parseJson<{ data?: T | null; errors?: { message: string; extensions?: { code?: string; reason?: string } }[] }>(text);
    const errors = body?.errors ?? [];
    if (errors.length > 0) {
      const leaseLost = errors.find((e) => e.extensions?.code === 'LEASE_LOST');
      if (leaseLost) throw new ApiError('lease_lost', leaseLost.message, 'LEASE_LOST');
      const first = errors[0]!;
      const code = first.extensions?.code;
      const known = isErrorCode(code) ? code : undefined;
      const kind = (known && RETRYABLE_CODES.has(known)) || RETRYABLE_STATUS.has(res.status) ? 'retryable' : 'fatal';
      throw new ApiError(kind, `${first.message}${code ? ` (${code})` : ''}`, known, first.extensions?.reason as string | undefined);
    }
    if (!res.ok || body === null || body.data == null) {
      const kind = RETRYABLE_STATUS.has(res.status) || res.status >= 500 ? 'retryable' : 'fatal';
      const hint = res.status === 404 ? ` — is ${this.options.server} a loralab server's base URL?` : '';
      throw new ApiError(kind, `${this.graphqlUrl} answered HTTP ${res.status}${body === null ? ' without JSON' : ' without data'}${hint}`);
    }
    this.lastSuccessAt = Date.now();
    return { data: body.data, date: res.headers.get('date') };
  }

  private async call<T, V>(query: TypedDocumentString<T, V>, variables: V, opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<T> {
    return (await this.request(query, variables, opts)).data;
  }

  async registerAgent(input: { name: string; hostname: string; gpus: Gpu[]; labels: string[]; hourlyCostUsd: number | null; version: string }, signal?: AbortSignal) {
    const data = await this.call(
      graphql(`mutation RegisterAgent($input: RegisterAgentInput!) { registerAgent(input: $input) { id name } }`),
      { input },
      { signal },
    );
    return data.registerAgent;
  }

  /**
   * Long-polls for a run. The lease's length is taken from the answer: leaseExpiresAt minus the
   * server's clock (its Date header) when the two machines' clocks disagree, else minus ours.
   */
  async claimRun(agentId: string, waitSeconds: number, signal?: AbortSignal): Promise<Assignment | null> {
    const { data, date } = await this.request(
      graphql(`mutation ClaimRun($agentId: ID!, $wait: Int) {
        claimRun(agentId: $agentId, waitSeconds: $wait) {
          leaseToken attempt leaseExpiresAt trainerConfig captions { fileName text }
          resume { step checkpointUrl checkpointSha256 checkpointSizeBytes optimizerStateUrl optimizerStateSha256 optimizerStateSizeBytes }
          run { id name hyperparameters { steps } requirements { gpuCount } captionStrategy { kind } dataset { id uri imageCount } }
        }
      }`),
      { agentId, wait: waitSeconds },
      { signal, timeoutMs: this.timeoutMs + waitSeconds * 1000 },
    );
    const claim = data.claimRun;
    if (!claim) return null;
    return { ...claim, leaseMs: leaseLength(claim.leaseExpiresAt, date) };
  }

  /** Every image file name of a dataset, page by page. */
  async datasetImages(datasetId: string, signal?: AbortSignal): Promise<string[]> {
    const names: string[] = [];
    let after: string | null = null;
    for (;;) {
      const data: {
        dataset: { images: { edges: { node: { fileName: string } }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } | null;
      } = await this.call(
        graphql(`query DatasetImages($id: ID!, $after: String) {
          dataset(id: $id) { images(first: 500, after: $after) { edges { node { fileName } } pageInfo { hasNextPage endCursor } } }
        }`),
        { id: datasetId, after },
        { signal },
      );
      if (!data.dataset) throw new ApiError('fatal', `dataset ${datasetId} does not exist`, 'NOT_FOUND');
      const page = data.dataset.images;
      for (const e of page.edges) names.push(e.node.fileName);
      if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) return names;
      after = page.pageInfo.endCursor;
    }
  }

  async startRun(runId: string, leaseToken: string) {
    await this.call(graphql(`mutation StartRun($r: ID!, $t: String!) { startRun(runId: $r, leaseToken: $t) { id } }`), { r: runId, t: leaseToken });
  }

  async heartbeat(runId: string, leaseToken: string, progress: ProgressInput | null, signal?: AbortSignal): Promise<HeartbeatResult> {
    const data = await this.call(
      graphql(`mutation Heartbeat($r: ID!, $t: String!, $p: ProgressInput) { heartbeat(runId: $r, leaseToken: $t, progress: $p) { leaseExpiresAt cancelRequested } }`),
      { r: runId, t: leaseToken, p: progress },
      { signal },
    );
    return data.heartbeat;
  }

  /**
   * Sent as parallel lists (reportLossColumns): the server coerces three lists of numbers much
   * faster than as many {step, loss, lr} objects, and the request is about half the size.
   */
  async reportLoss(runId: string, leaseToken: string, points: LossPointInput[]) {
    const data = await this.call(
      graphql(`mutation ReportLoss($r: ID!, $t: String!, $s: [Int!]!, $l: [Float!]!, $lr: [Float]) { reportLossColumns(runId: $r, leaseToken: $t, steps: $s, losses: $l, lrs: $lr) { accepted duplicates } }`),
      { r: runId, t: leaseToken, s: points.map((p) => p.step), l: points.map((p) => p.loss), lr: points.some((p) => p.lr != null) ? points.map((p) => p.lr ?? null) : null },
    );
    return data.reportLossColumns;
  }

  async reportCheckpoint(runId: string, leaseToken: string, input: CheckpointInput) {
    await this.call(
      graphql(`mutation ReportCheckpoint($r: ID!, $t: String!, $i: CheckpointInput!) { reportCheckpoint(runId: $r, leaseToken: $t, input: $i) { id } }`),
      { r: runId, t: leaseToken, i: input },
    );
  }

  async reportSample(runId: string, leaseToken: string, input: SampleInput) {
    await this.call(
      graphql(`mutation ReportSample($r: ID!, $t: String!, $i: SampleInput!) { reportSample(runId: $r, leaseToken: $t, input: $i) { id } }`),
      { r: runId, t: leaseToken, i: input },
    );
  }

  async completeRun(runId: string, leaseToken: string, outcome: RunOutcome, error: RunErrorInput | null) {
    const data = await this.call(
      graphql(`mutation CompleteRun($r: ID!, $t: String!, $o: RunOutcome!, $e: RunErrorInput) { completeRun(runId: $r, leaseToken: $t, outcome: $o, error: $e) { id status } }`),
      { r: runId, t: leaseToken, o: outcome, e: error },
    );
    return data.completeRun;
  }

  /** Declares a file of a run (lease-fenced); the answer lists only the parts the store still misses. */
  async beginRunUpload(runId: string, leaseToken: string, input: ArtifactUploadInput, signal?: AbortSignal): Promise<ArtifactUpload> {
    const data = await this.call(
      graphql(`mutation BeginRunUpload($r: ID!, $t: String!, $i: ArtifactUploadInput!) {
        beginRunUpload(runId: $r, leaseToken: $t, input: $i) { artifact { id stored } alreadyStored partSize parts { number url } }
      }`),
      { r: runId, t: leaseToken, i: input },
      { signal },
    );
    return data.beginRunUpload;
  }

  async completeUpload(artifactId: string, parts: { number: number; etag: string }[], signal?: AbortSignal): Promise<{ id: string; stored: boolean }> {
    // Completion reads the whole object back to check its sha256: give it time.
    const data = await this.call(
      graphql(`mutation CompleteUpload($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { id stored } }`),
      { a: artifactId, p: parts },
      { signal, timeoutMs: Math.max(this.timeoutMs, 300_000) },
    );
    return data.completeUpload;
  }

  /** A stored dataset's images: name, sha256 and a signed GET URL each (with `captionFiles`, each one's uploaded caption file too), page by page. */
  async storedDatasetFiles(datasetId: string, signal?: AbortSignal, options: { captionFiles?: boolean } = {}): Promise<StoredFile[]> {
    const files: StoredFile[] = [];
    let after: string | null = null;
    for (;;) {
      const data: {
        dataset: { images: { edges: { node: StoredFile }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } | null;
      } = await this.call(
        graphql(`query DatasetFiles($id: ID!, $after: String, $captionFiles: Boolean!) {
          dataset(id: $id) {
            images(first: 500, after: $after) {
              edges { node { fileName sha256 url captionFile @include(if: $captionFiles) { fileName sha256 url } } }
              pageInfo { hasNextPage endCursor }
            }
          }
        }`),
        { id: datasetId, after, captionFiles: options.captionFiles ?? false },
        { signal },
      );
      if (!data.dataset) throw new ApiError('fatal', `dataset ${datasetId} does not exist`, 'NOT_FOUND');
      const page = data.dataset.images;
      for (const e of page.edges) files.push(e.node);
      if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) return files;
      after = page.pageInfo.endCursor;
    }
  }

  async setDraining(agentId: string, draining: boolean, signal?: AbortSignal) {
    await this.call(graphql(`mutation Drain($id: ID!, $d: Boolean!) { setAgentDraining(agentId: $id, draining: $d) { id } }`), { id: agentId, d: draining }, { signal, timeoutMs: 5000 });
  }
}

function parseJson<T>(text: string): T | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as T) : null;
  } catch {
    return null;
  }
}

/** How long a lease granted just now lasts, robust to a clock difference between agent and server. */
export function leaseLength(leaseExpiresAt: string, serverDate: string | null, now = Date.now()): number {
  const expires = Date.parse(leaseExpiresAt);
  const serverNow = serverDate ? Date.parse(serverDate) : Number.NaN;
  // The Date header has whole seconds: trust our own clock unless the two are clearly apart.
  const reference = Number.isFinite(serverNow) && Math.abs(serverNow - now) > 2000 ? serverNow : now;
  const ms = expires - reference;
  return Number.isFinite(ms) && ms > 0 ? ms : 60_000;
}

/** Full-jitter exponential backoff: a random delay up to min(max, base × 2^attempt). */
export function backoffMs(attempt: number, baseMs = 250, maxMs = 5000): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.max(baseMs / 2, Math.random() * ceiling);
}

/** Waits `ms`, or less when `signal` aborts (it resolves either way). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs `fn` until it succeeds or fails with something other than a retryable error, backing off
 * between tries. `onRetry` hears about each retryable failure (to say the server is away once).
 */
export async function withRetry<T>(
  fn: () => Promise<T>,
  opts: { signal?: AbortSignal; onRetry?: (err: ApiError, attempt: number) => void; maxDelayMs?: number } = {},
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isRetryable(err) || opts.signal?.aborted) throw err;
      opts.onRetry?.(err as ApiError, attempt);
      await pause(backoffMs(attempt, 250, opts.maxDelayMs ?? 5000), opts.signal);
      if (opts.signal?.aborted) throw opts.signal.reason;
    }
  }
}
