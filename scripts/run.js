// @ts-check
// `node scripts/run.js ENTRY.ts [args…]`: runs the compiled form of a TypeScript entry point (see
// build.js), compiling it first when it is missing or stale. The program runs in this process, so
// signals reach it directly, and it sees itself started as `node ENTRY.ts args…` (process.argv[1]
// is the entry's own path), so its command-line parsing and "am I the main module" checks behave
// exactly as under tsx. The package it belongs to (where dist/ goes) is the nearest folder above it
// with a package.json.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureBuilt } from './build.js';

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  process.stderr.write('usage: node scripts/run.js ENTRY.ts [args…]\n');
  process.exit(2);
}
const log = (/** @type {string} */ line) => process.stderr.write(line);
const source = path.resolve(entry);
let root = path.dirname(source);
while (!existsSync(path.join(root, 'package.json')) && path.dirname(root) !== root) root = path.dirname(root);

let output;
for (let tries = 1; ; tries++) {
  try {
    output = await ensureBuilt(source, { root, log });
  } catch (err) {
    // esbuild reports each error with its file and line; a stack trace through esbuild adds nothing.
    const { errors, code } = /** @type {{ code?: string, errors?: { text: string, location?: { file: string, line: number } | null }[] }} */ (err);
    if (code === 'EACCES' || code === 'EROFS') {
      log(`${String(err)}\nThe compiled program is missing or older than its sources, and dist/ cannot be written here: run \`npm run build\` where it can.\n`);
      process.exit(1);
    }
    if (!errors?.length) throw err;
    for (const e of errors) log(`${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}\n`);
    process.stderr.write(`could not compile ${path.relative(process.cwd(), source) || source}\n`);
    process.exit(1);
  }
  // Another process's build may remove the file between our look at the manifest and now.
  if (existsSync(output) || tries === 3) break;
}
process.argv = [process.argv[0], source, ...args];
await import(pathToFileURL(output).href);
