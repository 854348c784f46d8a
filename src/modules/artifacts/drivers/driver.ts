// What the artifact service needs from a place that keeps bytes. Two drivers implement it: the
// embedded one (files under DATA_DIR/artifacts, served by the server itself) and any S3-compatible
// bucket (presigned URLs, so bytes go straight between clients and the bucket).
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';

/** An upload in progress: `size` bytes to `key`, in parts of `partSize` (the last one shorter). */
export interface UploadTarget {
  key: string;
  /** The store's own upload id (S3 multipart); null where the driver needs none. */
  uploadId: string | null;
  size: number;
  partSize: number;
}

export interface ReceivedPart {
  number: number;
  size: number;
  /** Opaque: the client hands back what the PUT answered, the server compares. */
  etag: string;
}

export interface GetUrlRequest {
  key: string;
  /** Shown to the person (Content-Disposition); already reduced to safe characters. */
  fileName: string;
  contentType: string;
  disposition: 'inline' | 'attachment';
  /** Unix seconds. */
  expiresAt: number;
}

/** The store no longer knows an upload (aborted, or already joined into its object). */
export class UploadGoneError extends Error {}

/** An upload's bytes as the driver saw them arrive (BlobDriver.arrivedDigest). */
export interface ArrivedBytes {
  size: number;
  sha256: string;
  /** The first bytes (up to what sniffing the content type reads). */
  head: Buffer;
}

export interface BlobDriver {
  readonly kind: 'file' | 's3';
  /** Prepares an upload; returns the store's upload id (S3 multipart) or null. */
  createUpload(target: Omit<UploadTarget, 'uploadId'>): Promise<string | null>;
  /** The parts the store has received so far, in number order. */
  receivedParts(target: UploadTarget): Promise<ReceivedPart[]>;
  /** A signed PUT URL for part `number` (1-based). `expiresAt` in unix seconds. */
  partUrl(target: UploadTarget, number: number, expiresAt: number): Promise<string>;
  /**
   * The size, sha256 and first bytes of an upload, where the driver followed its bytes in as they
   * arrived (the embedded store); null where it cannot vouch for every received part, and the
   * object must be read back to be verified. Asked once, before finishUpload.
   */
  arrivedDigest?(target: UploadTarget, parts: ReceivedPart[]): Promise<ArrivedBytes | null>;
  /** Joins the received parts into the object at `target.key` (nothing is verified here). */
  finishUpload(target: UploadTarget, parts: ReceivedPart[]): Promise<void>;
  /** Forgets an upload and whatever it received; a no-op for one that is gone. */
  abortUpload(target: UploadTarget): Promise<void>;
  /** The object's bytes, streamed. */
  read(key: string): Promise<Readable>;
  /** Writes a small object in one go (thumbnails). */
  put(key: string, bytes: Buffer, contentType: string): Promise<void>;
  /** Deletes objects; keys that are gone already are fine. */
  delete(keys: string[]): Promise<void>;
  /** A signed GET URL. */
  getUrl(request: GetUrlRequest): Promise<string>;
  close(): Promise<void>;
}

/**
 * Storage keys are the server's own names: never derived from a client's file name, and never
 * reused (a new upload of the same bytes gets a new key), so deleting an old object can never
 * remove a newer one. `b.<sha256>.<uuid>` for blobs, `t.<sha256>.<uuid>.webp` for thumbnails.
 */
export const blobKey = (sha256: string) => `b.${sha256}.${randomUUID()}`;
export const thumbnailKey = (sha256: string) => `t.${sha256}.${randomUUID()}.webp`;
export const STORAGE_KEY = /^[bt]\.[0-9a-f]{64}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\.webp)?$/;

/** Part `number`'s byte range within an upload. */
export function partRange(target: Pick<UploadTarget, 'size' | 'partSize'>, number: number) {
  const offset = (number - 1) * target.partSize;
  return { offset, length: Math.max(0, Math.min(target.partSize, target.size - offset)) };
}

/** How many parts an upload has; an empty file is one empty part. */
export const partCount = (target: Pick<UploadTarget, 'size' | 'partSize'>) => Math.max(1, Math.ceil(target.size / target.partSize));
