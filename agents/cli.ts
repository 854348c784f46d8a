// npm run agent -- --server http://host:4000 --token <AGENT key> --work-dir DIR --ai-toolkit DIR
//
// Every option can also come from an environment variable (see --help). SIGINT/SIGTERM: claim no
// more runs and let running ones finish; a second signal cancels them; a third exits at once
// (unsent reports stay in the spool and are sent on the next start).
import { Command, CommanderError } from 'commander';
import { AGENT_VERSION, startAgent } from './agent.js';
import { ConfigError, OPTIONS, resolveConfig } from './config.js';

const SIGNAL_ECHO_MS = 1000;

function program(): Command {
  const cmd = new Command('loralab-agent')
    .description('Claims loralab runs, trains them with ai-toolkit and reports loss, checkpoints and samples.')
    .version(AGENT_VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const o of OPTIONS) cmd.option(o.flags, `${o.description} [env ${o.env}]`);
  return cmd;
}

async function main(): Promise<number> {
  const cmd = program();
  try {
    cmd.parse(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    throw err;
  }
  let config;
  try {
    config = resolveConfig(cmd.opts(), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`loralab-agent: ${err.message}\n(see --help)\n`);
      return 2;
    }
    throw err;
  }

  const agent = startAgent(config);
  let signals = 0;
  let lastSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // One Ctrl-C under `npm run agent` can arrive twice (from the terminal, and relayed by npm); a
    // second request means a second press, not the echo of the first.
    if (Date.now() - lastSignalAt < SIGNAL_ECHO_MS) return;
    lastSignalAt = Date.now();
    signals++;
    if (signals >= 3) {
      process.stderr.write(`${signal} again: exiting now; unsent reports stay in the spool\n`);
      process.exit(130);
    }
    agent.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return agent.done;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`loralab-agent: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
