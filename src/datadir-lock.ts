// PGlite does not lock its folder, and two processes on one folder silently lose writes.
// proper-lockfile keeps a lock folder fresh while we run and treats a stale one (a crashed
// process) as free, so a kill -9 never leaves the folder locked for good.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';

export class DataDirLockedError extends Error {}

export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const dir = path.resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  try {
    return await lockfile.lock(dir, {
      lockfilePath: path.join(dir, 'loralab.lock'),
      stale: 10_000,
      update: 2_000,
      // A compromised lock means another process may write too: stop rather than lose data.
      onCompromised: (err) => {
        console.error(`Lost the lock on DATA_DIR ${dir}: ${err.message}. Stopping to protect the database.`);
        process.exit(1);
      },
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOCKED') {
      throw new DataDirLockedError(
        `DATA_DIR ${dir} is in use by another loralab server. Stop it first, or start this one with another DATA_DIR (or DATABASE_URL for PostgreSQL).`,
      );
    }
    throw err;
  }
}
