// A PostgreSQL server of a test's own, in a temporary folder on a free port, which the test may
// stop and restart at will: restarting the shared server would cut every other test file's
// connections. Uses the binaries of the newest PostgreSQL installed under /usr/lib/postgresql.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const INSTALL_ROOT = '/usr/lib/postgresql';

/** The bin folder of the newest installed PostgreSQL, or null. */
function binaries(): string | null {
  if (!existsSync(INSTALL_ROOT)) return null;
  const versions = readdirSync(INSTALL_ROOT)
    .filter((v) => existsSync(path.join(INSTALL_ROOT, v, 'bin', 'pg_ctl')) && existsSync(path.join(INSTALL_ROOT, v, 'bin', 'initdb')))
    .sort((a, b) => Number(a) - Number(b));
  return versions.length ? path.join(INSTALL_ROOT, versions.at(-1)!, 'bin') : null;
}

/** PostgreSQL refuses to run as root; as root the server runs as the `postgres` user. */
function runAs(): { uid: number; gid: number; prefix: string[] } | null {
  if (process.getuid?.() !== 0) return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, prefix: [] };
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid, prefix: ['runuser', '-u', 'postgres', '--'] };
  } catch {
    return null;
  }
}

/** Why an own server cannot be started here, or null when it can. */
export function ownPostgresMissing(): string | null {
  if (!binaries()) return `no PostgreSQL binaries (initdb, pg_ctl) under ${INSTALL_ROOT}`;
  if (!runAs()) return 'running as root and there is no postgres user to run the server as';
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export interface OwnPostgres {
  url: string;
  /** Stops the server (fast shutdown: connections are cut, as in a real restart). */
  stop(): void;
  start(): void;
  /** Stops and starts the server, as `pg_ctlcluster … restart` does. */
  restart(): void;
  /** Stops the server for good and removes its folder. */
  destroy(): void;
}

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const bin = binaries();
  const user = runAs();
  if (!bin || !user) throw new Error(ownPostgresMissing()!);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loralab-pg-'));
  chownSync(dir, user.uid, user.gid);
  const data = path.join(dir, 'data');
  const port = await freePort();
  const run = (tool: string, args: string[]) => {
    const [command, ...rest] = [...user.prefix, path.join(bin, tool), ...args];
    return execFileSync(command!, rest, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  };
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  // No fsync: the data is thrown away; the socket lives in the folder, not in /var/run.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  const pgCtl = (...args: string[]) => run('pg_ctl', ['-D', data, ...args]);
  const start = () => void pgCtl('start', '-w', '-t', '60', '-l', path.join(dir, 'server.log'), '-o', options);
  const stop = () => void pgCtl('stop', '-w', '-t', '60', '-m', 'fast');
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop,
    start,
    restart() {
      stop();
      start();
    },
    destroy() {
      try {
        pgCtl('stop', '-w', '-m', 'immediate');
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
