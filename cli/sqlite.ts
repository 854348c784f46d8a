// SQLite through sql.js (SQLite compiled to WebAssembly): it installs from npm alone on any Node 20,
// with no native build and no prebuilt binary to download. It keeps a database in memory, which
// suits ai-toolkit's loss_log.db (a few MB for 100,000 steps): the file is read whole, and a
// write-ahead log beside it is folded in first (walFold), since sql.js cannot open one itself.
import { createRequire } from 'node:module';
import initSqlJs, { type Database, type SqlJsStatic } from 'sql.js';

let loading: Promise<SqlJsStatic> | null = null;

export function sqlite(): Promise<SqlJsStatic> {
  // The .wasm sits beside sql.js's own file in node_modules.
  const wasm = createRequire(import.meta.url).resolve('sql.js/dist/sql-wasm.wasm');
  loading ??= initSqlJs({ locateFile: () => wasm });
  return loading;
}

export type { Database };

const WAL_HEADER = 32;
const FRAME_HEADER = 24;

/**
 * The database as a reader sees it once the committed transactions of its write-ahead log
 * (`<file>-wal`, SQLite's WAL format) are applied: a trainer killed before it checkpointed leaves
 * its newest rows there. Frames count only up to the last commit whose salts and running checksum
 * are intact (https://www.sqlite.org/fileformat2.html#walformat), exactly as SQLite recovers a WAL.
 */
export function walFold(db: Uint8Array, wal: Uint8Array | null): Uint8Array {
  if (!wal || wal.length < WAL_HEADER) return db;
  const view = new DataView(wal.buffer, wal.byteOffset, wal.byteLength);
  const magic = view.getUint32(0);
  if (magic !== 0x377f0682 && magic !== 0x377f0683) return db;
  const bigEndian = (magic & 1) === 1;
  const pageSize = view.getUint32(8) || 65536;
  const salt1 = view.getUint32(16);
  const salt2 = view.getUint32(20);
  let [s0, s1] = checksum(wal, 0, 24, 0, 0, bigEndian);
  if (s0 !== view.getUint32(24) || s1 !== view.getUint32(28)) return db;

  const pages = new Map<number, Uint8Array>();
  let committed = new Map<number, Uint8Array>();
  let dbPages = 0;
  for (let at = WAL_HEADER; at + FRAME_HEADER + pageSize <= wal.length; at += FRAME_HEADER + pageSize) {
    if (view.getUint32(at + 8) !== salt1 || view.getUint32(at + 12) !== salt2) break;
    [s0, s1] = checksum(wal, at, 8, s0, s1, bigEndian);
    [s0, s1] = checksum(wal, at + FRAME_HEADER, pageSize, s0, s1, bigEndian);
    if (s0 !== view.getUint32(at + 16) || s1 !== view.getUint32(at + 20)) break;
    pages.set(view.getUint32(at), wal.subarray(at + FRAME_HEADER, at + FRAME_HEADER + pageSize));
    const commitSize = view.getUint32(at + 4);
    if (commitSize > 0) {
      committed = new Map(pages);
      dbPages = commitSize;
    }
  }
  if (dbPages === 0) return db;
  const out = new Uint8Array(dbPages * pageSize);
  out.set(db.subarray(0, Math.min(db.length, out.length)));
  for (const [page, bytes] of committed) if (page <= dbPages) out.set(bytes, (page - 1) * pageSize);
  // File format versions 2/2 say "WAL mode"; 1/1 lets an in-memory reader open it as a plain file.
  out[18] = 1;
  out[19] = 1;
  return out;
}

function checksum(bytes: Uint8Array, offset: number, length: number, s0: number, s1: number, bigEndian: boolean): [number, number] {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, length);
  for (let i = 0; i < length; i += 8) {
    s0 = (s0 + view.getUint32(i, !bigEndian) + s1) >>> 0;
    s1 = (s1 + view.getUint32(i + 4, !bigEndian) + s0) >>> 0;
  }
  return [s0, s1];
}
