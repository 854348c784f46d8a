// Any S3-compatible bucket (AWS S3, Cloudflare R2, MinIO, GCS interoperability). Clients PUT parts
// and GET objects through presigned URLs, so bytes never pass through the API replicas; the server
// only creates, lists, completes and deletes. Objects up to one part go up as one presigned
// PutObject, larger ones as a multipart upload with a fixed part size.
import type { Readable } from 'node:stream';
import type * as S3 from '@aws-sdk/client-s3';
import type { getSignedUrl as GetSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ArtifactConfig } from '../../../config.js';
import { contentDisposition } from '../media.js';
import { STORAGE_KEY, UploadGoneError, partCount, partRange, type BlobDriver, type GetUrlRequest, type ReceivedPart, type UploadTarget } from './driver.js';

const DELETE_CONCURRENCY = 8;

/**
 * The AWS SDK, loaded by the first S3Driver.create: the compiled server keeps it out of its bundle
 * (scripts/build.js), so a server on the embedded store never reads its megabyte of code at start.
 */
let sdk: typeof S3;
let getSignedUrl: typeof GetSignedUrl;

const isMissing = (err: unknown) =>
  err instanceof sdk.S3ServiceException && (err.name === 'NotFound' || err.name === 'NoSuchKey' || err.name === 'NoSuchUpload' || err.$metadata?.httpStatusCode === 404);

/**
 * A client on the SDK's usual chain for credentials and region. Recent SDKs add CRC checksum
 * headers to every request unless told otherwise, and several S3-compatible stores reject them.
 * Stores that have no regions (MinIO, moto) get us-east-1 when the chain finds none.
 */
async function s3Client(endpoint: string | undefined, forcePathStyle: boolean): Promise<S3.S3Client> {
  const options: S3.S3ClientConfig = {
    endpoint,
    forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  const client = new sdk.S3Client(options);
  try {
    await client.config.region();
    return client;
  } catch {
    client.destroy();
    return new sdk.S3Client({ ...options, region: 'us-east-1' });
  }
}

export class S3Driver implements BlobDriver {
  readonly kind = 's3' as const;

  private constructor(
    private readonly client: S3.S3Client,
    /** Signs URLs for clients, who may reach the store by another address (S3_PUBLIC_ENDPOINT). */
    private readonly presigner: S3.S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
  ) {}

  static async create(config: ArtifactConfig): Promise<S3Driver> {
    if (config.store.kind !== 's3') throw new Error('not an S3 store');
    sdk ??= await import('@aws-sdk/client-s3');
    getSignedUrl ??= (await import('@aws-sdk/s3-request-presigner')).getSignedUrl;
    const client = await s3Client(config.s3Endpoint, config.s3ForcePathStyle);
    const presigner = config.s3PublicEndpoint ? await s3Client(config.s3PublicEndpoint, config.s3ForcePathStyle) : client;
    return new S3Driver(client, presigner, config.store.bucket, config.store.prefix);
  }

  private objectKey(key: string) {
    if (!STORAGE_KEY.test(key)) throw new Error(`not a storage key: ${key}`);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  private presign(command: S3.PutObjectCommand | S3.UploadPartCommand | S3.GetObjectCommand, expiresAt: number, signed: Set<string>) {
    // Signed as of the start of the current minute: URLs stay the same for a minute (a page that
    // refreshes keeps its images cached) and live between ttl - 60 s and ttl.
    const signingDate = new Date(Math.floor(Date.now() / 60_000) * 60_000);
    const expiresIn = Math.max(1, expiresAt - Math.floor(signingDate.getTime() / 1000));
    // getSignedUrl's typing accepts one command type at a time.
    return getSignedUrl(this.presigner, command as S3.GetObjectCommand, { expiresIn, signingDate, signableHeaders: signed });
  }

  async createUpload(target: Omit<UploadTarget, 'uploadId'>) {
    if (partCount(target) === 1) return null;
    const created = await this.client.send(
      new sdk.CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.objectKey(target.key), ContentType: 'application/octet-stream' }),
    );
    return created.UploadId!;
  }

  async receivedParts(target: UploadTarget): Promise<ReceivedPart[]> {
    if (target.uploadId == null) {
      try {
        const head = await this.client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(target.key) }));
        return [{ number: 1, size: head.ContentLength ?? 0, etag: head.ETag ?? '' }];
      } catch (err) {
        if (isMissing(err)) return [];
        throw err;
      }
    }
    const parts: ReceivedPart[] = [];
    let marker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.client.send(
          new sdk.ListPartsCommand({ Bucket: this.bucket, Key: this.objectKey(target.key), UploadId: target.uploadId, PartNumberMarker: marker }),
        );
      } catch (err) {
        if (isMissing(err)) throw new UploadGoneError('The store no longer knows this upload');
        throw err;
      }
      for (const p of page.Parts ?? []) parts.push({ number: p.PartNumber!, size: p.Size ?? 0, etag: p.ETag ?? '' });
      if (!page.IsTruncated || !page.NextPartNumberMarker) break;
      marker = page.NextPartNumberMarker;
    }
    return parts.sort((a, b) => a.number - b.number);
  }

  partUrl(target: UploadTarget, number: number, expiresAt: number) {
    const { length } = partRange(target, number);
    const Key = this.objectKey(target.key);
    // Content-Length is signed: a store that checks signatures refuses a part of any other size.
    const command =
      target.uploadId == null
        ? new sdk.PutObjectCommand({ Bucket: this.bucket, Key, ContentLength: length })
        : new sdk.UploadPartCommand({ Bucket: this.bucket, Key, UploadId: target.uploadId, PartNumber: number, ContentLength: length });
    return this.presign(command, expiresAt, new Set(['content-length']));
  }

  async finishUpload(target: UploadTarget, parts: ReceivedPart[]) {
    if (target.uploadId == null) return; // the one PUT made the object
    await this.client.send(
      new sdk.CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: this.objectKey(target.key),
        UploadId: target.uploadId,
        MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.number, ETag: p.etag })) },
      }),
    );
  }

  async abortUpload(target: UploadTarget) {
    try {
      if (target.uploadId == null) await this.delete([target.key]);
      else await this.client.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.objectKey(target.key), UploadId: target.uploadId }));
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
  }

  async read(key: string): Promise<Readable> {
    const object = await this.client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
    return object.Body as Readable;
  }

  async put(key: string, bytes: Buffer, contentType: string) {
    await this.client.send(new sdk.PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Body: bytes, ContentType: contentType }));
  }

  /** One DeleteObject per key: multi-object delete is missing from some S3-compatible stores (GCS). */
  async delete(keys: string[]) {
    const queue = [...keys];
    await Promise.all(
      Array.from({ length: Math.min(DELETE_CONCURRENCY, queue.length) }, async () => {
        for (let key = queue.shift(); key !== undefined; key = queue.shift()) {
          try {
            await this.client.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
          } catch (err) {
            if (!isMissing(err)) throw err;
          }
        }
      }),
    );
  }

  getUrl(request: GetUrlRequest) {
    return this.presign(
      new sdk.GetObjectCommand({
        Bucket: this.bucket,
        Key: this.objectKey(request.key),
        // The bucket serves what the server decided, whatever Content-Type a client PUT with.
        ResponseContentType: request.contentType,
        ResponseContentDisposition: contentDisposition(request.disposition, request.fileName),
        ResponseCacheControl: 'private, max-age=3600, immutable',
      }),
      request.expiresAt,
      new Set(),
    );
  }

  async close() {
    this.client.destroy();
    if (this.presigner !== this.client) this.presigner.destroy();
  }
}
