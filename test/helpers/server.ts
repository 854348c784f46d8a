// An in-process loralab server on a fresh test database, and a small GraphQL client for it.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { expect } from 'vitest';
import { loadConfig, type Config } from '../../src/config.js';
import { startServer, type RunningServer, type StartOptions } from '../../src/server.js';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './databases.js';

export interface GqlResult<T = any> {
  status: number;
  data: T;
  errors?: { message: string; extensions?: { code?: string; field?: string; [k: string]: unknown } }[];
}

export class GqlClient {
  constructor(
    readonly url: string,
    readonly key: string | null,
  ) {}

  withKey(key: string | null) {
    return new GqlClient(this.url, key);
  }

  async request<T = any>(query: string, variables?: Record<string, unknown>): Promise<GqlResult<T>> {
    const res = await fetch(`${this.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(this.key ? { authorization: `Bearer ${this.key}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: T; errors?: GqlResult['errors'] };
    return { status: res.status, data: body.data as T, errors: body.errors };
  }

  /** Runs an operation that must succeed and returns its data. */
  async ok<T = any>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const result = await this.request<T>(query, variables);
    if (result.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors, null, 2)}`);
    return result.data;
  }

  /** Runs an operation that must fail with `code` (and `field`, when given); returns the error. */
  async fails(code: string, query: string, variables?: Record<string, unknown>, field?: string) {
    const result = await this.request(query, variables);
    expect(result.errors, `expected ${code}, got data ${JSON.stringify(result.data)}`).toBeDefined();
    const error = result.errors![0]!;
    expect(error.extensions?.code, error.message).toBe(code);
    if (field !== undefined) expect(error.extensions?.field, error.message).toBe(field);
    return error;
  }
}

export interface TestServer {
  kind: DatabaseKind;
  server: RunningServer;
  database: TestDatabase;
  url: string;
  admin: GqlClient;
  anonymous: GqlClient;
  /** A client with a new key of that role. */
  as(role: 'VIEWER' | 'EDITOR' | 'ADMIN' | 'AGENT'): Promise<GqlClient>;
  stop(): Promise<void>;
}

export function testConfig(overrides: Partial<Config> = {}): Config {
  return {
    ...loadConfig({}),
    port: 0,
    host: '127.0.0.1',
    adminKey: `llk_test_${randomBytes(16).toString('hex')}`,
    logLevel: 'silent',
    ...overrides,
  };
}

export async function startTestServer(
  kind: DatabaseKind,
  overrides: Partial<Config> = {},
  options: { maxConnections?: number; database?: TestDatabase } & Pick<StartOptions, 'clock' | 'keyRecheckMs' | 'log'> = {},
): Promise<TestServer> {
  const database = options.database ?? (await createTestDatabase(kind, options));
  // Stored artifacts (the embedded store) go to a folder of this server's own, unless a test names one.
  const ownDataDir = overrides.dataDir ? null : mkdtempSync(path.join(os.tmpdir(), 'loralab-test-data-'));
  const config = testConfig({ ...(ownDataDir ? { dataDir: ownDataDir } : {}), ...overrides });
  const server = await startServer({
    config,
    db: database.db,
    log: options.log ?? pino({ level: 'silent' }),
    clock: options.clock,
    keyRecheckMs: options.keyRecheckMs,
  });
  const admin = new GqlClient(server.url, config.adminKey!);
  return {
    kind,
    server,
    database,
    url: server.url,
    admin,
    anonymous: admin.withKey(null),
    async as(role) {
      const { createApiKey } = await admin.ok(`mutation($role: ApiRole!) { createApiKey(role: $role, name: "test ${role}") { key } }`, { role });
      return admin.withKey(createApiKey.key);
    },
    async stop() {
      await server.close();
      await database.drop();
      if (ownDataDir) rmSync(ownDataDir, { recursive: true, force: true });
    },
  };
}
