// A new embedded database folder is made (initdb and the migrations) in a worker thread that exits
// once it is made: PGlite's WebAssembly build keeps what initdb allocated for as long as it runs,
// about 230 MB of buffers that a server which made its folder itself held until it stopped.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { MIGRATIONS_FOLDER, openDatabase, rows } from '../src/db/client.js';

// initdb in WebAssembly is slow, and much slower on a busy machine.
const TIMEOUT_MS = 180_000;

describe('a new embedded database folder', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'loralab-pglite-folder-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it(
    'is made apart, so the server holds none of initdb’s memory, and opens made and migrated, then and on a restart',
    async () => {
      const folder = path.join(root, 'pgdata');
      const before = process.memoryUsage().arrayBuffers;
      const db = await openDatabase({ kind: 'pglite', dataDir: folder });
      const grown = process.memoryUsage().arrayBuffers - before;
      const migrations = readdirSync(MIGRATIONS_FOLDER).filter((f) => f.endsWith('.sql')).length;
      const applied = async (d: typeof db) => (await rows<{ n: number }>(d.orm, sql`select count(*)::int as n from drizzle.__drizzle_migrations`))[0]!.n;
      try {
        expect(await applied(db)).toBe(migrations);
        // Made in this thread, the buffers grew by about 230 MB; opened after a worker made it, by about 1 MB.
        expect(grown).toBeLessThan(50 * 1024 * 1024);
      } finally {
        await db.close();
      }
      const again = await openDatabase({ kind: 'pglite', dataDir: folder });
      try {
        expect(await applied(again)).toBe(migrations);
      } finally {
        await again.close();
      }
    },
    TIMEOUT_MS,
  );
});
