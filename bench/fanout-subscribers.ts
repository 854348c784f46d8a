// A worker thread of live subscribers for the fan-out benchmark (bench/fanout.ts). 200 dashboards
// are 200 browsers, not one event loop: subscribers in one thread would queue each other's message
// parsing into the latency being measured, so they are spread over a few threads.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';

export interface SubscriberJob {
  /** One server URL per subscriber of this thread. */
  urls: string[];
  key: string;
  runId: string;
  /** Points each subscriber must receive before it reports. */
  expectedPoints: number;
}

/** What a thread reports: [first step of a batch, arrival time (ms since the epoch, sub-ms)] per subscriber and batch. */
export interface SubscriberReport {
  arrivals: [step: number, at: number][];
  received: number;
}

const now = () => performance.timeOrigin + performance.now();

if (!isMainThread) {
  const job = workerData as SubscriberJob;
  const arrivals: [number, number][] = [];
  const clients: ReturnType<typeof createClient>[] = [];
  let received = 0;
  await Promise.all(
    job.urls.map((url) => {
      const client = createClient({ url: `${url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${job.key}` } });
      clients.push(client);
      return new Promise<void>((ready) => {
        client.on('connected', () => setTimeout(ready, 50));
        client.subscribe<{ runLoss: { points: { step: number }[] } }>(
          { query: `subscription($id: ID!) { runLoss(runId: $id) { points { step } } }`, variables: { id: job.runId } },
          {
            next: ({ data }) => {
              const at = now();
              // The reporter sends batches of 100 and times each by its first step.
              for (const p of data!.runLoss.points) if (p.step % 100 === 0) arrivals.push([p.step, at]);
              received += data!.runLoss.points.length;
            },
            error: (err) => console.error('subscriber error', err),
            complete: () => {},
          },
        );
      });
    }),
  );
  parentPort!.postMessage('ready');
  parentPort!.once('message', async () => {
    const expected = job.expectedPoints * job.urls.length;
    for (let i = 0; i < 100 && received < expected; i++) await new Promise((r) => setTimeout(r, 100));
    parentPort!.postMessage({ arrivals, received } satisfies SubscriberReport);
    await Promise.all(clients.map((c) => c.dispose()));
  });
}
