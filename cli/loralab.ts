// npm run loralab -- <command> …: the command line for people (docs/cli.md). The server and key
// come from --server/--token or LORALAB_SERVER/LORALAB_TOKEN; results go to stdout, progress and
// warnings to stderr; the exit code says how it went (EXIT in api.ts).
import { setFlagsFromString } from 'node:v8';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { Api, CliError, EXIT } from './api.js';
import { best, createKey, datasetPush, listRuns, pull, runsTable } from './commands.js';
import { importFolders, summaryLines } from './import.js';
import type { Writer } from './progress.js';

/** Where a command's results (stdout) and progress, warnings and errors (stderr) go. */
export interface CliIo {
  stdout: Writer;
  stderr: Writer;
}

const positiveInt = (what: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${what} must be a whole number`);
  return n;
};

const ROLES = ['VIEWER', 'EDITOR', 'ADMIN', 'AGENT'];
const STATUSES = ['QUEUED', 'CLAIMED', 'RUNNING', 'CANCELLING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];

export function program(io: CliIo, env: NodeJS.ProcessEnv): { cmd: Command; exitCode: () => number } {
  const out = (line: string) => io.stdout.write(`${line}\n`);
  const err = (line: string) => io.stderr.write(`${line}\n`);
  // parseAsync awaits the action, which sets this; a command line that ran none is a usage error.
  let code: number = EXIT.USAGE;
  const cmd = new Command('loralab')
    .description('loralab from the command line: import past ai-toolkit runs, push datasets, pull checkpoints, list runs.')
    .option('--server <url>', 'the loralab server [env LORALAB_SERVER]', env['LORALAB_SERVER'] || 'http://127.0.0.1:4000')
    .option('--token <key>', 'an API key: EDITOR for import and dataset push, VIEWER to read, ADMIN for keys [env LORALAB_TOKEN]', env['LORALAB_TOKEN'] || undefined)
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => void io.stderr.write(s), writeOut: (s) => void io.stdout.write(s) })
    .addHelpText(
      'after',
      `\nExit codes: ${EXIT.OK} done, ${EXIT.FAILED} something asked for failed (a folder that did not import, a refused request),` +
        ` ${EXIT.USAGE} wrong command line, ${EXIT.UNREACHABLE} server unreachable, ${EXIT.DENIED} key missing or not allowed, ${EXIT.NOT_FOUND} no such record.`,
    );

  const api = (): Api => {
    const { server, token } = cmd.opts<{ server: string; token?: string }>();
    if (!token) throw new CliError('no API key: give --token or set LORALAB_TOKEN', EXIT.USAGE);
    return new Api({ server, token });
  };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const run = <A extends any[]>(action: (...args: A) => Promise<number>) => async (...args: A) => {
    code = await action(...args);
  };

  cmd
    .command('import')
    .description('import ai-toolkit output folders (<training_folder>/<name>, or folders holding several) as runs')
    .argument('<folder...>', 'output folders')
    .option('--experiment <name>', 'the experiment to file the runs under (default: the name of the folder above each)')
    .option('--no-upload', 'record checkpoints and samples without sending their bytes')
    .action(
      run(async (folders: string[], opts: { experiment?: string; upload: boolean }) => {
        const summary = await importFolders(api(), folders, { experiment: opts.experiment, upload: opts.upload, progress: io.stderr }, err);
        for (const r of summary.results) out(`${r.runId}\t${r.status}\t${r.runName}\t${r.folder}`);
        for (const line of summaryLines(summary)) err(line);
        return summary.failed.length ? EXIT.FAILED : EXIT.OK;
      }),
    );

  const dataset = cmd.command('dataset').description('datasets stored in loralab');
  dataset
    .command('push')
    .description('store a folder of images (with .txt captions beside them) as a dataset; prints its id first')
    .argument('<folder>', 'a folder of images')
    .requiredOption('--name <name>', 'the dataset\'s name (also the name of its STORED caption strategy)')
    .option('--trigger <word>', 'the caption strategy\'s trigger word')
    .option('--template <template>', 'the caption strategy\'s template, e.g. "[trigger], {caption}"')
    .action(
      run(async (folder: string, opts: { name: string; trigger?: string; template?: string }) => {
        await datasetPush(api(), folder, { ...opts, progress: io.stderr }, out);
        return EXIT.OK;
      }),
    );

  cmd
    .command('pull')
    .description('download a run\'s best (else final) checkpoint, or the one at --step, verified against its sha256; prints its path')
    .argument('<run-id>', 'the run')
    .option('--step <n>', 'the checkpoint at this step', positiveInt('--step'))
    .option('--out <dir>', 'where to write it', '.')
    .action(
      run(async (runId: string, opts: { step?: number; out: string }) => {
        const pulled = await pull(api(), runId, opts);
        out(pulled.path);
        return EXIT.OK;
      }),
    );

  const keys = cmd.command('keys').description('API keys (ADMIN)');
  keys
    .command('create')
    .description('create an API key; prints the key (shown this once) on stdout')
    .addOption(new Option('--role <role>', 'its role').choices([...ROLES, ...ROLES.map((r) => r.toLowerCase())]).makeOptionMandatory())
    .requiredOption('--name <name>', 'a name to know it by (an agent key: the machine)')
    .action(
      run(async (opts: { role: string; name: string }) => {
        const key = await createKey(api(), opts.role, opts.name);
        out(key.key);
        err(`created ${key.role} key "${key.name}" (id ${key.id}); the key is shown only this once`);
        return EXIT.OK;
      }),
    );

  cmd
    .command('runs')
    .description('list runs, newest first, as a table (* after the status: imported)')
    .option('--experiment <name or id>', 'only this experiment\'s runs')
    .addOption(new Option('--status <status...>', 'only runs in these statuses').choices([...STATUSES, ...STATUSES.map((s) => s.toLowerCase())]))
    .option('--first <n>', 'how many', positiveInt('--first'), 50)
    .action(
      run(async (opts: { experiment?: string; status?: string[]; first: number }) => {
        const { total, runs } = await listRuns(api(), opts);
        for (const line of runsTable(runs)) out(line);
        const imported = runs.some((r) => r.importedFrom) ? '; * after a status: imported from an ai-toolkit folder' : '';
        err(`${runs.length} of ${total} run${total === 1 ? '' : 's'}${imported}`);
        return EXIT.OK;
      }),
    );

  cmd
    .command('best')
    .description('the best run of a sweep (lowest EMA loss) and its best checkpoint')
    .argument('<sweep-id>', 'the sweep')
    .action(
      run(async (sweepId: string) => {
        const sweep = await best(api(), sweepId);
        const r = sweep.bestRun;
        if (!r) {
          err(`sweep ${sweepId} (${sweep.runs.length} runs) has no run with loss yet`);
          return EXIT.NOT_FOUND;
        }
        const checkpoint = r.bestCheckpoint ?? r.checkpoints.find((c) => c.isFinal) ?? r.checkpoints.at(-1) ?? null;
        for (const line of runsTable([r])) out(line);
        out(checkpoint ? `best checkpoint: step ${checkpoint.step}${checkpoint.isFinal ? ' (final)' : ''} ${checkpoint.id}${checkpoint.downloadUrl ? '' : ' (not stored)'}` : 'best checkpoint: none yet');
        out(`pull it: npm run loralab -- pull ${r.id}${checkpoint && !checkpoint.isFinal && !r.bestCheckpoint ? ` --step ${checkpoint.step}` : ''}`);
        return EXIT.OK;
      }),
    );

  return { cmd, exitCode: () => code };
}

export async function main(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { cmd, exitCode } = program(io, env);
  try {
    await cmd.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    if (e instanceof CliError) {
      io.stderr.write(`loralab: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
  return exitCode();
}

const entry = process.argv[1] ?? '';
if (/cli[/\\]loralab\.[cm]?[jt]s$/.test(entry)) {
  // WebAssembly (sql.js, reading loss_log.db) runs as V8's baseline compiler first emits it: a
  // command lasts seconds, and optimising SQLite's hot functions on the side cost more CPU than it
  // saved (reading 50,000 loss points from a cold start: about 0.25 s less this way on a busy
  // 2-core machine). Only this process, and before any module is compiled.
  setFlagsFromString('--liftoff-only');
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`loralab: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = EXIT.FAILED;
    },
  );
}
