// The agent's cache of stored datasets' files against a plain HTTP server: content-addressed,
// every download checked against its sha256, least recently used files evicted beyond the limit.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheError, DatasetCache, parseSize } from '../../agents/dataset-cache.js';
import { tempDir } from './helpers.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('the dataset cache', () => {
  const files = new Map<string, Buffer>([
    ['/a', Buffer.alloc(1000, 1)],
    ['/b', Buffer.alloc(1000, 2)],
    ['/c', Buffer.alloc(1000, 3)],
  ]);
  let server: http.Server;
  let base: string;
  let dir: string;
  let cleanup: () => Promise<void>;
  const gets: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      gets.push(req.url!);
      const body = files.get(req.url!);
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    ({ dir, cleanup } = await tempDir('dataset-cache'));
  });
  afterAll(async () => {
    server.close();
    await cleanup();
  });

  const entry = (name: string) => ({ fileName: `${name}.jpg`, sha256: sha256(files.get(`/${name}`)!), url: `${base}/${name}` });
  const cached = (cacheDir: string) => readdirSync(cacheDir).flatMap((sub) => readdirSync(path.join(cacheDir, sub)));

  it('downloads each file once, checks its sha256, and evicts the least recently used beyond the limit, never the files in use', async () => {
    const cacheDir = path.join(dir, 'lru');
    const cache = new DatasetCache(cacheDir, 2000);
    const first = await cache.fetch([entry('a'), entry('b')]);
    expect(first).toMatchObject({ downloaded: 2, hits: 0, downloadedBytes: 2000 });
    expect(first.paths.get('a.jpg')).toBe(cache.pathOf(entry('a').sha256));
    // Used again: no bytes move.
    gets.length = 0;
    const again = await cache.fetch([entry('a')]);
    expect(again).toMatchObject({ downloaded: 0, hits: 1, downloadedBytes: 0 });
    expect(gets).toEqual([]);
    // c needs room: b (used longest ago) goes, a (used just now) stays.
    await cache.fetch([entry('c')]);
    expect(cached(cacheDir).sort()).toEqual([entry('a').sha256, entry('c').sha256].sort());
    // A dataset larger than the limit keeps all of its files.
    await cache.fetch([entry('a'), entry('b'), entry('c')]);
    expect(cached(cacheDir)).toHaveLength(3);
  });

  it('refuses bytes that are not the declared ones, and keeps nothing of them', async () => {
    const cacheDir = path.join(dir, 'bad');
    const cache = new DatasetCache(cacheDir, 1e9);
    const wrong = { ...entry('a'), sha256: sha256(Buffer.from('something else')) };
    await expect(cache.fetch([wrong])).rejects.toThrow(CacheError);
    expect(existsSync(cache.pathOf(wrong.sha256))).toBe(false);
    expect(cached(cacheDir)).toEqual([]);
    await expect(cache.fetch([{ ...entry('a'), url: `${base}/missing` }])).rejects.toThrow(/HTTP 404/);
  });

  it('reads --cache-size values', () => {
    expect(parseSize('20GiB')).toBe(20 * 1024 ** 3);
    expect(parseSize('500MB')).toBe(500e6);
    expect(parseSize('1.5 TiB')).toBe(1.5 * 1024 ** 4);
    expect(parseSize('1000000')).toBe(1_000_000);
    expect(() => parseSize('lots')).toThrow(/not a size/);
  });
});
