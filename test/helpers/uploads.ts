// Files sent through the artifact upload protocol as a client does (begin → PUT parts → complete),
// and images made to send.
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import type { GqlClient } from './server.js';

export const sha256 = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('hex');

const UPLOAD = `artifact { id stored } alreadyStored partSize parts { number url }`;
const BEGIN_RUN = `mutation($r: ID!, $t: String!, $i: ArtifactUploadInput!) { beginRunUpload(runId: $r, leaseToken: $t, input: $i) { ${UPLOAD} } }`;
const BEGIN_DATASET = `mutation($d: ID!, $i: ArtifactUploadInput!) { beginDatasetUpload(datasetId: $d, input: $i) { ${UPLOAD} } }`;
const COMPLETE = `mutation($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { id stored } }`;

interface Upload {
  artifact: { id: string; stored: boolean };
  alreadyStored: boolean;
  partSize: number | null;
  parts: { number: number; url: string }[];
}

async function send(client: GqlClient, upload: Upload, bytes: Buffer) {
  const etags: { number: number; etag: string }[] = [];
  for (const part of upload.parts) {
    const offset = (part.number - 1) * upload.partSize!;
    const res = await fetch(part.url, { method: 'PUT', body: new Uint8Array(bytes.subarray(offset, offset + upload.partSize!)) });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`PUT of part ${part.number}: ${res.status}`);
    etags.push({ number: part.number, etag: res.headers.get('etag')! });
  }
  if (!upload.alreadyStored) await client.ok(COMPLETE, { a: upload.artifact.id, p: etags });
  return upload.artifact.id;
}

/** An agent's file of a run (CHECKPOINT with step, SAMPLE with step and promptIndex, …). */
export async function uploadRunFile(client: GqlClient, runId: string, leaseToken: string, bytes: Buffer, input: { kind: string; fileName: string; step?: number; promptIndex?: number; contentType?: string }) {
  const { beginRunUpload } = await client.ok(BEGIN_RUN, { r: runId, t: leaseToken, i: { ...input, sizeBytes: bytes.length, sha256: sha256(bytes) } });
  return send(client, beginRunUpload, bytes);
}

export async function uploadDatasetFile(client: GqlClient, datasetId: string, bytes: Buffer, input: { kind: string; fileName: string; contentType?: string }) {
  const { beginDatasetUpload } = await client.ok(BEGIN_DATASET, { d: datasetId, i: { ...input, sizeBytes: bytes.length, sha256: sha256(bytes) } });
  return send(client, beginDatasetUpload, bytes);
}

/** A small JPEG of one colour, different for every seed. */
export function jpeg(seed: number, size = 64) {
  const hue = (seed * 47) % 360;
  const [r, g, b] = [0, 120, 240].map((o) => Math.round(127 + 120 * Math.cos(((hue + o) * Math.PI) / 180)));
  return sharp({ create: { width: size, height: size, channels: 3, background: { r: r!, g: g!, b: b! } } }).jpeg().toBuffer();
}
