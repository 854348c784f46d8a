// deploy/kubernetes: every manifest is checked against the Kubernetes API's own schema (the
// kubernetes-models validators, generated from the OpenAPI spec), then for what a schema cannot
// see: selectors that find their pods, probes on the server's port, secrets that exist, GPUs for
// the agent and a grace period longer than a checkpoint upload.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { OPTIONS } from '../agents/config.js';
import { loadConfig } from '../src/config.js';

const DEPLOY = path.resolve(import.meta.dirname, '../deploy/kubernetes');
const SECRETS_FILE = 'secrets.example.yaml';

type Obj = Record<string, any>;
interface Manifest {
  file: string;
  doc: Obj;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(name) ? [full] : [];
  });
}

const manifests: Manifest[] = yamlFiles(DEPLOY).flatMap((full) =>
  parseAllDocuments(readFileSync(full, 'utf8')).map((doc) => {
    if (doc.errors.length) throw new Error(`${full}: ${doc.errors[0]!.message}`);
    return { file: path.relative(DEPLOY, full), doc: doc.toJS() as Obj };
  }),
);
const objects = manifests.filter((m) => m.doc.kind !== 'Kustomization');
const find = (kind: string, name: string) => {
  const found = objects.find((m) => m.doc.kind === kind && m.doc.metadata?.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in deploy/kubernetes`);
  return found.doc;
};

const api = find('Deployment', 'loralab-api');
const agent = find('DaemonSet', 'loralab-agent');
const apiContainer = api.spec.template.spec.containers.find((c: Obj) => c.name === 'api');
const agentContainer = agent.spec.template.spec.containers.find((c: Obj) => c.name === 'agent');

/** Whether a label selector's matchLabels pick pods with these labels. */
const selects = (selector: Obj, labels: Obj) => Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels?.[k] === v);

/** The literal value of an environment variable a container sets. */
const envValue = (container: Obj, name: string) => container.env?.find((e: Obj) => e.name === name)?.value as string | undefined;

type Model = new (data: Obj) => { validate(): void };
/** The schema of each kind the manifests use; a new kind gets its model here. */
const MODELS: Record<string, () => Promise<Record<string, unknown>>> = {
  'v1/Namespace': () => import('kubernetes-models/v1/Namespace'),
  'v1/Secret': () => import('kubernetes-models/v1/Secret'),
  'v1/Service': () => import('kubernetes-models/v1/Service'),
  'apps/v1/Deployment': () => import('kubernetes-models/apps/v1/Deployment'),
  'apps/v1/DaemonSet': () => import('kubernetes-models/apps/v1/DaemonSet'),
  'policy/v1/PodDisruptionBudget': () => import('kubernetes-models/policy/v1/PodDisruptionBudget'),
  'monitoring.coreos.com/v1/ServiceMonitor': () => import('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor'),
  'monitoring.coreos.com/v1/PodMonitor': () => import('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor'),
};

async function modelClass(apiVersion: string, kind: string): Promise<Model | undefined> {
  return (await MODELS[`${apiVersion}/${kind}`]?.())?.[kind] as Model | undefined;
}

describe('deploy/kubernetes', () => {
  it.each(objects.map((m) => [`${m.file}: ${m.doc.kind} ${m.doc.metadata?.name}`, m] as const))(
    '%s is valid for the Kubernetes API',
    async (_, { doc }) => {
      const Model = await modelClass(doc.apiVersion, doc.kind);
      expect(Model, `a model for ${doc.apiVersion} ${doc.kind}`).toBeDefined();
      expect(() => new Model!(doc).validate()).not.toThrow();
      expect(doc.metadata.labels?.['app.kubernetes.io/name'] ?? doc.metadata.labels?.['app.kubernetes.io/part-of']).toBe('loralab');
    },
  );

  it('a schema check that finds mistakes (the validator is not a no-op)', async () => {
    const Model = await modelClass('apps/v1', 'Deployment');
    const broken = structuredClone(api);
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'four thousand';
    expect(() => new Model!(broken).validate()).toThrow(/containerPort/);
  });

  it('kustomization.yaml lists every manifest but the secrets, and only files that exist', () => {
    for (const { file, doc } of manifests.filter((m) => m.doc.kind === 'Kustomization')) {
      const dir = path.dirname(path.join(DEPLOY, file));
      for (const resource of doc.resources) expect(statSync(path.join(dir, resource)).isFile(), resource).toBe(true);
    }
    const listed = manifests
      .filter((m) => m.doc.kind === 'Kustomization')
      .flatMap((m) => m.doc.resources.map((r: string) => path.join(path.dirname(m.file), r)));
    const manifestFiles = [...new Set(objects.map((m) => m.file))];
    expect(manifestFiles.filter((f) => f !== SECRETS_FILE).sort()).toEqual([...listed].sort());
    // `kubectl apply -k` must never reset the real secrets to the placeholders.
    expect(listed).not.toContain(SECRETS_FILE);
  });

  it('every image is set, and every secret a pod reads is one the example defines', () => {
    const secrets = new Map(
      objects.filter((m) => m.doc.kind === 'Secret').map((m) => [m.doc.metadata.name, new Set(Object.keys(m.doc.stringData ?? m.doc.data ?? {}))]),
    );
    for (const workload of [api, agent]) {
      const pod = workload.spec.template.spec;
      for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
        expect(container.image, `${workload.metadata.name}/${container.name}`).toMatch(/\S/);
        for (const env of container.env ?? []) {
          const ref = env.valueFrom?.secretKeyRef;
          if (!ref) continue;
          expect(secrets.get(ref.name)?.has(ref.key), `${container.name}: ${env.name} from ${ref.name}/${ref.key}`).toBe(true);
        }
        for (const mount of container.volumeMounts ?? []) expect(pod.volumes.map((v: Obj) => v.name), mount.name).toContain(mount.name);
      }
    }
    const kustomization = manifests.find((m) => m.file === 'kustomization.yaml')!.doc;
    const images = new Set([api, agent].flatMap((w) => [...(w.spec.template.spec.initContainers ?? []), ...w.spec.template.spec.containers].map((c: Obj) => c.image)));
    // Each image name is one an overlay can replace through `images:`.
    expect(new Set(kustomization.images.map((i: Obj) => i.name))).toEqual(images);
  });
});

describe('the API', () => {
  const pod = api.spec.template.spec;
  const port = apiContainer.ports.find((p: Obj) => p.name === 'http');

  it('runs at least two replicas whose pods its selector finds, and rolls out without losing one', () => {
    expect(api.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(selects(api.spec.selector, api.spec.template.metadata.labels)).toBe(true);
    expect(selects(api.spec.selector, agent.spec.template.metadata.labels)).toBe(false);
    expect(api.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  it('listens where its probes, its Service and its environment say, and is ready and alive by /healthz', () => {
    expect(Number(envValue(apiContainer, 'PORT'))).toBe(port.containerPort);
    expect(envValue(apiContainer, 'HOST')).toBe('0.0.0.0');
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      expect(apiContainer[probe]?.httpGet, probe).toEqual({ path: '/healthz', port: 'http' });
    }
    // Liveness must be slower to give up than readiness: a database hiccup unreadies, not restarts.
    const failsAfter = (probe: Obj) => probe.periodSeconds * probe.failureThreshold;
    expect(failsAfter(apiContainer.livenessProbe)).toBeGreaterThan(failsAfter(apiContainer.readinessProbe));

    const service = find('Service', 'loralab-api');
    expect(selects({ matchLabels: service.spec.selector }, api.spec.template.metadata.labels)).toBe(true);
    expect(service.spec.ports).toContainEqual(expect.objectContaining({ targetPort: 'http' }));
  });

  it('takes the settings the server accepts (PostgreSQL, the admin key, an S3 bucket)', () => {
    const env: Record<string, string> = {};
    for (const e of apiContainer.env) env[e.name] = e.value ?? `placeholder-secret-value-for-${e.name}`;
    env.DATABASE_URL = 'postgres://loralab:secret@db:5432/loralab';
    const config = loadConfig(env);
    expect(config).toMatchObject({ host: '0.0.0.0', port: port.containerPort });
    expect(apiContainer.env.find((e: Obj) => e.name === 'DATABASE_URL').valueFrom.secretKeyRef).toBeDefined();
    expect(apiContainer.env.find((e: Obj) => e.name === 'LORALAB_ADMIN_KEY').valueFrom.secretKeyRef).toBeDefined();
    expect(apiContainer.env.find((e: Obj) => e.name === 'METRICS_TOKEN').valueFrom.secretKeyRef).toBeDefined();
    expect(envValue(apiContainer, 'ARTIFACT_STORE')).toMatch(/^s3:\/\/[a-z0-9.-]+/);
  });

  it('has a disruption budget that keeps one of its pods (and only selects them)', () => {
    const pdb = find('PodDisruptionBudget', 'loralab-api');
    expect(selects(pdb.spec.selector, api.spec.template.metadata.labels)).toBe(true);
    expect(selects(pdb.spec.selector, agent.spec.template.metadata.labels)).toBe(false);
    // At least one stays, and a drain can still evict one: minAvailable below the replicas.
    expect(pdb.spec.minAvailable).toBeGreaterThanOrEqual(1);
    expect(pdb.spec.minAvailable).toBeLessThan(api.spec.replicas);
  });

  it('runs as a user, on a read-only root file system, with limits', () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: expect.any(Number) });
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(apiContainer.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(apiContainer.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(apiContainer.resources.limits.memory).toBeDefined();
    // The server's own shutdown deadline (10 s) and the preStop pause fit in the grace period.
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(10 + Number(apiContainer.lifecycle.preStop.exec.command[1]));
  });

  it('is scraped at GET /metrics with the metrics token (ServiceMonitor)', () => {
    const monitor = find('ServiceMonitor', 'loralab-api');
    const service = find('Service', 'loralab-api');
    expect(selects(monitor.spec.selector, service.metadata.labels)).toBe(true);
    const [endpoint] = monitor.spec.endpoints;
    expect(endpoint).toMatchObject({ port: 'http', path: '/metrics', authorization: { type: 'Bearer', credentials: { name: 'loralab-api', key: 'METRICS_TOKEN' } } });
    expect(service.spec.ports.map((p: Obj) => p.name)).toContain(endpoint.port);
  });
});

describe('the GPU agents', () => {
  const pod = agent.spec.template.spec;

  it('run one per GPU node, on the GPU nodes only', () => {
    expect(selects(agent.spec.selector, agent.spec.template.metadata.labels)).toBe(true);
    expect(pod.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(pod.tolerations).toContainEqual(expect.objectContaining({ key: 'nvidia.com/gpu', operator: 'Exists' }));
  });

  it('ask for their GPUs, and run as many runs at once as they have GPUs', () => {
    const gpus = Number(agentContainer.resources.limits['nvidia.com/gpu']);
    expect(gpus).toBeGreaterThanOrEqual(1);
    expect(Number(envValue(agentContainer, 'LORALAB_CONCURRENCY'))).toBe(gpus);
  });

  it('drain on SIGTERM for longer than a checkpoint takes to upload', () => {
    const uploadSeconds = Number(agent.metadata.annotations['loralab.dev/checkpoint-upload-seconds']);
    expect(uploadSeconds).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(uploadSeconds);
    // The agent itself must be the process that gets SIGTERM: node on the compiled CLI, no npm.
    expect(agentContainer.command).toEqual(['node', 'scripts/run.js', 'agents/cli.ts']);
  });

  it('are scraped at GET /metrics on their metrics port (PodMonitor)', () => {
    const monitor = find('PodMonitor', 'loralab-agent');
    expect(selects(monitor.spec.selector, agent.spec.template.metadata.labels)).toBe(true);
    const [endpoint] = monitor.spec.podMetricsEndpoints;
    expect(endpoint).toMatchObject({ port: 'metrics', path: '/metrics' });
    const port = agentContainer.ports.find((p: Obj) => p.name === endpoint.port);
    expect(String(port.containerPort)).toBe(envValue(agentContainer, 'LORALAB_METRICS_PORT'));
  });

  it('reach the API through its Service, with a token from a secret, under their node name', () => {
    const service = find('Service', 'loralab-api');
    expect(envValue(agentContainer, 'LORALAB_SERVER')).toBe(`http://${service.metadata.name}:${service.spec.ports[0].port}`);
    expect(agentContainer.env.find((e: Obj) => e.name === 'LORALAB_TOKEN').valueFrom.secretKeyRef).toBeDefined();
    expect(agentContainer.env.find((e: Obj) => e.name === 'LORALAB_AGENT_NAME').valueFrom.fieldRef.fieldPath).toBe('spec.nodeName');
    const known = new Set([...OPTIONS.map((o) => o.env), 'HF_HOME', 'HOME']);
    for (const { name } of agentContainer.env) expect(known.has(name), `${name} is an agent option`).toBe(true);
  });

  it("keep their work folder on the node, where a replaced pod finds the spool", () => {
    const workDir = envValue(agentContainer, 'LORALAB_WORK_DIR');
    const mount = agentContainer.volumeMounts.find((m: Obj) => m.mountPath === workDir);
    expect(mount).toBeDefined();
    const volume = pod.volumes.find((v: Obj) => v.name === mount.name);
    expect(volume.hostPath).toMatchObject({ path: expect.stringMatching(/^\//), type: 'DirectoryOrCreate' });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(agentContainer.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
  });
});
