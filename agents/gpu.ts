// The machine's GPUs: declared with --gpus, or probed with nvidia-smi. Also the per-GPU VRAM and
// utilisation that heartbeats carry. nvidia-smi runs through execFile with an argument array.
import { execFile } from 'node:child_process';

export interface Gpu {
  /** nvidia-smi's index; the trainer gets it in CUDA_VISIBLE_DEVICES (with CUDA_DEVICE_ORDER=PCI_BUS_ID). */
  index: number;
  name: string;
  memoryMb: number;
}

export interface GpuStats {
  vramUsedMb: number;
  /** Percent, 0–100. */
  utilization: number;
}

export class GpuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuError';
  }
}

const QUERY_TIMEOUT_MS = 10_000;

/**
 * `0:NVIDIA GeForce RTX 4090:24564,1:NVIDIA GeForce RTX 4090:24564` → GPUs. The index comes before
 * the first colon and the memory (MiB) after the last one, so a name may itself contain colons.
 */
export function parseGpuOverride(text: string): Gpu[] {
  const entries = text
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  if (entries.length === 0) throw new GpuError(`--gpus ${JSON.stringify(text)} lists no GPU; expected e.g. "0:NVIDIA GeForce RTX 4090:24564"`);
  const gpus: Gpu[] = [];
  for (const entry of entries) {
    const first = entry.indexOf(':');
    const last = entry.lastIndexOf(':');
    if (first === -1 || first === last) {
      throw new GpuError(`--gpus entry ${JSON.stringify(entry)} is not INDEX:NAME:MEMORY_MB (e.g. "0:NVIDIA GeForce RTX 4090:24564")`);
    }
    const indexText = entry.slice(0, first).trim();
    const name = entry.slice(first + 1, last).trim();
    const memoryText = entry.slice(last + 1).trim();
    if (!/^\d+$/.test(indexText)) throw new GpuError(`--gpus entry ${JSON.stringify(entry)}: the index ${JSON.stringify(indexText)} is not a whole number`);
    if (name.length === 0) throw new GpuError(`--gpus entry ${JSON.stringify(entry)}: the GPU name is empty`);
    if (!/^\d+$/.test(memoryText) || Number(memoryText) === 0) {
      throw new GpuError(`--gpus entry ${JSON.stringify(entry)}: the memory ${JSON.stringify(memoryText)} is not a positive number of MiB`);
    }
    const index = Number(indexText);
    if (gpus.some((g) => g.index === index)) throw new GpuError(`--gpus lists GPU ${index} twice`);
    gpus.push({ index, name, memoryMb: Number(memoryText) });
  }
  return gpus;
}

/** `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits` output → GPUs. */
export function parseGpuList(csv: string): Gpu[] {
  const gpus: Gpu[] = [];
  for (const line of csv.split(/\r?\n/)) {
    if (line.trim().length === 0) continue;
    const fields = line.split(',').map((f) => f.trim());
    if (fields.length < 3) throw new GpuError(`unexpected nvidia-smi line: ${JSON.stringify(line)}`);
    // A name with a comma in it would split too: index first, memory last, the rest is the name.
    const index = Number(fields[0]);
    const memoryMb = Number(fields[fields.length - 1]);
    const name = fields.slice(1, -1).join(', ');
    if (!Number.isInteger(index) || !Number.isFinite(memoryMb)) throw new GpuError(`unexpected nvidia-smi line: ${JSON.stringify(line)}`);
    gpus.push({ index, name, memoryMb: Math.round(memoryMb) });
  }
  return gpus;
}

/** `nvidia-smi --query-gpu=index,memory.used,utilization.gpu --format=csv,noheader,nounits` → stats by index; `[N/A]` fields are left out. */
export function parseGpuStats(csv: string): Map<number, Partial<GpuStats>> {
  const stats = new Map<number, Partial<GpuStats>>();
  for (const line of csv.split(/\r?\n/)) {
    const fields = line.split(',').map((f) => f.trim());
    if (fields.length < 3 || !/^\d+$/.test(fields[0]!)) continue;
    const entry: Partial<GpuStats> = {};
    const used = Number(fields[1]);
    const util = Number(fields[2]);
    if (fields[1] !== '' && Number.isFinite(used)) entry.vramUsedMb = Math.round(used);
    if (fields[2] !== '' && Number.isFinite(util)) entry.utilization = Math.min(100, Math.max(0, util));
    stats.set(Number(fields[0]), entry);
  }
  return stats;
}

function run(binary: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, args, { timeout: QUERY_TIMEOUT_MS, encoding: 'utf8', windowsHide: true }, (err, stdout) => {
      if (err) reject(err);
      else resolve(stdout);
    });
  });
}

/** The machine's GPUs as nvidia-smi lists them; a GpuError saying why when there are none. */
export async function probeGpus(nvidiaSmi = 'nvidia-smi'): Promise<Gpu[]> {
  let out: string;
  try {
    out = await run(nvidiaSmi, ['--query-gpu=index,name,memory.total', '--format=csv,noheader,nounits']);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? `${nvidiaSmi} is not installed` : `${nvidiaSmi} failed: ${(err as Error).message.trim()}`;
    throw new GpuError(`No NVIDIA GPU found (${why}). Declare the GPUs with --gpus, e.g. --gpus "0:NVIDIA GeForce RTX 4090:24564"`);
  }
  const gpus = parseGpuList(out);
  if (gpus.length === 0) {
    throw new GpuError(`No NVIDIA GPU found (${nvidiaSmi} lists none). Declare the GPUs with --gpus, e.g. --gpus "0:NVIDIA GeForce RTX 4090:24564"`);
  }
  return gpus;
}

/**
 * VRAM in use and utilisation of some GPUs, for heartbeats. Without nvidia-smi (a fake GPU, a
 * container without the driver tools) it answers null, and stops asking after the first miss.
 */
export class GpuMonitor {
  private unavailable = false;

  constructor(private readonly nvidiaSmi = 'nvidia-smi') {}

  async query(indices: number[]): Promise<Partial<GpuStats> | null> {
    if (this.unavailable || indices.length === 0) return null;
    let out: string;
    try {
      out = await run(this.nvidiaSmi, ['--query-gpu=index,memory.used,utilization.gpu', '--format=csv,noheader,nounits']);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.unavailable = true;
      return null;
    }
    const all = parseGpuStats(out);
    const mine = indices.map((i) => all.get(i)).filter((s): s is Partial<GpuStats> => s !== undefined);
    if (mine.length === 0) return null;
    const used = mine.filter((s) => s.vramUsedMb !== undefined);
    const util = mine.filter((s) => s.utilization !== undefined);
    const result: Partial<GpuStats> = {};
    // A run on several GPUs: the memory it holds in all, and how busy they are on average.
    if (used.length > 0) result.vramUsedMb = used.reduce((sum, s) => sum + s.vramUsedMb!, 0);
    if (util.length > 0) result.utilization = util.reduce((sum, s) => sum + s.utilization!, 0) / util.length;
    return result;
  }
}

export function describeGpus(gpus: Gpu[]): string {
  return gpus.map((g) => `${g.index}: ${g.name} (${g.memoryMb} MiB)`).join(', ');
}
