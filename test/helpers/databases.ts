// Test databases: PGlite always (cloned from a migrated template, ~0.3 s instead of ~3 s), and
// PostgreSQL when TEST_DATABASE_URL is set (a fresh database per server, dropped afterwards).
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { inject } from 'vitest';
import { MIGRATIONS_FOLDER, openDatabase, type Database } from '../../src/db/client.js';
import { connectPostgres } from '../../src/db/client.js';

export type DatabaseKind = 'pglite' | 'postgres';

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || undefined;

/** The databases every behaviour test runs on. */
export const databaseKinds: DatabaseKind[] = TEST_DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];

let template: Promise<Blob | File> | null = null;

function pgliteTemplate() {
  template ??= (async () => {
    // Built once per run by global-setup.ts; a file run without it builds its own.
    const file = inject('pgliteTemplate');
    if (file && existsSync(file)) return new Blob([readFileSync(file)]);
    const client = await PGlite.create();
    await migrate(drizzle({ client }), { migrationsFolder: MIGRATIONS_FOLDER });
    const dump = await client.dumpDataDir('none');
    await client.close();
    return dump;
  })();
  return template;
}

export interface TestDatabase {
  db: Database;
  /** A connection string other processes can use (PostgreSQL only). */
  url?: string;
  drop(): Promise<void>;
}

export async function createPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  if (!TEST_DATABASE_URL) throw new Error('TEST_DATABASE_URL is not set');
  const name = `loralab_t_${randomBytes(6).toString('hex')}`;
  const admin = connectPostgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const admin = connectPostgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

export async function createTestDatabase(kind: DatabaseKind, options: { maxConnections?: number } = {}): Promise<TestDatabase> {
  if (kind === 'pglite') {
    const db = await openDatabase({ kind: 'pglite', loadDataDir: await pgliteTemplate() });
    return { db, drop: () => db.close() };
  }
  const pg = await createPostgresDatabase();
  const db = await openDatabase({ kind: 'postgres', url: pg.url, maxConnections: options.maxConnections });
  return {
    db,
    url: pg.url,
    async drop() {
      await db.close();
      await pg.drop();
    },
  };
}
