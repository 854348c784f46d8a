import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig, splitCommand } from '../../agents/config.js';

const required = { server: 'http://api:4000', token: 'llk_agent' };

describe('agent options', () => {
  it('come from flags, from environment variables when a flag is absent, and have defaults', () => {
    const config = resolveConfig(
      { ...required, concurrency: '2', gpus: '0:A:1000,1:B:2000' },
      { LORALAB_CONCURRENCY: '1', LORALAB_AI_TOOLKIT: '/opt/ai-toolkit', LORALAB_LABELS: 'eu, fast-disk,eu', HF_TOKEN: 'hf_x', LORALAB_HOURLY_COST: '0.69' },
    );
    expect(config).toMatchObject({
      server: 'http://api:4000',
      graphqlUrl: 'http://api:4000/graphql',
      token: 'llk_agent',
      aiToolkit: '/opt/ai-toolkit',
      concurrency: 2,
      labels: ['eu', 'fast-disk'],
      hourlyCostUsd: 0.69,
      hfToken: 'hf_x',
      trainerCommand: ['python', 'run.py'],
      fakeTrainer: false,
      cancelGraceSeconds: 30,
      heartbeatSeconds: null,
      claimWaitSeconds: 30,
      workDir: path.resolve('loralab-agent'),
      gpus: [
        { index: 0, name: 'A', memoryMb: 1000 },
        { index: 1, name: 'B', memoryMb: 2000 },
      ],
    });
  });

  it('come entirely from the environment too', () => {
    const config = resolveConfig({}, { LORALAB_SERVER: 'https://lab.example.com/', LORALAB_TOKEN: 't', LORALAB_FAKE_TRAINER: 'true', LORALAB_GPUS: '0:Fake GPU:24000' });
    expect(config).toMatchObject({ server: 'https://lab.example.com', fakeTrainer: true, aiToolkit: null, trainerCommand: null });
  });

  it('take the server’s base URL, or its /graphql endpoint', () => {
    for (const server of ['http://api:4000', 'http://api:4000/', 'http://api:4000/graphql', 'http://api:4000/graphql/']) {
      expect(resolveConfig({ ...required, server, fakeTrainer: true }, {})).toMatchObject({ server: 'http://api:4000', graphqlUrl: 'http://api:4000/graphql' });
    }
  });

  it.each([
    [{ token: 't' }, {}, '--server (or LORALAB_SERVER) is required'],
    [{ server: 'http://a' }, {}, '--token (or LORALAB_TOKEN) is required'],
    [{ ...required, server: 'api:4000' }, {}, '--server (LORALAB_SERVER) "api:4000" must be an http:// or https:// URL'],
    [required, {}, '--ai-toolkit (or LORALAB_AI_TOOLKIT) is required'],
    [{ ...required, fakeTrainer: true, concurrency: '0' }, {}, '--concurrency (LORALAB_CONCURRENCY) "0" must be at least 1'],
    [{ ...required, fakeTrainer: true }, { LORALAB_CANCEL_GRACE_SECONDS: 'soon' }, '--cancel-grace-seconds (LORALAB_CANCEL_GRACE_SECONDS) "soon"'],
    [{ ...required, fakeTrainer: true, gpus: '0:A:1', concurrency: '2' }, {}, '--concurrency 2 needs 2 GPUs, but --gpus lists 1'],
    [{ ...required, fakeTrainer: true, gpus: 'one' }, {}, '--gpus entry "one" is not INDEX:NAME:MEMORY_MB'],
    [{ ...required, aiToolkit: '/x' }, { LORALAB_FAKE_TRAINER: 'maybe' }, 'LORALAB_FAKE_TRAINER="maybe" must be true or false'],
    [{ ...required, aiToolkit: '/x', trainerCommand: 'python "run.py' }, {}, '--trainer-command: unclosed "'],
  ])('refuse %j %j with a message naming the option', (flags, env, message) => {
    expect(() => resolveConfig(flags, env)).toThrow(ConfigError);
    expect(() => resolveConfig(flags, env)).toThrow(message);
  });
});

describe('the trainer command', () => {
  it('splits on spaces, groups quotes and escapes, and expands nothing', () => {
    expect(splitCommand('python run.py')).toEqual(['python', 'run.py']);
    expect(splitCommand(`  /opt/venv/bin/python  "run with spaces.py" 'a "b"' c\\ d $HOME ~ *.py $(rm -rf /) ; x`)).toEqual([
      '/opt/venv/bin/python',
      'run with spaces.py',
      'a "b"',
      'c d',
      '$HOME',
      '~',
      '*.py',
      '$(rm',
      '-rf',
      '/)',
      ';',
      'x',
    ]);
    expect(splitCommand(`"" x`)).toEqual(['', 'x']);
  });
});
