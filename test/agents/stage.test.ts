import { lstat, mkdir, readFile, readdir, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StagingError, stageDataset, type StageDatasetOptions } from '../../agents/stage.js';
import { tempDir } from './helpers.js';

let root: string;
let cleanup: () => Promise<void>;
let sourceDir: string;
let stagingDir: string;

beforeEach(async () => {
  ({ dir: root, cleanup } = await tempDir('stage'));
  sourceDir = path.join(root, 'dataset');
  stagingDir = path.join(root, 'runs', 'r1', 'staged');
  await mkdir(sourceDir);
  for (const name of ['a.jpg', 'b.png', 'c.jpg']) await writeFile(path.join(sourceDir, name), `image ${name}`);
  await writeFile(path.join(sourceDir, 'a.txt'), 'the dataset’s own caption for a');
  await writeFile(path.join(sourceDir, 'b.txt'), 'the dataset’s own caption for b');
});

afterEach(async () => {
  await cleanup();
});

const images = [{ fileName: 'a.jpg' }, { fileName: 'b.png' }, { fileName: 'c.jpg' }];

function options(overrides: Partial<StageDatasetOptions>): StageDatasetOptions {
  return { sourceDir, stagingDir, images, captions: null, captionMode: 'NONE', captionExt: 'txt', ...overrides };
}

async function stagingError(promise: Promise<unknown>): Promise<StagingError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(StagingError);
    return err as StagingError;
  }
  throw new Error('expected a StagingError');
}

describe('stageDataset', () => {
  it('links every image to its absolute source and writes the given captions next to them', async () => {
    const result = await stageDataset(
      options({
        captionMode: 'WRITE',
        captions: [
          { fileName: 'a.jpg', text: 'p3r5on, a man in a red coat' },
          { fileName: 'b.png', text: 'p3r5on, close-up, smiling' },
        ],
      }),
    );
    expect(result).toEqual({ stagingDir, images: 3, captions: 2, copied: 0 });
    for (const name of ['a.jpg', 'b.png', 'c.jpg']) {
      const staged = path.join(stagingDir, name);
      expect((await lstat(staged)).isSymbolicLink()).toBe(true);
      expect(await readlink(staged)).toBe(path.join(sourceDir, name));
      expect(await readFile(staged, 'utf8')).toBe(`image ${name}`);
    }
    expect(await readFile(path.join(stagingDir, 'a.txt'), 'utf8')).toBe('p3r5on, a man in a red coat');
    expect(await readFile(path.join(stagingDir, 'b.txt'), 'utf8')).toBe('p3r5on, close-up, smiling');
    expect((await readdir(stagingDir)).sort()).toEqual(['a.jpg', 'a.txt', 'b.png', 'b.txt', 'c.jpg']);
  });

  it('uses the configured caption extension', async () => {
    await stageDataset(options({ captionMode: 'WRITE', captionExt: '.caption', captions: [{ fileName: 'a.jpg', text: 'x' }] }));
    expect(await readFile(path.join(stagingDir, 'a.caption'), 'utf8')).toBe('x');
  });

  it('links the dataset’s own caption files (FILES) where they exist', async () => {
    const result = await stageDataset(options({ captionMode: 'LINK_FILES' }));
    expect(result.captions).toBe(2);
    expect(await readlink(path.join(stagingDir, 'a.txt'))).toBe(path.join(sourceDir, 'a.txt'));
    expect(await readFile(path.join(stagingDir, 'b.txt'), 'utf8')).toBe('the dataset’s own caption for b');
    expect((await readdir(stagingDir)).sort()).toEqual(['a.jpg', 'a.txt', 'b.png', 'b.txt', 'c.jpg']);
  });

  it('hard-links a stored dataset’s cached caption files (FILES) beside its cached images, under the configured extension', async () => {
    const cache = path.join(root, 'cache');
    await mkdir(cache);
    const cached = async (name: string, text: string) => (await writeFile(path.join(cache, name), text), path.join(cache, name));
    const imageFiles = new Map([
      ['a.jpg', await cached('sha-a', 'image a')],
      ['b.png', await cached('sha-b', 'image b')],
      ['c.jpg', await cached('sha-c', 'image c')],
    ]);
    const captionFiles = new Map([['b.png', await cached('sha-b-txt', 'uploaded caption for b')]]);
    const result = await stageDataset(options({ sourceDir: path.join(root, 'no such folder'), captionMode: 'LINK_FILES', captionExt: 'caption', imageFiles, captionFiles }));
    expect(result).toMatchObject({ images: 3, captions: 1 });
    expect((await readdir(stagingDir)).sort()).toEqual(['a.jpg', 'b.caption', 'b.png', 'c.jpg']);
    expect(await readFile(path.join(stagingDir, 'b.caption'), 'utf8')).toBe('uploaded caption for b');
    const [staged, source] = await Promise.all([lstat(path.join(stagingDir, 'b.caption')), lstat(captionFiles.get('b.png')!)]);
    expect([staged.isSymbolicLink(), staged.ino]).toEqual([false, source.ino]); // a hard link: the cache may drop its name
    // Another strategy kind on the same run folder: the caption goes.
    await stageDataset(options({ sourceDir: path.join(root, 'no such folder'), captionMode: 'NONE', imageFiles, captionFiles }));
    expect((await readdir(stagingDir)).sort()).toEqual(['a.jpg', 'b.png', 'c.jpg']);
  });

  it('stages no caption files with NONE', async () => {
    await stageDataset(options({ captionMode: 'NONE' }));
    expect((await readdir(stagingDir)).sort()).toEqual(['a.jpg', 'b.png', 'c.jpg']);
  });

  it('restaging replaces the previous attempt’s files but keeps folders such as the latent cache', async () => {
    await stageDataset(options({ captionMode: 'WRITE', captions: [{ fileName: 'a.jpg', text: 'old' }, { fileName: 'c.jpg', text: 'old c' }] }));
    await mkdir(path.join(stagingDir, '_latent_cache'));
    await stageDataset(
      options({ images: images.slice(0, 2), captionMode: 'WRITE', captions: [{ fileName: 'a.jpg', text: 'new' }] }),
    );
    expect((await readdir(stagingDir)).sort()).toEqual(['_latent_cache', 'a.jpg', 'a.txt', 'b.png']);
    expect(await readFile(path.join(stagingDir, 'a.txt'), 'utf8')).toBe('new');
  });

  it.each([
    ['an absolute path', '/etc/passwd', /absolute/],
    ['a Windows absolute path', 'C:\\Windows\\win.ini', /absolute/],
    ['a .. segment', '../outside.jpg', /'\.\.'/],
    ['a .. segment in the middle', 'sub/../../outside.jpg', /'\.\.'/],
    ['a backslash .. segment', 'sub\\..\\..\\x.jpg', /'\.\.'/],
    ['a NUL byte', 'a.jpg\0.txt', /NUL/],
    ['an empty name', '', /empty/],
  ])('refuses an image name with %s and writes nothing', async (_label, fileName, message) => {
    const err = await stagingError(stageDataset(options({ images: [...images, { fileName }] })));
    expect(err.code).toBe('UNSAFE_PATH');
    expect(err.message).toMatch(message);
    if (fileName.length > 0) expect(err.message).toContain(JSON.stringify(fileName));
    expect(await readdir(path.dirname(stagingDir)).catch(() => null)).toBeNull();
  });

  it('refuses an unsafe caption file name before writing anything', async () => {
    const err = await stagingError(
      stageDataset(options({ captionMode: 'WRITE', captions: [{ fileName: '../../evil.jpg', text: 'x' }] })),
    );
    expect(err.code).toBe('UNSAFE_PATH');
    expect(err.message).toContain('../../evil.jpg');
    expect(await readdir(path.dirname(stagingDir)).catch(() => null)).toBeNull();
  });

  it('refuses an unsafe caption extension', async () => {
    const err = await stagingError(stageDataset(options({ captionMode: 'WRITE', captionExt: '/../x', captions: [] })));
    expect(err.code).toBe('UNSAFE_PATH');
  });

  it('reports a missing dataset folder as DATASET_MISSING', async () => {
    const missing = path.join(root, 'no-such-dataset');
    const err = await stagingError(stageDataset(options({ sourceDir: missing })));
    expect(err.code).toBe('DATASET_MISSING');
    expect(err.message).toContain(missing);
    expect(await readdir(path.dirname(stagingDir)).catch(() => null)).toBeNull();
  });

  it('reports missing images by name as DATASET_MISSING, before staging any', async () => {
    const err = await stagingError(
      stageDataset(options({ images: [...images, { fileName: 'gone.jpg' }, { fileName: 'also-gone.png' }] })),
    );
    expect(err.code).toBe('DATASET_MISSING');
    expect(err.message).toContain('gone.jpg');
    expect(err.message).toContain('also-gone.png');
    expect(err.message).toContain('2 image(s)');
    expect(await readdir(path.dirname(stagingDir)).catch(() => null)).toBeNull();
  });

  it('refuses two images that would share one caption file with different texts', async () => {
    await writeFile(path.join(sourceDir, 'a.png'), 'image a.png');
    const err = await stagingError(
      stageDataset(
        options({
          images: [{ fileName: 'a.jpg' }, { fileName: 'a.png' }],
          captionMode: 'WRITE',
          captions: [
            { fileName: 'a.jpg', text: 'one' },
            { fileName: 'a.png', text: 'two' },
          ],
        }),
      ),
    );
    expect(err.code).toBe('DUPLICATE_NAME');
    expect(err.message).toContain('a.txt');
  });
});
