// PGlite does not lock its folder, and two processes on one folder silently lose writes.
// proper-lockfile keeps a lock folder fresh while we run. The lock also names its owner (process
// id, host, and the process's start time): a lock whose owner is gone (killed with -9, or its
// machine rebooted) is taken over at once instead of after the staleness timeout, while a live
// owner still keeps everyone else out.
import fs, { mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';

export class DataDirLockedError extends Error {}

const LOCK_NAME = 'loralab.lock';
const OWNER_FILE = 'owner.json';
/** proper-lockfile removes a lock with rmdir; ours holds the owner file. */
const lockFs = { ...fs, rmdir: (dir: string, callback: (err: NodeJS.ErrnoException | null) => void) => fs.rm(dir, { recursive: true }, callback) };
/**
 * A lock not refreshed for this long is free even when its owner cannot be checked (it ran on
 * another host). Long, because a live owner must never lose it: creating a fresh PGlite database
 * blocks the event loop, and the refresh with it, for over 10 s on a small machine. A dead owner
 * on this host does not wait for it.
 */
const STALE_MS = 60_000;

interface Owner {
  pid: number;
  hostname: string;
  /** The process's start time as Linux counts it (/proc/<pid>/stat), to tell a reused pid; null elsewhere. */
  started: string | null;
}

function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) is in parentheses and may hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function readOwner(lockDir: string): Owner | null {
  try {
    const owner = JSON.parse(readFileSync(path.join(lockDir, OWNER_FILE), 'utf8')) as Owner;
    return Number.isInteger(owner.pid) && typeof owner.hostname === 'string' ? owner : null;
  } catch {
    return null; // not written yet (the owner is starting), or not ours
  }
}

/** True only when the owner is certainly gone: same host, and its pid is dead or now another process. */
function ownerIsGone(owner: Owner): boolean {
  if (owner.hostname !== os.hostname()) return false;
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  const started = startTimeOf(owner.pid);
  return owner.started !== null && started !== null && started !== owner.started;
}

function lockedError(dir: string, owner: Owner | null) {
  const who = owner ? ` (process ${owner.pid} on ${owner.hostname})` : '';
  return new DataDirLockedError(
    `DATA_DIR ${dir} is in use by another loralab server${who}. Stop it first, or start this one with another DATA_DIR (or DATABASE_URL for PostgreSQL).`,
  );
}

export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const dir = path.resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const lockDir = path.join(dir, LOCK_NAME);
  const lock = () =>
    lockfile.lock(dir, {
      lockfilePath: lockDir,
      fs: lockFs,
      stale: STALE_MS,
      update: 2_000,
      // A compromised lock means another process may write too: stop rather than lose data.
      onCompromised: (err) => {
        console.error(`Lost the lock on DATA_DIR ${dir}: ${err.message}. Stopping to protect the database.`);
        process.exit(1);
      },
    });
  const isLocked = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ELOCKED';

  let release: () => Promise<void>;
  try {
    release = await lock();
  } catch (err) {
    if (!isLocked(err)) throw err;
    release = await takeOver(dir, lockDir, lock, isLocked);
  }
  const owner: Owner = { pid: process.pid, hostname: os.hostname(), started: startTimeOf(process.pid) };
  // proper-lockfile keeps the lock folder's mtime as its own mark, and a new file in the folder
  // moves it: put it back, or the lock reads as taken by someone else.
  const { atime, mtime } = statSync(lockDir);
  writeFileSync(path.join(lockDir, OWNER_FILE), JSON.stringify(owner), { mode: 0o600 });
  utimesSync(lockDir, atime, mtime);
  return release;
}

/**
 * The lock is held: take it over if its owner is gone. Starters that find it so take turns (a
 * lock of their own beside it), so the second never removes the lock the first has just taken.
 */
async function takeOver(dir: string, lockDir: string, lock: () => Promise<() => Promise<void>>, isLocked: (err: unknown) => boolean) {
  let releaseTurn: () => Promise<void>;
  try {
    // proper-lockfile knows its locks by the file locked: another one than the folder's own lock.
    const turn = `${lockDir}.takeover`;
    releaseTurn = await lockfile.lock(turn, { realpath: false, lockfilePath: turn, fs: lockFs, stale: STALE_MS, retries: { retries: 20, minTimeout: 50, maxTimeout: 500 } });
  } catch (err) {
    if (isLocked(err)) throw lockedError(dir, readOwner(lockDir));
    throw err;
  }
  try {
    const owner = readOwner(lockDir);
    if (!owner || !ownerIsGone(owner)) throw lockedError(dir, owner);
    console.error(`DATA_DIR ${dir} was locked by process ${owner.pid}, which is gone; taking the lock over.`);
    rmSync(lockDir, { recursive: true, force: true });
    try {
      return await lock();
    } catch (err) {
      // Someone who did not need to take turns (the folder looked free) was quicker.
      if (isLocked(err)) throw lockedError(dir, readOwner(lockDir));
      throw err;
    }
  } finally {
    await releaseTurn();
  }
}
