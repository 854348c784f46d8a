import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { createDataset, sha } from './helpers/fixtures.js';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';

const CREATE = `mutation($input: CreateDatasetInput!) {
  createDataset(input: $input) { id name uri description imageCount contentHash createdAt }
}`;

const IMAGES = `query($id: ID!, $first: Int, $after: String) {
  dataset(id: $id) {
    id imageCount
    images(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage endCursor }
      edges { cursor node { id fileName sha256 width height sourceCaption } }
    }
  }
}`;

const datasetCount = async (client: GqlClient) => (await client.ok(`{ datasets { totalCount } }`)).datasets.totalCount as number;

describe.each(databaseKinds)('datasets on %s', (kind) => {
  let t: TestServer;
  let editor: GqlClient;
  beforeAll(async () => {
    t = await startTestServer(kind);
    editor = await t.as('EDITOR');
  });
  afterAll(() => t?.stop());

  const images = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ fileName: `p3r5on_${String(i).padStart(2, '0')}.jpg`, sha256: sha(100 + i), width: 1024, height: 1536 }));

  it('creates a dataset with its images and pages through them in the order given', async () => {
    const given = images(7).reverse();
    given[2] = { ...given[2]!, caption: 'a man in a red coat' } as never;
    const { createDataset } = await editor.ok(CREATE, {
      input: { name: ' p3r5on photos ', uri: '/mnt/datasets/p3r5on', description: 'twenty close-ups', images: given },
    });
    expect(createDataset).toMatchObject({ name: 'p3r5on photos', uri: '/mnt/datasets/p3r5on', description: 'twenty close-ups', imageCount: 7 });
    expect(createDataset.contentHash).toMatch(/^[0-9a-f]{64}$/);

    const seen: any[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const { dataset }: { dataset: any } = await editor.ok(IMAGES, { id: createDataset.id, first: 3, after });
      expect(dataset.images.totalCount).toBe(7);
      expect(dataset.images.pageInfo.hasPreviousPage).toBe(pages > 0);
      seen.push(...dataset.images.edges.map((e: any) => e.node));
      after = dataset.images.pageInfo.hasNextPage ? dataset.images.pageInfo.endCursor : null;
      pages++;
    } while (after);
    expect(pages).toBe(3);
    expect(seen.map((i) => i.fileName)).toEqual(given.map((i) => i.fileName));
    expect(seen[2]).toMatchObject({ sha256: given[2]!.sha256, width: 1024, height: 1536, sourceCaption: 'a man in a red coat' });
    expect(seen[0].sourceCaption).toBeNull();
  });

  it('hashes the content by image names and hashes, whatever their order', async () => {
    const hashOf = async (imgs: unknown[]) => (await editor.ok(CREATE, { input: { name: 'h', uri: 'file:///d', images: imgs } })).createDataset.contentHash;
    const same = await hashOf(images(4));
    expect(await hashOf(images(4).reverse())).toBe(same);
    const changed = images(4);
    changed[1]!.sha256 = sha(999);
    expect(await hashOf(changed)).not.toBe(same);
    const unhashed = images(4);
    unhashed[3]!.sha256 = null as never;
    expect(await hashOf(unhashed)).toBeNull();
  });

  it('lists datasets newest first and reads one by id', async () => {
    const first = await createDataset(editor, 1, { name: 'older' });
    const second = await createDataset(editor, 2, { name: 'newer' });
    const { datasets } = await editor.ok(`{ datasets(first: 2) { totalCount pageInfo { hasNextPage } edges { node { id name imageCount } } } }`);
    expect(datasets.edges.map((e: any) => e.node)).toEqual([
      { id: second, name: 'newer', imageCount: 2 },
      { id: first, name: 'older', imageCount: 1 },
    ]);
    expect(datasets.pageInfo.hasNextPage).toBe(true);
    const { datasets: all } = await editor.ok(`{ datasets(first: 500) { totalCount edges { node { id } } } }`);
    expect(all.edges).toHaveLength(all.totalCount);
    const data = await editor.ok(`query($id: ID!) { dataset(id: $id) { name } unknown: dataset(id: "00000000-0000-4000-8000-000000000000") { id } }`, {
      id: first,
    });
    expect(data).toEqual({ dataset: { name: 'older' }, unknown: null });
  });

  it('accepts a dataset without images', async () => {
    const { createDataset } = await editor.ok(CREATE, { input: { name: 'empty', uri: '/d/empty', images: [] } });
    expect(createDataset).toMatchObject({ imageCount: 0, contentHash: null });
  });

  describe('refuses bad input, naming the field and writing nothing', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['an image name given twice', { images: [{ fileName: 'a.jpg' }, { fileName: 'b.jpg' }, { fileName: 'a.jpg' }] }, 'input.images.2.fileName'],
      ['an image name with a folder', { images: [{ fileName: '../etc/passwd' }] }, 'input.images.0.fileName'],
      ['an empty image name', { images: [{ fileName: 'a.jpg' }, { fileName: '' }] }, 'input.images.1.fileName'],
      ['a sha256 that is not 64 hex digits', { images: [{ fileName: 'a.jpg', sha256: 'abc' }] }, 'input.images.0.sha256'],
      ['a zero width', { images: [{ fileName: 'a.jpg', width: 0 }] }, 'input.images.0.width'],
      ['an empty name', { name: ' ' }, 'input.name'],
      ['a name over 200 characters', { name: 'd'.repeat(201) }, 'input.name'],
      ['a relative uri', { uri: 'datasets/p3r5on' }, 'input.uri'],
    ];
    it.each(cases)('%s', async (_, patch, field) => {
      const before = await datasetCount(editor);
      await editor.fails('BAD_USER_INPUT', CREATE, { input: { name: 'bad', uri: '/d/bad', images: [{ fileName: 'a.jpg' }], ...patch } }, field);
      expect(await datasetCount(editor)).toBe(before);
    });
  });

  it('refuses a cursor it did not make', async () => {
    const id = await createDataset(editor, 2);
    await editor.fails('BAD_USER_INPUT', IMAGES, { id, after: 'garbage' }, 'after');
  });
});
