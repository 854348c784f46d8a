// `npm run bench` runs every benchmark module in bench/ (a file exporting `run()`) and prints its
// figures; `npm run bench -- runs-page dispatch` runs only those. Each module also runs alone:
// `npx tsx bench/runs-page.ts`.
import { readdirSync } from 'node:fs';

const dir = new URL('./', import.meta.url);
const available = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && f !== 'lib.ts')
  .map((f) => f.slice(0, -'.ts'.length))
  .sort();

const asked = process.argv.slice(2).filter((a) => a !== '--');
const unknown = asked.filter((name) => !available.includes(name));
if (unknown.length) {
  console.error(`Unknown benchmark ${unknown.join(', ')}; there are: ${available.join(', ')}`);
  process.exit(2);
}

for (const name of asked.length ? asked : available) {
  const module = (await import(new URL(`./${name}.ts`, dir).href)) as { run?: () => Promise<void> };
  if (typeof module.run !== 'function') continue; // a helper, not a benchmark
  const started = performance.now();
  console.log(`\n=== ${name} ===`);
  await module.run();
  console.log(`\n(${name}: ${((performance.now() - started) / 1000).toFixed(0)} s)`);
}
