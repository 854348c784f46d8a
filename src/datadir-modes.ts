// DATA_DIR holds the database and the first admin key: nobody but the server's user may read or
// write it. PGlite writes through Emscripten's file system, which creates every file 0666 whatever
// the umask, so a local user could otherwise insert an ADMIN key's hash. The folder is made 0700,
// which alone keeps everyone else out of what PGlite creates while it runs; at every start its
// folders are set to 0700 and its files to 0600 as well.
import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { EMBEDDED_STORE_DIR } from './modules/artifacts/drivers/file.js';

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

export interface ModeRepairs {
  /** Paths whose mode was changed, relative to DATA_DIR ("." for DATA_DIR itself). */
  repaired: string[];
  /** Paths whose mode could not be changed (owned by another user), with the reason. */
  failed: { path: string; reason: string }[];
}

/**
 * The folders under DATA_DIR whose owner makes every file private itself (the embedded artifact
 * store), so the walk below need not stat each of their possibly millions of files at every start.
 */
const SELF_SECURED = new Set([EMBEDDED_STORE_DIR]);

/** Creates DATA_DIR if needed and narrows every mode under it (with `deep: false`, its own alone), saying what it changed; symbolic links are left alone. */
export function secureDataDir(dataDir: string, log: Logger, when: string, { deep = true } = {}): ModeRepairs {
  const root = path.resolve(dataDir);
  mkdirSync(root, { recursive: true, mode: DIR_MODE });
  const result: ModeRepairs = { repaired: [], failed: [] };
  const visit = (file: string) => {
    const info = lstatSync(file);
    if (info.isSymbolicLink()) return;
    const wanted = info.isDirectory() ? DIR_MODE : FILE_MODE;
    if ((info.mode & 0o7777) !== wanted) {
      const relative = path.relative(root, file) || '.';
      try {
        chmodSync(file, wanted);
        result.repaired.push(relative);
      } catch (err) {
        result.failed.push({ path: relative, reason: (err as NodeJS.ErrnoException).code ?? String(err) });
      }
    }
    if (!info.isDirectory() || (file === root && !deep)) return;
    for (const name of readdirSync(file)) if (file !== root || !SELF_SECURED.has(name)) visit(path.join(file, name));
  };
  visit(root);
  if (result.repaired.length > 0) {
    // PGlite creates its files 0666, so some are narrowed at every start; DATA_DIR itself open is news.
    log[result.repaired.includes('.') ? 'warn' : 'info'](
      { when, repaired: result.repaired.length, examples: result.repaired.slice(0, 5) },
      'narrowed DATA_DIR permissions to 0700 (folders) and 0600 (files)',
    );
  }
  if (result.failed.length > 0) {
    log.error({ when, failed: result.failed.slice(0, 5), count: result.failed.length }, 'could not narrow DATA_DIR permissions');
  }
  return result;
}
