// Builds the migrated PGlite template once per `vitest run` (creating a PGlite database takes
// seconds on a small machine) and hands its file to every test file through `inject`. The file is
// named after the migrations and the PGlite version, so later runs reuse it until one changes.
// It also compiles the programs tests start as processes (the server, the fake trainer) unless
// they are up to date, so no test spends its own time on a build.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import type { TestProject } from 'vitest/node';
import { MIGRATIONS_FOLDER } from '../../src/db/client.js';
import { ensureBuilt } from '../../scripts/build.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgliteTemplate: string;
  }
}

function migrationsHash() {
  const hash = createHash('sha256');
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const file = path.join(dir, name);
      if (statSync(file).isDirectory()) walk(file);
      else hash.update(`${path.relative(MIGRATIONS_FOLDER, file)}\0`).update(readFileSync(file));
    }
  };
  walk(MIGRATIONS_FOLDER);
  // A new PGlite may lay out its files differently.
  hash.update(readFileSync(path.join(MIGRATIONS_FOLDER, '../node_modules/@electric-sql/pglite/package.json')));
  return hash.digest('hex').slice(0, 16);
}

export default async function setup(project: TestProject) {
  const builds = Promise.all(['src/index.ts', 'agents/fake-trainer.ts', 'cli/loralab.ts'].map((entry) => ensureBuilt(entry)));
  const file = path.join(os.tmpdir(), `loralab-pglite-template-${migrationsHash()}.tar`);
  if (!existsSync(file)) {
    const client = await PGlite.create();
    await migrate(drizzle({ client }), { migrationsFolder: MIGRATIONS_FOLDER });
    const dump = await client.dumpDataDir('none');
    await client.close();
    // Written under another name first: a run started meanwhile never reads half a file.
    const partial = `${file}.${process.pid}`;
    writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
    renameSync(partial, file);
  }
  await builds;
  project.provide('pgliteTemplate', file);
}
