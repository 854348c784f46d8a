// The agent of `docker compose up`: the CLI with the bundled fake trainer, after an optional first
// step that makes the demo self-contained.
//
// With LORALAB_TOKEN (an AGENT key) set, this is just the agent. Without it, and with
// LORALAB_ADMIN_KEY (the key the API was started with), it creates an AGENT key for itself and,
// unless LORALAB_DEMO_RUN=0, queues one demo run on a small generated dataset (once: a restart finds
// the same run by its idempotency key), so there is something to watch training.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ApiClient } from './api-client.js';
import { baseUrl } from './config.js';
import { grayJpeg } from './fake-trainer/images.js';

const DEMO = 'loralab demo';

/** Sets env.LORALAB_TOKEN (and queues the demo run) before cli.ts reads the same environment. */
async function bootstrap(env: NodeJS.ProcessEnv): Promise<void> {
  if (env['LORALAB_TOKEN']) return;
  const adminKey = env['LORALAB_ADMIN_KEY'];
  const server = baseUrl(env['LORALAB_SERVER'] ?? 'http://api:4000');
  if (!adminKey) {
    process.stderr.write(
      'loralab demo agent: set LORALAB_AGENT_TOKEN to an AGENT key (createApiKey(role: AGENT)), ' +
        'or LORALAB_ADMIN_KEY to the API’s admin key so the demo can make one\n',
    );
    process.exit(2);
  }
  const admin = new ApiClient({ server, token: adminKey });
  const call = async <T = any>(query: string, variables: Record<string, unknown> = {}): Promise<T> => {
    // The API may still be starting: wait for it like the agent would.
    for (let i = 0; ; i++) {
      try {
        return (await admin.request<T>(query, variables)).data;
      } catch (err) {
        if (i >= 60 || (err as { kind?: string }).kind !== 'retryable') throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  };

  // The key is kept in the work folder: a restarted container is the same agent, and can still send
  // what its spool holds (reports are accepted only from the key that holds the run).
  const workDir = path.resolve(env['LORALAB_WORK_DIR'] ?? './loralab-agent');
  const keyFile = path.join(workDir, 'demo-agent-key');
  const kept = existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : null;
  if (kept && (await keyWorks(server, kept))) {
    env['LORALAB_TOKEN'] = kept;
  } else {
    const { createApiKey } = await call(`mutation { createApiKey(role: AGENT, name: "${DEMO} agent") { key } }`);
    mkdirSync(workDir, { recursive: true });
    writeFileSync(keyFile, `${createApiKey.key}\n`, { mode: 0o600 });
    env['LORALAB_TOKEN'] = createApiKey.key;
  }
  if (env['LORALAB_DEMO_RUN'] === '0') return;

  // A dataset the agent can read: a few small images in its own work folder.
  const folder = path.join(workDir, 'demo-dataset');
  mkdirSync(folder, { recursive: true });
  const images = Array.from({ length: 6 }, (_, i) => ({ fileName: `p3r5on_${i}.jpg` }));
  images.forEach((image, i) => writeFileSync(path.join(folder, image.fileName), grayJpeg(60 + i * 30)));

  const { datasets, captionStrategies, experiments } = await call(`{
    datasets(first: 500) { edges { node { id name } } }
    captionStrategies { id name }
    experiments(search: "${DEMO}") { edges { node { id name } } }
  }`);
  const datasetId =
    datasets.edges.find((e: any) => e.node.name === DEMO)?.node.id ??
    (await call(`mutation($i: CreateDatasetInput!) { createDataset(input: $i) { id } }`, { i: { name: DEMO, uri: folder, images } })).createDataset.id;
  const captionStrategyId =
    captionStrategies.find((s: any) => s.name === DEMO)?.id ??
    (await call(`mutation { createCaptionStrategy(input: { name: "${DEMO}", kind: TRIGGER_ONLY, triggerWord: "p3r5on", style: SIMPLE }) { id } }`))
      .createCaptionStrategy.id;
  const experimentId =
    experiments.edges.find((e: any) => e.node.name === DEMO)?.node.id ??
    (await call(`mutation { createExperiment(input: { name: "${DEMO}", goal: CONCEPT, description: "queued by the demo agent of docker compose" }) { id } }`))
      .createExperiment.id;
  const { queueRun } = await call(`mutation($i: QueueRunInput!) { queueRun(input: $i) { id name status } }`, {
    i: {
      experimentId,
      datasetId,
      captionStrategyId,
      name: 'demo: p3r5on concept',
      idempotencyKey: 'loralab-demo-run',
      hyperparameters: {
        steps: 600,
        saveEvery: 100,
        sampleEvery: 100,
        samplePrompts: ['[trigger] on a beach at sunset', 'a portrait of [trigger], studio light'],
      },
    },
  });
  process.stdout.write(`demo run ${queueRun.id} (${queueRun.name}) is ${queueRun.status}\n`);
}

/** False when the server no longer knows the key (its database was reset). */
async function keyWorks(server: string, key: string): Promise<boolean> {
  try {
    await new ApiClient({ server, token: key }).request(`{ viewer { role } }`, {});
    return true;
  } catch (err) {
    return (err as { kind?: string }).kind === 'retryable';
  }
}

await bootstrap(process.env);
await import('./cli.js');
