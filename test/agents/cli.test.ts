// `npm run agent` refusing to start, with a message that says what to do.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers.js';

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    // Only PATH (without nvidia-smi on this machine) and HOME: no LORALAB_* from the outside.
    const child = spawn(process.execPath, ['--import', 'tsx', 'agents/cli.ts', ...args], {
      cwd: REPO_ROOT,
      env: { PATH: '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('the agent CLI', () => {
  it('lists every option with its environment variable', async () => {
    const { code, output } = await cli(['--help']);
    expect(code).toBe(0);
    for (const flag of ['--server', '--token', '--work-dir', '--ai-toolkit', '--gpus', '--trainer-command', '--fake-trainer', '--concurrency', '--heartbeat-seconds', '--cancel-grace-seconds']) {
      expect(output).toContain(flag);
    }
    for (const env of ['LORALAB_SERVER', 'LORALAB_TOKEN', 'LORALAB_GPUS', 'HF_TOKEN']) expect(output).toMatch(new RegExp(String.raw`\[env\s+${env}\]`));
  });

  it('refuses to start without a server or token', async () => {
    const { code, output } = await cli(['--fake-trainer']);
    expect(code).toBe(2);
    expect(output).toContain('--server (or LORALAB_SERVER) is required');
  });

  it('refuses to start with no GPU to find and none declared', async () => {
    const { code, output } = await cli(['--server', 'http://127.0.0.1:9', '--token', 't', '--fake-trainer'], { LORALAB_WORK_DIR: '/tmp/loralab-cli-test' });
    expect(code).toBe(2);
    expect(output).toMatch(/No NVIDIA GPU found \(nvidia-smi is not installed\)\. Declare the GPUs with --gpus/);
  }, 30_000);
});
