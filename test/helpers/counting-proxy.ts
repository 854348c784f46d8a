// An HTTP proxy in front of a test server that counts the upload bytes it forwards (PUTs of the
// embedded store's part URLs) and can slow them down, so a test can interrupt an upload half-way
// and see which parts travel again; and the GraphQL operations it forwards, to see how a client
// groups its calls. Clients reach the server through it (its URL is the one they
// are given); the Host header passes unchanged, so the URLs the server signs name the proxy too.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PartPut {
  /** `/artifacts/u/<key>/<part>` */
  path: string;
  bytes: number;
  status: number | null;
}

export interface CountingProxy {
  url: string;
  /** Every part PUT forwarded, in order, with the bytes that went through and the answer's status. */
  puts: PartPut[];
  /** Every GraphQL request forwarded, in order: the operation's name as its text declares it, and its variables. */
  operations: { name: string | null; variables: Record<string, unknown> }[];
  /** Bytes per second each part PUT is held to (null: as fast as it goes). */
  throttleBytesPerSecond: number | null;
  close(): Promise<void>;
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target);
  const proxy: CountingProxy = {
    url: '',
    puts: [],
    operations: [],
    throttleBytesPerSecond: null,
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    const isPart = req.method === 'PUT' && (req.url ?? '').startsWith('/artifacts/u/');
    const put: PartPut | null = isPart ? { path: (req.url ?? '').split('?')[0]!, bytes: 0, status: null } : null;
    if (put) proxy.puts.push(put);
    const graphql: Buffer[] | null = req.method === 'POST' && (req.url ?? '').startsWith('/graphql') ? [] : null;
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        if (put) put.status = answer.statusCode ?? null;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    let waitingForDrain = false;
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.on('data', (chunk: Buffer) => {
      if (put) put.bytes += chunk.length;
      graphql?.push(chunk);
      if (!out.write(chunk) && !waitingForDrain) {
        waitingForDrain = true;
        req.pause();
        out.once('drain', () => {
          waitingForDrain = false;
          req.resume();
        });
      }
      const rate = proxy.throttleBytesPerSecond;
      if (put && rate) {
        req.pause();
        setTimeout(() => req.resume(), (chunk.length / rate) * 1000); // pacing bytes, not waiting for time to pass
      }
    });
    req.on('end', () => {
      if (graphql) {
        const body = JSON.parse(Buffer.concat(graphql).toString('utf8')) as { query: string; variables?: Record<string, unknown> };
        proxy.operations.push({ name: /^\s*(?:query|mutation|subscription)\s+(\w+)/.exec(body.query)?.[1] ?? null, variables: body.variables ?? {} });
      }
      out.end();
    });
    req.on('error', () => out.destroy());
    res.on('close', () => {
      if (!req.complete) out.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}
