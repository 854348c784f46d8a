// A real S3-protocol server for the S3 driver's tests: Python's moto (`moto_server`), started on a
// free port and stopped with the test file. Where moto_server is not installed the S3 tests are
// skipped with a loud message (CI refuses to run without it: see .ci/run).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

export const motoInstalled = spawnSync('moto_server', ['--help'], { stdio: 'ignore' }).status === 0;

if (!motoInstalled) {
  console.warn('\n!!! moto_server is not installed: the S3 driver tests are SKIPPED (pip install "moto[server]") !!!\n');
}

export interface Moto {
  endpoint: string;
  bucket: string;
  client: S3Client;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/**
 * Starts moto with one bucket. The S3 driver finds credentials and region through the AWS SDK's
 * usual chain, as in production: here the environment variables moto accepts.
 */
export async function startMoto(bucket = 'loralab-test'): Promise<Moto> {
  process.env.AWS_ACCESS_KEY_ID ??= 'test';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const port = await freePort();
  const child: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode != null) throw new Error(`moto_server exited with ${child.exitCode}`);
    try {
      await fetch(`${endpoint}/moto-api/`);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error('moto_server did not answer within 30 s');
      await new Promise((r) => setTimeout(r, 100)); // polling until it listens
    }
  }
  const client = new S3Client({ endpoint, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    endpoint,
    bucket,
    client,
    async stop() {
      client.destroy();
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
