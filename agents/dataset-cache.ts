// The agent's cache of stored datasets' files, under <work>/cache/: one file per distinct content,
// named by its sha256 (the same image in two datasets is fetched once), shared by every run. A file
// is downloaded to a temporary name, its sha256 computed as the bytes arrive and compared with the
// one loralab declared, and only then renamed into place, so whatever sits under a sha256 name has
// those bytes. Runs get hard links to cached files in their staging folders; the cache keeps its
// size under --cache-size by deleting the least recently used files (a file's mtime is set each
// time a run uses it), never those of the runs being staged. A run's hard links keep their bytes
// even when the cache drops its own name for them.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { backoffMs, pause } from './api-client.js';

export interface CachedFile {
  fileName: string;
  sha256: string;
  url: string;
}

export interface FetchResult {
  /** File name → the cached file holding its bytes. */
  paths: Map<string, string>;
  downloadedBytes: number;
  downloaded: number;
  hits: number;
}

export class CacheError extends Error {}

const SHA256 = /^[0-9a-f]{64}$/;
const TRIES = 5;
const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 16 }), https: new https.Agent({ keepAlive: true, maxSockets: 16 }) };

export class DatasetCache {
  constructor(
    readonly dir: string,
    /** Bytes the cache may hold (the files of the runs being staged are kept even beyond it). */
    readonly maxBytes: number,
    private readonly log: (line: string) => void = () => {},
  ) {}

  /** The 256 subfolders made so far: a fetch of thousands of files asks for each only once. */
  private readonly madeDirs = new Set<string>();

  pathOf(sha256: string): string {
    if (!SHA256.test(sha256)) throw new CacheError(`not a sha256: ${JSON.stringify(sha256)}`);
    return path.join(this.dir, sha256.slice(0, 2), sha256);
  }

  /**
   * Brings every file into the cache (`concurrency` downloads at once), checks each download's
   * sha256, marks every file as just used, then evicts down to the size limit. Throws a CacheError
   * when a file cannot be had with its declared bytes.
   */
  async fetch(files: CachedFile[], options: { concurrency?: number; signal?: AbortSignal } = {}): Promise<FetchResult> {
    const result: FetchResult = { paths: new Map(), downloadedBytes: 0, downloaded: 0, hits: 0 };
    const queue = [...files];
    const worker = async () => {
      for (let file = queue.shift(); file; file = queue.shift()) {
        const target = this.pathOf(file.sha256);
        const now = new Date();
        try {
          await utimes(target, now, now); // used now (and there)
          result.hits++;
        } catch {
          const bytes = await this.download(file, target, options.signal); // awaited first: `+=` across an await loses the other workers' bytes
          result.downloadedBytes += bytes;
          result.downloaded++;
        }
        result.paths.set(file.fileName, target);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 8, files.length)) }, worker));
    await this.evict(new Set(files.map((f) => f.sha256)));
    return result;
  }

  /** Downloads one file into the cache, tried a few times; returns the bytes received. */
  private async download(file: CachedFile, target: string, signal?: AbortSignal): Promise<number> {
    const dir = path.dirname(target);
    if (!this.madeDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.madeDirs.add(dir);
    }
    let lastError: Error | null = null;
    for (let attempt = 0; attempt < TRIES; attempt++) {
      if (signal?.aborted) throw signal.reason;
      const partial = `${target}.${randomBytes(6).toString('hex')}.part`;
      try {
        const { size, sha256 } = await downloadHashed(file.url, partial, signal);
        if (sha256 !== file.sha256) throw new CacheError(`${file.fileName}: the bytes received have sha256 ${sha256}, not the declared ${file.sha256}`);
        await rename(partial, target);
        return size;
      } catch (err) {
        await rm(partial, { force: true });
        if (signal?.aborted) throw signal.reason;
        lastError = err as Error;
        const status = (err as { status?: number }).status;
        // Other bytes than declared will not change by asking again.
        if (err instanceof CacheError && status === undefined) throw err;
        // Nor will an HTTP refusal (an expired URL: the run asks for the list again).
        if (status !== undefined && status < 500) break;
        await pause(backoffMs(attempt, 250, 5000), signal);
      }
    }
    throw new CacheError(`could not download ${file.fileName}: ${lastError?.message ?? 'unknown error'}`);
  }

  /** Deletes the least recently used files until the cache fits its limit; `keep` stays. */
  async evict(keep: Set<string>): Promise<{ files: number; bytes: number }> {
    const entries: { file: string; sha: string; size: number; used: number }[] = [];
    for (const sub of await readdir(this.dir).catch(() => [] as string[])) {
      const subDir = path.join(this.dir, sub);
      for (const name of await readdir(subDir).catch(() => [] as string[])) {
        const file = path.join(subDir, name);
        const st = await stat(file).catch(() => null);
        if (!st?.isFile()) continue;
        if (name.endsWith('.part')) {
          // Left by a download that was killed: gone after an hour.
          if (Date.now() - st.mtimeMs > 3_600_000) await rm(file, { force: true });
          continue;
        }
        entries.push({ file, sha: name, size: st.size, used: st.mtimeMs });
      }
    }
    let total = entries.reduce((sum, e) => sum + e.size, 0);
    const evicted = { files: 0, bytes: 0 };
    for (const e of entries.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxBytes) break;
      if (keep.has(e.sha)) continue;
      await rm(e.file, { force: true });
      total -= e.size;
      evicted.files++;
      evicted.bytes += e.size;
    }
    if (evicted.files > 0) this.log(`dataset cache: dropped ${evicted.files} least recently used file(s) (${evicted.bytes} bytes) to stay under ${this.maxBytes} bytes`);
    if (total > this.maxBytes) this.log(`dataset cache: the datasets in use need ${total} bytes, more than --cache-size ${this.maxBytes}; kept them`);
    return evicted;
  }
}

/** GETs `url` into `file`, hashing the bytes as they arrive. */
export async function downloadHashed(url: string, file: string, signal?: AbortSignal): Promise<{ size: number; sha256: string }> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = (secure ? https : http).get(target, { agent: secure ? agents.https : agents.http, signal }, resolve);
    req.on('error', reject);
  });
  if (res.statusCode !== 200) {
    res.resume();
    throw Object.assign(new CacheError(`GET answered HTTP ${res.statusCode}`), { status: res.statusCode });
  }
  const hash = createHash('sha256');
  let size = 0;
  // Hashed as the chunks pass on their way to the file (a listener, not one more stream stage).
  res.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.length;
  });
  await pipeline(res, createWriteStream(file));
  return { size, sha256: hash.digest('hex') };
}

/** `20GiB`, `500 MB`, `1.5T`, `1000000` (bytes) → bytes. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$/i.exec(text);
  if (!m) throw new Error(`${JSON.stringify(text)} is not a size (e.g. 50GiB, 500MB, 1000000)`);
  const power = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  const base = m[3] || !m[2] ? 1024 : 1000;
  return Math.round(Number(m[1]) * base ** Math.max(0, power));
}
