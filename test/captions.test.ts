import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { createStrategy } from './helpers/fixtures.js';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';

const CREATE = `mutation($input: CreateCaptionStrategyInput!) {
  createCaptionStrategy(input: $input) { id name kind style triggerWord template dropoutRate shuffleTokens description }
}`;

const SET = `mutation($datasetId: ID!, $strategyId: ID!, $captions: [CaptionInput!]!) {
  setCaptions(datasetId: $datasetId, strategyId: $strategyId, captions: $captions)
}`;

const CAPTIONS = `query($id: ID!, $s: ID!) { dataset(id: $id) { images { edges { node { fileName caption(strategyId: $s) } } } } }`;

describe.each(databaseKinds)('caption strategies on %s', (kind) => {
  let t: TestServer;
  let editor: GqlClient;
  let datasetId: string;
  const strategies: Record<string, string> = {};

  /** Caption per file name, as a run with strategy `s` would get it. */
  const captionsOf = async (s: string) => {
    const { dataset } = await editor.ok(CAPTIONS, { id: datasetId, s });
    return Object.fromEntries(dataset.images.edges.map((e: any) => [e.node.fileName, e.node.caption]));
  };

  beforeAll(async () => {
    t = await startTestServer(kind);
    editor = await t.as('EDITOR');
    const { createDataset } = await editor.ok(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }`, {
      input: {
        name: 'p3r5on',
        uri: '/data/p3r5on',
        images: [
          { fileName: 'a.jpg', caption: 'from the .txt file' },
          { fileName: 'b.jpg' },
          { fileName: 'c.jpg' },
        ],
      },
    });
    datasetId = createDataset.id;
    strategies.none = await createStrategy(editor, { name: 'no captions', kind: 'NONE', triggerWord: 'p3r5on' });
    strategies.files = await createStrategy(editor, { name: 'dataset files', kind: 'FILES', triggerWord: null });
    strategies.trigger = await createStrategy(editor, { name: 'trigger only', kind: 'TRIGGER_ONLY', triggerWord: 'p3r5on' });
    strategies.templated = await createStrategy(editor, {
      name: 'descriptive',
      kind: 'STORED',
      style: 'DESCRIPTIVE',
      triggerWord: 'p3r5on',
      template: 'photo of [trigger], {caption}',
    });
    strategies.plain = await createStrategy(editor, { name: 'general', kind: 'STORED', style: 'GENERAL', triggerWord: 'p3r5on' });
  });
  afterAll(() => t?.stop());

  it('creates a strategy with the defaults and lists strategies in creation order', async () => {
    const { createCaptionStrategy } = await editor.ok(CREATE, { input: { name: 'tags', kind: 'STORED' } });
    expect(createCaptionStrategy).toMatchObject({
      name: 'tags',
      kind: 'STORED',
      style: null,
      triggerWord: null,
      template: null,
      dropoutRate: 0.05,
      shuffleTokens: false,
      description: null,
    });
    const { createCaptionStrategy: custom } = await editor.ok(CREATE, {
      input: { name: 'shuffled', kind: 'STORED', style: 'TAGS', dropoutRate: 0.1, shuffleTokens: true, description: 'booru tags' },
    });
    expect(custom).toMatchObject({ style: 'TAGS', dropoutRate: 0.1, shuffleTokens: true, description: 'booru tags' });
    const { captionStrategies } = await editor.ok(`{ captionStrategies { id name } }`);
    expect(captionStrategies.map((s: any) => s.id)).toEqual([...Object.values(strategies), createCaptionStrategy.id, custom.id]);
  });

  describe('refuses a bad strategy, naming the field and writing nothing', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['a dropout rate below 0', { dropoutRate: -0.01 }, 'input.dropoutRate'],
      ['a dropout rate above 1', { dropoutRate: 1.01 }, 'input.dropoutRate'],
      ['TRIGGER_ONLY without a trigger word', { kind: 'TRIGGER_ONLY', triggerWord: null }, 'input.triggerWord'],
      ['a template on a strategy that stores no captions', { kind: 'FILES', template: '{caption}' }, 'input.template'],
      ['a trigger word of two lines', { triggerWord: 'p3r5on\nman' }, 'input.triggerWord'],
      ['an empty name', { name: '' }, 'input.name'],
      ['a name over 200 characters', { name: 's'.repeat(201) }, 'input.name'],
    ];
    it.each(cases)('%s', async (_, patch, field) => {
      const count = async () => (await editor.ok(`{ captionStrategies { id } }`)).captionStrategies.length;
      const before = await count();
      await editor.fails('BAD_USER_INPUT', CREATE, { input: { name: 'bad', kind: 'STORED', triggerWord: 'x', ...patch } }, field);
      expect(await count()).toBe(before);
    });
    it('accepts a dropout rate of exactly 0 and of exactly 1', async () => {
      for (const dropoutRate of [0, 1]) {
        const { createCaptionStrategy } = await editor.ok(CREATE, { input: { name: `dropout ${dropoutRate}`, kind: 'NONE', dropoutRate } });
        expect(createCaptionStrategy.dropoutRate).toBe(dropoutRate);
      }
    });
  });

  it('gives each image the caption a run gets: null for NONE and FILES, the trigger word for TRIGGER_ONLY', async () => {
    expect(await captionsOf(strategies.none!)).toEqual({ 'a.jpg': null, 'b.jpg': null, 'c.jpg': null });
    expect(await captionsOf(strategies.files!)).toEqual({ 'a.jpg': null, 'b.jpg': null, 'c.jpg': null });
    expect(await captionsOf(strategies.trigger!)).toEqual({ 'a.jpg': 'p3r5on', 'b.jpg': 'p3r5on', 'c.jpg': 'p3r5on' });
  });

  it('stores captions for a STORED strategy and applies its template and trigger word', async () => {
    const { setCaptions } = await editor.ok(SET, {
      datasetId,
      strategyId: strategies.templated,
      captions: [
        { fileName: 'a.jpg', text: 'a man in a red coat, city street' },
        { fileName: 'b.jpg', text: 'close-up, soft light' },
      ],
    });
    expect(setCaptions).toBe(2);
    expect(await captionsOf(strategies.templated!)).toEqual({
      'a.jpg': 'photo of p3r5on, a man in a red coat, city street',
      'b.jpg': 'photo of p3r5on, close-up, soft light',
      'c.jpg': null,
    });

    // Without a template the trigger word is put in front, unless the text already has it.
    await editor.ok(SET, {
      datasetId,
      strategyId: strategies.plain,
      captions: [
        { fileName: 'a.jpg', text: 'a man' },
        { fileName: 'b.jpg', text: '[trigger] smiling' },
        { fileName: 'c.jpg', text: 'p3r5on at the beach' },
      ],
    });
    expect(await captionsOf(strategies.plain!)).toEqual({ 'a.jpg': 'p3r5on, a man', 'b.jpg': 'p3r5on smiling', 'c.jpg': 'p3r5on at the beach' });
    // The same image keeps one text per strategy.
    expect((await captionsOf(strategies.templated!))['a.jpg']).toBe('photo of p3r5on, a man in a red coat, city street');
  });

  it('gives the stored text to edit (storedCaption): as written, before template and trigger; null for other kinds and where none is stored', async () => {
    const storedOf = async (s: string) => {
      const { dataset } = await editor.ok(`query($id: ID!, $s: ID!) { dataset(id: $id) { images { edges { node { fileName storedCaption(strategyId: $s) } } } } }`, { id: datasetId, s });
      return Object.fromEntries(dataset.images.edges.map((e: any) => [e.node.fileName, e.node.storedCaption]));
    };
    const edited = await createStrategy(editor, { name: 'edited', kind: 'STORED', triggerWord: 'p3r5on', template: '[trigger], {caption}' });
    expect(await storedOf(edited)).toEqual({ 'a.jpg': null, 'b.jpg': null, 'c.jpg': null });
    await editor.ok(SET, { datasetId, strategyId: edited, captions: [{ fileName: 'b.jpg', text: '[trigger] by a window, ${LIGHT}' }] });
    expect(await storedOf(edited)).toEqual({ 'a.jpg': null, 'b.jpg': '[trigger] by a window, ${LIGHT}', 'c.jpg': null });
    expect((await captionsOf(edited))['b.jpg']).toBe('p3r5on, p3r5on by a window, ${LIGHT}');
    // Another kind stores nothing, and the dataset's own caption is not a strategy's text.
    for (const s of [strategies.files!, strategies.trigger!, strategies.none!]) expect(await storedOf(s)).toEqual({ 'a.jpg': null, 'b.jpg': null, 'c.jpg': null });
    expect(await storedOf('not-an-id')).toEqual({ 'a.jpg': null, 'b.jpg': null, 'c.jpg': null });
  });

  it('gives the text ai-toolkit trains on: [trigger] and [name] filled or left out, ${…} as written', async () => {
    const untriggered = await createStrategy(editor, { name: 'no trigger', kind: 'STORED', triggerWord: null, template: '[trigger], {caption}, ${HOME}' });
    await editor.ok(SET, {
      datasetId,
      strategyId: untriggered,
      captions: [
        { fileName: 'a.jpg', text: 'a man, [name]' },
        { fileName: 'b.jpg', text: 'cost ${PRICE}' },
      ],
    });
    // Caption files are read as they are (no environment pass), but ai-toolkit takes [trigger] and
    // [name] out of a caption when there is no trigger word.
    expect(await captionsOf(untriggered)).toEqual({ 'a.jpg': 'a man, ${HOME}', 'b.jpg': 'cost ${PRICE}, ${HOME}', 'c.jpg': null });
    const triggered = await createStrategy(editor, { name: 'trigger, no template', kind: 'STORED', triggerWord: 'p3r5on' });
    await editor.ok(SET, { datasetId, strategyId: triggered, captions: [{ fileName: 'a.jpg', text: '[name] in a red coat' }] });
    // With one, ai-toolkit reads [name] in a caption as the trigger word, like [trigger].
    expect((await captionsOf(triggered))['a.jpg']).toBe('p3r5on in a red coat');
  });

  it('replaces stored captions on a second call and counts what it wrote', async () => {
    const { setCaptions } = await editor.ok(SET, {
      datasetId,
      strategyId: strategies.templated,
      captions: [
        { fileName: 'b.jpg', text: 'profile, hard light' },
        { fileName: 'c.jpg', text: 'full body' },
      ],
    });
    expect(setCaptions).toBe(2);
    expect(await captionsOf(strategies.templated!)).toEqual({
      'a.jpg': 'photo of p3r5on, a man in a red coat, city street',
      'b.jpg': 'photo of p3r5on, profile, hard light',
      'c.jpg': 'photo of p3r5on, full body',
    });
    expect((await editor.ok(SET, { datasetId, strategyId: strategies.templated, captions: [] })).setCaptions).toBe(0);
  });

  it('refuses captions for an unknown file, a file given twice or a strategy that is not STORED, writing nothing', async () => {
    const before = await captionsOf(strategies.templated!);
    const write = (captions: unknown[], strategyId = strategies.templated) => ({ datasetId, strategyId, captions });
    await editor.fails('BAD_USER_INPUT', SET, write([{ fileName: 'a.jpg', text: 'changed' }, { fileName: 'zzz.jpg', text: 'x' }]), 'captions.1.fileName');
    await editor.fails(
      'BAD_USER_INPUT',
      SET,
      write([{ fileName: 'a.jpg', text: 'one' }, { fileName: 'b.jpg', text: 'x' }, { fileName: 'a.jpg', text: 'two' }]),
      'captions.2.fileName',
    );
    for (const s of [strategies.none, strategies.files, strategies.trigger]) {
      await editor.fails('BAD_USER_INPUT', SET, write([{ fileName: 'a.jpg', text: 'x' }], s), 'strategyId');
    }
    const missing = '00000000-0000-4000-8000-000000000000';
    await editor.fails('NOT_FOUND', SET, { ...write([{ fileName: 'a.jpg', text: 'x' }]), datasetId: missing }, 'datasetId');
    await editor.fails('NOT_FOUND', SET, write([{ fileName: 'a.jpg', text: 'x' }], missing), 'strategyId');
    await editor.fails('BAD_USER_INPUT', SET, write([{ fileName: 'a.jpg', text: 'x' }], 'nope'), 'strategyId');
    expect(await captionsOf(strategies.templated!)).toEqual(before);
  });

  it('compares two strategies image by image', async () => {
    const { dataset } = await editor.ok(
      `query($id: ID!, $a: ID!, $b: ID!) { dataset(id: $id) { captionDiff(strategyA: $a, strategyB: $b) { fileName a b } } }`,
      { id: datasetId, a: strategies.trigger, b: strategies.templated },
    );
    expect(dataset.captionDiff).toEqual([
      { fileName: 'a.jpg', a: 'p3r5on', b: 'photo of p3r5on, a man in a red coat, city street' },
      { fileName: 'b.jpg', a: 'p3r5on', b: 'photo of p3r5on, profile, hard light' },
      { fileName: 'c.jpg', a: 'p3r5on', b: 'photo of p3r5on, full body' },
    ]);
    const { dataset: withNone } = await editor.ok(
      `query($id: ID!, $a: ID!, $b: ID!) { dataset(id: $id) { captionDiff(strategyA: $a, strategyB: $b) { fileName a b } } }`,
      { id: datasetId, a: strategies.none, b: strategies.plain },
    );
    expect(withNone.captionDiff.map((p: any) => p.a)).toEqual([null, null, null]);
    expect(withNone.captionDiff.map((p: any) => p.b)).toEqual(['p3r5on, a man', 'p3r5on smiling', 'p3r5on at the beach']);
  });

  it('answers NOT_FOUND for captionDiff with an unknown strategy', async () => {
    await editor.fails(
      'NOT_FOUND',
      `query($id: ID!, $a: ID!) { dataset(id: $id) { captionDiff(strategyA: $a, strategyB: "00000000-0000-4000-8000-000000000000") { fileName } } }`,
      { id: datasetId, a: strategies.trigger },
      'strategyB',
    );
  });
});
