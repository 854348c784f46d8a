// How ai-toolkit finds what to resume from (BaseSDTrainProcess.get_latest_save_path): every
// `<name>*.safetensors` in the save folder, the newest by creation time (os.path.getctime, the inode
// change time on Linux) wins, whatever step its name says; the step then comes from the file's
// training_info metadata. optimizer.pt beside it is loaded when it exists. The agent relies on this
// when it places a stored checkpoint to resume from.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { OPTIMIZER_FILE } from '../files.js';

/** The save ai-toolkit would resume from in `saveRoot`, or null when there is none. */
export function latestSave(saveRoot: string, name: string): string | null {
  let latest: { file: string; ctimeMs: number } | null = null;
  for (const file of readdirSync(saveRoot).sort()) {
    if (!file.startsWith(name) || !file.endsWith('.safetensors')) continue;
    // get_latest_save_path's own false-positive filters.
    if ((!name.includes('_LoRA') && file.includes('_LoRA')) || (!name.includes('_refiner') && file.includes('_refiner')) || (!name.includes('_t2i') && file.includes('_t2i'))) continue;
    const st = statSync(path.join(saveRoot, file), { throwIfNoEntry: false });
    if (!st?.isFile()) continue;
    // max() keeps the first of equal keys: a later file wins only when strictly newer.
    if (latest === null || st.ctimeMs > latest.ctimeMs) latest = { file, ctimeMs: st.ctimeMs };
  }
  return latest?.file ?? null;
}

/** optimizer.pt in the save folder, which ai-toolkit loads after the weights when it is there. */
export function optimizerStateIn(saveRoot: string): string | null {
  const file = path.join(saveRoot, OPTIMIZER_FILE);
  return existsSync(file) ? OPTIMIZER_FILE : null;
}
