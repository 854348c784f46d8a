// @ts-check
// Compiles a TypeScript entry point (src/index.ts, agents/cli.ts, …) with everything it imports,
// npm packages included, into one JavaScript file under dist/, so the server and the agent start
// on plain `node`: loading the sources through tsx, and hundreds of small files out of
// node_modules, cost a start more than opening the database does.
//
// A build is reused until it is stale: a source it was compiled from changed (by content), or the
// lockfiles, tsconfig.json or this script did. Outputs are named by their content and the entry's
// manifest is written last, by rename, so a process starting during a build (or during another
// process's build) runs either the old program or the new one, never half a file or a mix.
//
// The compiled program must find its files where the sources find them (schema/, drizzle/, web/,
// the fake trainer, a package's own .wasm): every module's `import.meta.url` (and `__dirname` in
// CommonJS packages) is its source file's location, not the bundle's.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The package this script belongs to. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const THIS_SCRIPT = fileURLToPath(import.meta.url);
/** Besides the sources, what changes a build: the installed packages and how TypeScript is read. */
const KEY_FILES = ['package-lock.json', 'node_modules/.package-lock.json', 'tsconfig.json'];
// Packages whose native code (or own binaries) a bundle cannot carry; packages built with node-gyp
// are found by themselves (see loadsNativeCode).
const ALWAYS_EXTERNAL = new Set(['esbuild', 'sharp', 'fsevents']);
// Packages the programs import only when a setting asks for them (the AWS SDK, for an S3 artifact
// store): left out of the bundle and loaded from node_modules then, so no other start parses them.
const LOADED_ON_DEMAND = new Set(['@aws-sdk/client-s3', '@aws-sdk/s3-request-presigner']);
/**
 * A converted import() reads `__toESM(require(…))` wherever it stood, and some packages declare a
 * `require` of their own in the function around it (PGlite's Emscripten code: `var require =
 * createRequire(…)`, hoisted, so undefined at the call). Those calls go to the bundle's own
 * require under a name nothing shadows, as long as `require` so the source map's columns hold.
 */
const CALLS_REQUIRE = '__toESM(require(';
const OUTER_REQUIRE = '__req__';
const NATIVE_LOADERS = ['bindings', 'node-gyp-build', 'prebuild-install', '@mapbox/node-pre-gyp', 'node-addon-api'];

/**
 * @typedef {{ key: string, output: string, sources: Record<string, string> }} Manifest
 *   output: the compiled file, relative to the root; sources: sha256 of each file of the package
 *   (outside node_modules) the build read.
 * @typedef {{ root?: string, log?: (line: string) => void }} BuildOptions
 */

const sha256 = (/** @type {string | Uint8Array} */ data) => createHash('sha256').update(data).digest('hex');

/**
 * Where an entry's manifest lives: src/index.ts → dist/src/index.build.json.
 * @param {string} root @param {string} entry
 */
function manifestPath(root, entry) {
  const relative = path.relative(root, path.resolve(root, entry));
  if (relative.startsWith('..') || path.isAbsolute(relative)) throw new Error(`${entry} is outside ${root}`);
  return path.join(root, 'dist', relative.replace(/\.[cm]?tsx?$|\.[cm]?jsx?$/, '') + '.build.json');
}

/** Everything besides the sources that a build depends on, as one hash. @param {string} root */
function buildKey(root) {
  const hash = createHash('sha256').update(readFileSync(THIS_SCRIPT)).update(process.versions.node.split('.')[0]);
  for (const file of KEY_FILES) {
    const full = path.join(root, file);
    hash.update(`\0${file}\0`).update(existsSync(full) ? readFileSync(full) : '');
  }
  return hash.digest('hex');
}

/** @param {string} file @returns {Manifest | null} */
function readManifest(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/**
 * The compiled file of `entry` when it is up to date with its sources, else null.
 * @param {string} entry path of a .ts entry point, relative to the root (or absolute)
 * @param {BuildOptions} [options]
 */
export function freshOutput(entry, { root = ROOT } = {}) {
  const manifest = readManifest(manifestPath(root, entry));
  if (!manifest || manifest.key !== buildKey(root)) return null;
  const output = path.join(root, manifest.output);
  if (!existsSync(output)) return null;
  for (const [source, hash] of Object.entries(manifest.sources)) {
    let bytes;
    try {
      bytes = readFileSync(path.join(root, source));
    } catch {
      return null; // deleted or renamed
    }
    if (sha256(bytes) !== hash) return null;
  }
  return output;
}

/**
 * Compiles `entry` into dist/ and returns the compiled file's path.
 * @param {string} entry
 * @param {BuildOptions} [options]
 */
export async function build(entry, { root = ROOT, log } = {}) {
  const started = performance.now();
  const name = path.relative(root, path.resolve(root, entry));
  const key = buildKey(root);
  const esbuild = await import('esbuild');
  /** @type {Record<string, string>} */
  const sources = {};
  const outdir = path.join(root, 'dist');
  /** @param {'cjs' | 'esm'} format */
  const compile = (format) =>
    esbuild.build({
      absWorkingDir: root,
      entryPoints: [path.resolve(root, entry)],
      outbase: root,
      outdir,
      entryNames: '[dir]/[name]-[hash]',
      bundle: true,
      platform: 'node',
      format,
      // CommonJS, so that run.js can hand V8 the code it compiled last time (see run.js); Node
      // runs a .js file of this package as an ES module, so it is a .cjs.
      outExtension: format === 'cjs' ? { '.js': '.cjs' } : {},
      // import() becomes require(): Node 20 cannot run an import() in code V8 compiled from a
      // code cache (the loader it needs is not restored with the code). The packages imported on
      // demand (sharp, esbuild, the AWS SDK) and Node's own modules are CommonJS or loadable by
      // require(). See CALLS_REQUIRE for the name it is called by.
      ...(format === 'cjs' ? { supported: { 'dynamic-import': false } } : {}),
      target: 'node20',
      // Smaller to read and parse at every start; names stay, so stack traces still read.
      minifyWhitespace: true,
      minifySyntax: true,
      legalComments: 'none',
      // Stack traces name the compiled file; `node --enable-source-maps` maps them back to the sources.
      sourcemap: 'linked',
      sourcesContent: false,
      metafile: true,
      write: false,
      logLevel: 'silent',
      // Every module of the bundle runs in strict mode, as an ES module does, whatever the format.
      // An ES module has no require() of its own for the CommonJS packages' calls to Node's modules.
      banner: {
        js:
          format === 'cjs'
            ? `"use strict";var ${OUTER_REQUIRE}=require;`
            : "import { createRequire as __loralabCreateRequire } from 'node:module'; const require = __loralabCreateRequire(import.meta.url);",
      },
      define: {
        'import.meta.url': '__loralab_module_url',
        'import.meta.filename': '__loralab_module_file',
        'import.meta.dirname': '__loralab_module_dir',
        __filename: '__loralab_module_file',
        __dirname: '__loralab_module_dir',
      },
      plugins: [sourceLocations(root, sources), nativePackagesStayExternal()],
    });
  let result;
  try {
    result = await compile('cjs');
  } catch (err) {
    // A program with top-level await cannot be CommonJS: it stays an ES module (without the code cache).
    const { errors } = /** @type {{ errors?: { text: string }[] }} */ (err);
    if (!errors?.length || !errors.every((e) => /top-level await/i.test(e.text))) throw err;
    result = await compile('esm');
  }
  for (const warning of result.warnings) log?.(`${name}: ${warning.text}\n`);
  const outputFiles = result.outputFiles ?? [];

  // Each output goes to a temporary name first and is renamed into place (atomic); the manifest,
  // written the same way and last, is what makes the new build the one that runs.
  const written = [];
  for (const file of outputFiles) {
    await mkdir(path.dirname(file.path), { recursive: true });
    const tmp = `${file.path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(tmp, file.path.endsWith('.cjs') ? file.text.replaceAll(CALLS_REQUIRE, `__toESM(${OUTER_REQUIRE}(`) : file.contents);
    await rename(tmp, file.path);
    written.push(file.path);
  }
  const output = outputFiles.map((f) => f.path).find((p) => /\.c?js$/.test(p));
  if (!output) throw new Error(`esbuild wrote no JavaScript for ${name}`);
  const manifestFile = manifestPath(root, entry);
  /** @type {Manifest} */
  const manifest = { key, output: path.relative(root, output), sources };
  const tmp = `${manifestFile}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, `${JSON.stringify(manifest, null, 1)}\n`);
  await rename(tmp, manifestFile);
  await removeOlderOutputs(output, written);
  log?.(`compiled ${name} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return output;
}

/**
 * The compiled file of `entry`, built first when missing or stale.
 * @param {string} entry
 * @param {BuildOptions} [options]
 */
export async function ensureBuilt(entry, options = {}) {
  return freshOutput(entry, options) ?? (await build(entry, options));
}

/**
 * Earlier builds of the same entry (dist/src/index-OLDHASH.cjs, its map and its code cache). A
 * process that read the old manifest a moment ago and finds its file gone builds again (see run.js).
 * @param {string} output @param {string[]} keep
 */
async function removeOlderOutputs(output, keep) {
  const dir = path.dirname(output);
  const stem = path.basename(output).replace(/-[A-Z0-9]{8}\.c?js$/, '');
  const older = readdirSync(dir).filter((name) => {
    const match = /^(.*)-[A-Z0-9]{8}\.c?js(\.map|\.v8cache)?$/.exec(name);
    // The code cache of an output built again unchanged (same name) still fits it.
    return match?.[1] === stem && !keep.some((kept) => path.join(dir, name).startsWith(kept));
  });
  await Promise.all(older.map((name) => rm(path.join(dir, name), { force: true })));
}

/**
 * Reads every module itself: records each package source's hash (what the build was made from) and
 * gives each module the constants that `define` above turned its own location into.
 * @param {string} root @param {Record<string, string>} sources
 * @returns {import('esbuild').Plugin}
 */
function sourceLocations(root, sources) {
  const nodeModules = `${path.sep}node_modules${path.sep}`;
  /** @type {Record<string, import('esbuild').Loader>} */
  const loaders = { ts: 'ts', mts: 'ts', cts: 'ts', tsx: 'tsx', js: 'js', mjs: 'js', cjs: 'js', jsx: 'jsx', json: 'json' };
  return {
    name: 'source-locations',
    setup(b) {
      b.onLoad({ filter: /\.(?:[cm]?[jt]sx?|json)$/ }, async (args) => {
        const bytes = await readFile(args.path);
        if (!args.path.includes(nodeModules)) sources[path.relative(root, args.path)] = sha256(bytes);
        const loader = loaders[path.extname(args.path).slice(1)];
        let contents = bytes.toString('utf8');
        if (loader !== 'json' && /import\.meta|__dirname|__filename/.test(contents)) {
          const locals =
            `var __loralab_module_url = ${JSON.stringify(pathToFileURL(args.path).href)}, ` +
            `__loralab_module_file = ${JSON.stringify(args.path)}, __loralab_module_dir = ${JSON.stringify(path.dirname(args.path))};`;
          // After a hashbang, and on the first line so the source map's line numbers still match.
          contents = contents.startsWith('#!') ? contents.replace(/\n/, `\n${locals}`) : locals + contents;
        }
        return { contents, loader };
      });
    },
  };
}

/** @returns {import('esbuild').Plugin} */
function nativePackagesStayExternal() {
  /** @type {Map<string, boolean>} */
  const decided = new Map();
  return {
    name: 'native-packages-stay-external',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path.startsWith('node:')) return undefined;
        const parts = args.path.split('/');
        const name = args.path.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
        const packageDir = findPackage(args.resolveDir, name);
        const key = packageDir ?? name;
        if (!decided.has(key)) decided.set(key, ALWAYS_EXTERNAL.has(name) || LOADED_ON_DEMAND.has(name) || (packageDir != null && loadsNativeCode(packageDir)));
        return decided.get(key) ? { path: args.path, external: true } : undefined;
      });
    },
  };
}

/** @param {string} from @param {string} name @returns {string | null} */
function findPackage(from, name) {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) return null;
  }
}

/** A package built with node-gyp (or fetching a prebuilt addon) loads a .node file at run time. @param {string} packageDir */
function loadsNativeCode(packageDir) {
  if (existsSync(path.join(packageDir, 'binding.gyp'))) return true;
  const pkg = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
  if (pkg.gypfile || pkg.binary) return true;
  const deps = { ...pkg.dependencies, ...pkg.optionalDependencies };
  return NATIVE_LOADERS.some((loader) => loader in deps);
}

// `node scripts/build.js ENTRY…` (npm run build): builds the entries that are stale, in parallel.
if (process.argv[1] && path.resolve(process.argv[1]) === THIS_SCRIPT) {
  const entries = process.argv.slice(2);
  if (!entries.length) {
    process.stderr.write('usage: node scripts/build.js ENTRY.ts…\n');
    process.exit(2);
  }
  const log = (/** @type {string} */ line) => process.stdout.write(line);
  const outputs = await Promise.all(
    entries.map(async (entry) => {
      const fresh = freshOutput(entry);
      if (fresh) log(`${entry} is up to date\n`);
      return fresh ?? build(entry, { log });
    }),
  );
  for (const output of outputs) log(`  ${path.relative(process.cwd(), output)}\n`);
}
