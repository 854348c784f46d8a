// scripts/build.js on a small package of its own (in a temporary folder): what the compiled program
// sees, when a build is reused and when it is not, and builds racing each other.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { build, ensureBuilt, freshOutput } from '../scripts/build.js';

const run = promisify(execFile);
const BUILD_SCRIPT = path.resolve(import.meta.dirname, '../scripts/build.js');
const RUN_SCRIPT = path.resolve(import.meta.dirname, '../scripts/run.js');

const FILES: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'fixture', type: 'module' }),
  'package-lock.json': JSON.stringify({ name: 'fixture', lockfileVersion: 3, packages: {} }),
  'tsconfig.json': JSON.stringify({ compilerOptions: { strict: true } }),
  'data/greeting.txt': 'hello from data/',
  'src/main.ts': `
    import { readFileSync } from 'node:fs';
    import { fileURLToPath } from 'node:url';
    import { version } from './version.js';
    import assetPath from 'cjs-with-asset';
    import { native } from 'pretend-native';
    const greeting: string = readFileSync(new URL('../data/greeting.txt', import.meta.url), 'utf8');
    console.log(JSON.stringify({
      greeting, version, native,
      self: fileURLToPath(import.meta.url), dirname: import.meta.dirname,
      asset: readFileSync(assetPath, 'utf8'),
      argv: process.argv.slice(1),
    }));
  `,
  'src/version.ts': `export const version: number = 1;`,
  // A CommonJS package that finds a file beside itself through __dirname.
  'node_modules/cjs-with-asset/package.json': JSON.stringify({ name: 'cjs-with-asset', main: 'index.js' }),
  'node_modules/cjs-with-asset/index.js': `module.exports = require('node:path').join(__dirname, 'asset.txt');`,
  'node_modules/cjs-with-asset/asset.txt': 'asset beside its package',
  // A package built with node-gyp: it must stay in node_modules, not be bundled.
  'node_modules/pretend-native/package.json': JSON.stringify({ name: 'pretend-native', type: 'module', main: 'index.js', gypfile: true }),
  'node_modules/pretend-native/binding.gyp': '{}',
  'node_modules/pretend-native/index.js': `export const native = import.meta.url;`,
};

let root: string;
const file = (name: string) => path.join(root, name);

beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'loralab-build-'));
  for (const [name, text] of Object.entries(FILES)) {
    mkdirSync(path.dirname(file(name)), { recursive: true });
    writeFileSync(file(name), text);
  }
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

async function runOutput(output: string, args: string[] = []) {
  const { stdout } = await run(process.execPath, [output, ...args], { cwd: root });
  return JSON.parse(stdout);
}

describe('a compiled program', () => {
  it('finds the files beside its sources and packages, and keeps native packages in node_modules', async () => {
    const output = await build('src/main.ts', { root });
    expect(path.relative(root, output)).toMatch(/^dist\/src\/main-\w+\.c?js$/);
    const seen = await runOutput(output, ['--flag']);
    expect(seen).toMatchObject({
      greeting: 'hello from data/',
      version: 1,
      self: file('src/main.ts'),
      dirname: file('src'),
      asset: 'asset beside its package',
    });
    // Loaded from its own folder at run time, so not inside the bundle.
    expect(seen.native).toBe(`file://${file('node_modules/pretend-native/index.js')}`);
    expect(readFileSync(output, 'utf8')).not.toContain('export const native');
  });
});

describe('a build', () => {
  it('is reused while its sources are unchanged, even when their times change', async () => {
    const output = await build('src/main.ts', { root });
    expect(freshOutput('src/main.ts', { root })).toBe(output);
    const later = new Date(Date.now() + 60_000);
    utimesSync(file('src/version.ts'), later, later);
    expect(freshOutput('src/main.ts', { root })).toBe(output);
    expect(await ensureBuilt('src/main.ts', { root })).toBe(output);
  });

  it.each([
    ['a source it imports changes', () => writeFileSync(file('src/version.ts'), 'export const version: number = 2;')],
    ['a source it imports is deleted', () => rmSync(file('src/version.ts'))],
    ['the lockfile changes', () => writeFileSync(file('package-lock.json'), JSON.stringify({ name: 'fixture', lockfileVersion: 3, packages: { '': {} } }))],
    ['the installed packages change', () => writeFileSync(file('node_modules/.package-lock.json'), '{}')],
    ['tsconfig.json changes', () => writeFileSync(file('tsconfig.json'), '{}')],
  ])('is stale when %s', async (_, change) => {
    await build('src/main.ts', { root });
    change();
    expect(freshOutput('src/main.ts', { root })).toBeNull();
  });

  it('is stale when it was made by another version of the build script', async () => {
    await build('src/main.ts', { root });
    const manifestFile = file('dist/src/main.build.json');
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
    // The manifest's key hashes the build script's own text (and Node's major version).
    writeFileSync(manifestFile, JSON.stringify({ ...manifest, key: manifest.key.replace(/^./, (c: string) => (c === '0' ? '1' : '0')) }));
    expect(freshOutput('src/main.ts', { root })).toBeNull();
  });

  it('after a change, runs the new sources and removes the older output', async () => {
    const first = await build('src/main.ts', { root });
    writeFileSync(file('src/version.ts'), 'export const version: number = 2;');
    const second = await ensureBuilt('src/main.ts', { root });
    expect(second).not.toBe(first);
    expect((await runOutput(second)).version).toBe(2);
    expect(readdirSync(file('dist/src')).sort()).toEqual([path.basename(second), `${path.basename(second)}.map`, 'main.build.json'].sort());
  });

  it('racing other builds of the same entry, leaves one whole build and no temporary files', async () => {
    writeFileSync(file('src/version.ts'), 'export const version: number = 3;');
    const script = `const { build } = await import(${JSON.stringify(BUILD_SCRIPT)}); await build('src/main.ts', { root: ${JSON.stringify(root)} });`;
    await Promise.all(Array.from({ length: 4 }, () => run(process.execPath, ['--input-type=module', '-e', script], { cwd: root })));
    const output = freshOutput('src/main.ts', { root });
    expect(output).not.toBeNull();
    expect((await runOutput(output!)).version).toBe(3);
    expect(readdirSync(file('dist/src')).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });
});

describe('scripts/run.js', () => {
  const runEntry = (...args: string[]) => run(process.execPath, [RUN_SCRIPT, file('src/main.ts'), ...args], { cwd: root });

  it('runs the program as if started from its source file, compiling it only when it is missing or stale', async () => {
    const first = await runEntry('--flag', 'value');
    expect(JSON.parse(first.stdout)).toMatchObject({ version: 1, argv: [file('src/main.ts'), '--flag', 'value'] });
    expect(first.stderr).toMatch(/^compiled src\/main\.ts in [\d.]+ s\n$/);

    const again = await runEntry();
    expect(JSON.parse(again.stdout)).toMatchObject({ version: 1, argv: [file('src/main.ts')] });
    expect(again.stderr).toBe('');

    writeFileSync(file('src/version.ts'), 'export const version: number = 2;');
    const changed = await runEntry();
    expect(JSON.parse(changed.stdout).version).toBe(2);
    expect(changed.stderr).toContain('compiled src/main.ts');
  });

  it('starts again from the code cache the first start wrote, and from the sources when the cache is bad', async () => {
    // A function with a require of its own (as PGlite's Emscripten code has) around an import().
    writeFileSync(
      file('src/cached.ts'),
      `async function probe() { var require: unknown = null; const { join } = await import('node:path'); return [join('a', 'b'), require]; }
       void probe().then((seen) => console.log(JSON.stringify(seen)));`,
    );
    const start = () => run(process.execPath, [RUN_SCRIPT, file('src/cached.ts')], { cwd: root });
    expect(JSON.parse((await start()).stdout)).toEqual(['a/b', null]);
    const caches = () => readdirSync(file('dist/src')).filter((name) => name.endsWith('.v8cache'));
    expect(caches()).toEqual([expect.stringMatching(/^cached-\w+\.cjs\.v8cache$/)]);
    const fromCache = await start();
    expect(JSON.parse(fromCache.stdout)).toEqual(['a/b', null]);
    expect(fromCache.stderr).toBe('');
    writeFileSync(file(`dist/src/${caches()[0]}`), 'not a code cache');
    expect(JSON.parse((await start()).stdout)).toEqual(['a/b', null]);
  });

  it("stops with the compiler's message when the sources do not compile", async () => {
    writeFileSync(file('src/version.ts'), 'export const version: number = ;');
    const failed = await runEntry().then(
      () => null,
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    expect(failed).toMatchObject({ code: 1, stdout: '' });
    expect(failed!.stderr).toContain('src/version.ts:1: Unexpected ";"');
    expect(failed!.stderr).toContain('could not compile');
  });
});
