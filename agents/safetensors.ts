// The safetensors container: an 8-byte little-endian header length, a JSON header (tensor
// descriptions plus string-only `__metadata__`), then the raw tensor bytes. ai-toolkit keeps the
// training step in the metadata, which is how a resumed run (and the watcher) knows a checkpoint's step.
import { open } from 'node:fs/promises';

export interface TensorData {
  name: string;
  dtype: 'F16' | 'F32' | 'BF16';
  shape: number[];
  data: Buffer;
}

// A header larger than this is not a LoRA checkpoint's; refuse it rather than allocate it.
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export function encodeSafetensors(metadata: Record<string, string>, tensors: TensorData[]): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  let json = JSON.stringify(header);
  // The format pads the header with spaces so the tensor data starts 8-byte aligned.
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.length));
  return Buffer.concat([length, headerBytes, ...tensors.map((t) => t.data)]);
}

/** The `__metadata__` of a safetensors file; null when the file is not one. */
export async function readSafetensorsMetadata(file: string): Promise<Record<string, string> | null> {
  const handle = await open(file, 'r');
  try {
    const lengthBytes = Buffer.alloc(8);
    const { bytesRead } = await handle.read(lengthBytes, 0, 8, 0);
    if (bytesRead < 8) return null;
    const length = lengthBytes.readBigUInt64LE();
    if (length === 0n || length > BigInt(MAX_HEADER_BYTES)) return null;
    const headerBytes = Buffer.alloc(Number(length));
    const read = await handle.read(headerBytes, 0, headerBytes.length, 8);
    if (read.bytesRead < headerBytes.length) return null;
    const header: unknown = JSON.parse(headerBytes.toString('utf8'));
    if (typeof header !== 'object' || header === null) return null;
    const meta = (header as Record<string, unknown>)['__metadata__'];
    if (typeof meta !== 'object' || meta === null) return {};
    return Object.fromEntries(Object.entries(meta).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch (err) {
    if (err instanceof SyntaxError) return null;
    throw err;
  } finally {
    await handle.close();
  }
}

/**
 * The step a checkpoint was saved at: `step` in the metadata, else ai-toolkit's
 * `training_info` JSON (`{"step": 250, …}`).
 */
export function stepFromMetadata(meta: Record<string, string>): number | null {
  const direct = meta['step'];
  if (direct !== undefined && /^\d+$/.test(direct)) return Number(direct);
  const info = meta['training_info'];
  if (info !== undefined) {
    try {
      const parsed: unknown = JSON.parse(info);
      const step = (parsed as { step?: unknown } | null)?.step;
      if (typeof step === 'number' && Number.isInteger(step) && step >= 0) return step;
    } catch {
      return null;
    }
  }
  return null;
}
