// The agent's Prometheus endpoint (--metrics-port): how fast its trainers step, what waits to be
// sent, and how large its spools are. Counted where things happen (one call each), read at scrape.
import http from 'node:http';
import { statSync } from 'node:fs';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Spool } from './spool.js';

const registry = new Registry();
const registers = [registry];

/** Spools of the attempts running now (their reporters add and remove them). */
const openSpools = new Set<Spool>();
/** What other senders (file uploads) still have to send, by kind; each registers a reader. */
const backlogReaders = new Map<string, () => number>();

const trainerSteps = new Counter({
  name: 'loralab_agent_trainer_steps_total',
  help: 'Training steps the trainers reported (rate() of it is the step rate)',
  registers,
});

new Gauge({
  name: 'loralab_agent_runs_active',
  help: 'Runs this agent is training now',
  registers,
  collect() {
    this.set(openSpools.size);
  },
});

new Gauge({
  name: 'loralab_agent_upload_backlog',
  help: 'What waits to be sent to the server: reports (loss batches, checkpoints, samples, completions) in the spools, and other senders by kind',
  labelNames: ['kind'] as const,
  registers,
  collect() {
    let reports = 0;
    for (const spool of openSpools) reports += spool.pending().length;
    this.set({ kind: 'reports' }, reports);
    for (const [kind, read] of backlogReaders) this.set({ kind }, read());
  },
});

new Gauge({
  name: 'loralab_agent_spool_bytes',
  help: 'Size on disk of the spools of the running attempts',
  registers,
  collect() {
    let bytes = 0;
    for (const spool of openSpools) {
      try {
        bytes += statSync(spool.file).size;
      } catch {
        // removed while the attempt ends
      }
    }
    this.set(bytes);
  },
});

export const countTrainerStep = () => trainerSteps.inc();

/** A running attempt's spool, until the returned function is called. */
export function trackSpool(spool: Spool) {
  openSpools.add(spool);
  return () => void openSpools.delete(spool);
}

/** Another sender's backlog (e.g. artifact uploads: `trackBacklog('files', () => queue.length)`). */
export function trackBacklog(kind: string, read: () => number) {
  backlogReaders.set(kind, read);
  return () => void backlogReaders.delete(kind);
}

let processMetrics = false;

/** Serves GET /metrics on `port` (all interfaces: Prometheus scrapes the pod's address). */
export async function startMetricsServer(port: number, host = '0.0.0.0'): Promise<{ port: number; close(): Promise<void> }> {
  if (!processMetrics) {
    collectDefaultMetrics({ register: registry, prefix: 'loralab_agent_' });
    processMetrics = true;
  }
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
