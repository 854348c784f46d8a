// Tiny but valid sample images (8×8, one gray level), so whatever shows or thumbnails samples can
// decode what the fake trainer writes. No image library needed: a one-block baseline JPEG whose
// only coefficient is DC, and an uncompressed-filter PNG.
import { deflateSync } from 'node:zlib';

/** An 8×8 grayscale baseline JPEG of one gray level (0–255). */
export function grayJpeg(level: number): Buffer {
  const gray = clampByte(level);
  const bytes: number[] = [];
  const segment = (marker: number, body: number[]) => {
    const length = body.length + 2;
    bytes.push(0xff, marker, length >> 8, length & 0xff, ...body);
  };

  bytes.push(0xff, 0xd8); // SOI
  segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, 0, 1, 0, 1, 0, 0]); // APP0 "JFIF", v1.1, no thumbnail
  segment(0xdb, [0x00, ...new Array<number>(64).fill(1)]); // DQT 0: all ones, so DC is stored exactly
  segment(0xc0, [8, 0, 8, 0, 8, 1, 1, 0x11, 0]); // SOF0: 8-bit, 8×8, one component, table 0
  // DHT DC 0: the standard luminance DC table (JPEG Annex K.3), categories 0–11.
  segment(0xc4, [0x00, 0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  // DHT AC 0: one 1-bit code, for end-of-block; a flat block has no AC coefficients.
  segment(0xc4, [0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00]);
  segment(0xda, [1, 1, 0x00, 0, 63, 0]); // SOS: one component, tables 0/0, full spectral range

  // A flat block's DC coefficient is 8 × (level − 128) after the level shift.
  const dc = 8 * (gray - 128);
  const category = dc === 0 ? 0 : Math.floor(Math.log2(Math.abs(dc))) + 1;
  const dcCodes = ['00', '010', '011', '100', '101', '110', '1110', '11110', '111110', '1111110', '11111110', '111111110'];
  let bits = dcCodes[category]!;
  if (category > 0) {
    const v = dc >= 0 ? dc : dc + (1 << category) - 1;
    bits += v.toString(2).padStart(category, '0');
  }
  bits += '0'; // AC: end of block
  bits = bits.padEnd(Math.ceil(bits.length / 8) * 8, '1');
  for (let i = 0; i < bits.length; i += 8) {
    const byte = parseInt(bits.slice(i, i + 8), 2);
    bytes.push(byte);
    if (byte === 0xff) bytes.push(0x00); // byte stuffing
  }

  bytes.push(0xff, 0xd9); // EOI
  return Buffer.from(bytes);
}

/** An 8×8 grayscale PNG of one gray level. */
export function grayPng(level: number): Buffer {
  const gray = clampByte(level);
  const rows = Buffer.alloc(8 * 9);
  for (let y = 0; y < 8; y++) {
    rows[y * 9] = 0; // filter: none
    rows.fill(gray, y * 9 + 1, y * 9 + 9);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(8, 0);
  ihdr.writeUInt32BE(8, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(rows)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const typeAndData = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  typeAndData.copy(out, 4);
  out.writeUInt32BE(crc32(typeAndData), 8 + data.length);
  return out;
}

let crcTable: Uint32Array | null = null;

function crc32(buf: Buffer): number {
  if (crcTable === null) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of buf) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function clampByte(v: number): number {
  return Math.max(0, Math.min(255, Math.round(v)));
}
