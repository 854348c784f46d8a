// @ts-check
// `node scripts/run.js ENTRY.ts [args…]`: runs the compiled form of a TypeScript entry point (see
// build.js), compiling it first when it is missing or stale. The program runs in this process, so
// signals reach it directly, and it sees itself started as `node ENTRY.ts args…` (process.argv[1]
// is the entry's own path), so its command-line parsing and "am I the main module" checks behave
// exactly as under tsx. The package it belongs to (where dist/ goes) is the nearest folder above it
// with a package.json.
//
// A compiled program is CommonJS when it can be (build.js): V8 then compiles it from the code it
// compiled on an earlier start (a code cache beside the program, written once per build, best
// effort). Parsing and compiling the few megabytes of the bundle cost a restart about as much as
// the rest of loading it.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { ensureBuilt } from './build.js';

/**
 * When the code cache is written: by then the start has compiled the functions it calls (V8 adds
 * each function compiled so far), or at exit if that comes first (a short command).
 */
const CACHE_AFTER_MS = 10_000;

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
if (output.endsWith('.cjs')) runCommonJs(output);
else await import(pathToFileURL(output).href);

/**
 * Runs a CommonJS file as Node's loader would (the same five variables), compiled with its code
 * cache when there is one V8 accepts; else writes one.
 * @param {string} file
 */
function runCommonJs(file) {
  const cacheFile = `${file}.v8cache`;
  /** @type {Buffer | undefined} */
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  // A hashbang is only allowed first in a file; commented out, the lines stay where they were.
  const code = readFileSync(file, 'utf8').replace(/^#!/, '//');
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${code}\n})`, {
    filename: file,
    cachedData,
  });
  if (!cachedData || script.cachedDataRejected) {
    let saved = false;
    const save = () => {
      if (saved) return;
      saved = true;
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      try {
        writeFileSync(tmp, script.createCachedData());
        renameSync(tmp, cacheFile);
      } catch {
        // dist/ is read-only here (an image's files): every start compiles, as without a cache.
        rmSync(tmp, { force: true });
      }
    };
    setTimeout(save, CACHE_AFTER_MS).unref();
    process.once('exit', save);
  }
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, path.dirname(file));
}
