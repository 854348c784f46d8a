// The dashboard at `/`: web/ bundled by esbuild into web/dist/, rebuilt at start when a source is
// newer than the bundle, and served as static files. Everything it loads comes from this server.
import { mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';
import type { Logger } from 'pino';

export const WEB_ROOT = fileURLToPath(new URL('../web', import.meta.url));
export const WEB_DIST = path.join(WEB_ROOT, 'dist');
/** Written last: its mtime says when the bundle was built. */
const INDEX = path.join(WEB_DIST, 'index.html');

async function newestMtime(entry: string): Promise<number> {
  const info = await stat(entry);
  if (!info.isDirectory()) return info.mtimeMs;
  const names = await readdir(entry);
  const times = await Promise.all(names.map((name) => newestMtime(path.join(entry, name))));
  return Math.max(info.mtimeMs, ...times);
}

/** The bundle is stale when any source (or this builder) changed after index.html was written. */
export async function webIsFresh(): Promise<boolean> {
  const built = await stat(INDEX).then((s) => s.mtimeMs, () => 0);
  if (!built) return false;
  // The page also bundles the API's error codes (src/graphql/error-codes.ts).
  const sources = ['src', 'index.html', 'styles.css', '../src/graphql/error-codes.ts'].map((p) => path.join(WEB_ROOT, p));
  const newest = Math.max(...(await Promise.all([...sources, fileURLToPath(import.meta.url)].map(newestMtime))));
  return built >= newest;
}

export interface WebBuild {
  files: { name: string; bytes: number }[];
  ms: number;
}

/**
 * Bundles web/src/main.ts and web/styles.css. Test files start servers in parallel processes, so
 * each output is written to a temporary name and renamed over the old one (atomic per file), with
 * index.html last: a reader sees either the old bundle or the new one, never half a file.
 */
export async function buildWeb(): Promise<WebBuild> {
  const started = performance.now();
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: { app: path.join(WEB_ROOT, 'src/main.ts'), styles: path.join(WEB_ROOT, 'styles.css') },
    outdir: WEB_DIST,
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2020',
    platform: 'browser',
    sourcemap: false,
    legalComments: 'none',
    write: false,
    logLevel: 'silent',
  });
  const html = await readFile(path.join(WEB_ROOT, 'index.html'));
  const outputs = [...result.outputFiles.map((f) => ({ path: f.path, contents: f.contents })), { path: INDEX, contents: html }];
  await mkdir(WEB_DIST, { recursive: true });
  for (const file of outputs) {
    const tmp = `${file.path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(tmp, file.contents);
    await rename(tmp, file.path);
  }
  return {
    files: outputs.map((f) => ({ name: path.relative(WEB_DIST, f.path), bytes: f.contents.byteLength })),
    ms: performance.now() - started,
  };
}

let ready: Promise<void> | null = null;

/** Builds once per process, and only when the bundle is missing or older than its sources. */
export function ensureWebBuilt(log?: Logger): Promise<void> {
  ready ??= (async () => {
    if (await webIsFresh()) return;
    const build = await buildWeb();
    log?.info({ ms: Math.round(build.ms), files: build.files }, 'built the web page');
  })();
  return ready;
}

/**
 * Routes for `/` and its assets, at once: whether the bundle is fresh (a walk over web/'s sources)
 * and any rebuild go on in the background, and only requests for the page wait for them, so the
 * API (and /healthz) answers without waiting on the page. A failed build keeps the API up: the
 * page then answers 503 and the log says why.
 */
export function webRoutes(log: Logger): Router {
  const router = express.Router();
  const built = ensureWebBuilt(log).then(
    () => true,
    (err: unknown) => {
      ready = null;
      log.error({ err }, 'could not build the web page');
      return false;
    },
  );
  const serve = express.static(WEB_DIST, {
    index: 'index.html',
    // app.js and styles.css keep their names across builds: revalidate instead of caching blindly.
    cacheControl: true,
    maxAge: 0,
  });
  router.use((req, res, next) => {
    // Only reads of the page wait; everything else (GraphQL POSTs) passes at once, as it did.
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    built.then((ok) => {
      if (ok) serve(req, res, next);
      else if (req.path === '/') res.status(503).type('text/plain').send('The web page could not be built; see the server log.');
      else next();
    }, next);
  });
  return router;
}

// `npm run build:web` runs this file: the same build the server does at start, forced.
// No top-level await: the server's compiled bundle, which holds this file, is CommonJS (see
// scripts/build.js).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void buildWeb().then((build) => {
    for (const file of build.files) console.log(`web/dist/${file.name}  ${(file.bytes / 1024).toFixed(1)} kB`);
    console.log(`built in ${Math.round(build.ms)} ms`);
  });
}
