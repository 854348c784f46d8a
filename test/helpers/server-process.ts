// The server as its own process, started as `npm start` starts it (compiled, through
// scripts/run.js) or from the sources through tsx, with only the environment a test gives it: for
// what only a process shows (file modes under a umask, exit codes, what it prints).
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export type StartKind = 'compiled' | 'tsx';

const COMMANDS: Record<StartKind, string[]> = {
  compiled: ['scripts/run.js', 'src/index.ts'],
  tsx: ['--import', 'tsx', 'src/index.ts'],
};

export interface ServerProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Starts the server with only the given variables (and PATH/HOME), under `umask` when given. */
export function startServerProcess(env: Record<string, string>, options: { kind?: StartKind; umask?: string } = {}): ServerProcess {
  const node = [process.execPath, ...COMMANDS[options.kind ?? 'compiled']];
  const [command, ...args] = options.umask ? ['sh', '-c', `umask ${options.umask} && exec "$0" "$@"`, ...node] : node;
  const child = spawn(command!, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir(), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

/** Resolves once /healthz answers 200; fails if the process exits first. */
export async function waitUntilHealthy(server: ServerProcess, port: number) {
  let exited = false;
  void server.exited.then(() => (exited = true));
  for (;;) {
    if (exited) throw new Error(`server exited before it was healthy:\n${server.output()}`);
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100)); // polling a starting process, not moving time
  }
}
