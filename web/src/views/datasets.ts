// #/datasets: the datasets; #/datasets/:id: one dataset's images (thumbnails opening the full image)
// beside their captions as a chosen strategy gives them to a run, and two strategies side by side.
// With a STORED strategy chosen, an EDITOR edits each image's stored caption beside the image and
// sees, under it, the caption as a run gets it (template and trigger applied by the server).
import { ApiError, canEdit, gql, graphql, whenRoleKnown } from '../api.js';
import { dash, errorBox, fmtTime, h, replace } from '../dom.js';
import type { View } from '../main.js';

const DATASETS = graphql(`
  query Datasets { datasets(first: 200) { totalCount edges { node { id name uri imageCount storedImageCount stored createdAt description } } } }
`);
const DATASET = graphql(`
  query Dataset($id: ID!, $strategy: ID!, $withCaption: Boolean!) {
    dataset(id: $id) {
      id name uri imageCount storedImageCount stored description createdAt
      images(first: 500) {
        totalCount
        edges { node { id fileName width height url thumbnailUrl sourceCaption caption(strategyId: $strategy) @include(if: $withCaption) storedCaption(strategyId: $strategy) @include(if: $withCaption) } }
      }
    }
    captionStrategies { id name kind triggerWord template }
  }
`);
const SET_CAPTIONS = graphql(`mutation SaveCaption($d: ID!, $s: ID!, $c: [CaptionInput!]!) { setCaptions(datasetId: $d, strategyId: $s, captions: $c) }`);
const DIFF = graphql(`query CaptionDiff($id: ID!, $a: ID!, $b: ID!) { dataset(id: $id) { id captionDiff(strategyA: $a, strategyB: $b) { fileName a b } } }`);

export const datasetsView: View = (main) => {
  let stopped = false;
  const body = h('div');
  replace(main, h('div', { class: 'view-head' }, h('h1', null, 'Datasets')), body);
  gql(DATASETS)
    .then(({ datasets }) => {
      if (stopped) return;
      if (!datasets.edges.length) return replace(body, h('p', { class: 'muted' }, 'No datasets yet.'));
      replace(
        body,
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { id: 'datasets-table' },
            h('thead', null, h('tr', null, ['Dataset', 'Images', 'Stored', 'Created'].map((t, i) => h('th', { scope: 'col', class: i === 1 ? 'num' : null }, t)))),
            h(
              'tbody',
              null,
              datasets.edges.map(({ node: d }) =>
                h(
                  'tr',
                  { 'data-dataset-id': d.id },
                  h('th', { scope: 'row' }, h('a', { href: `#/datasets/${d.id}` }, d.name), h('div', { class: 'muted small' }, d.uri)),
                  h('td', { class: 'num' }, d.imageCount),
                  h('td', null, d.stored ? 'in loralab' : d.uri.startsWith('loralab://') ? `${d.storedImageCount} of ${d.imageCount} uploaded` : 'on the agents'),
                  h('td', null, fmtTime(d.createdAt)),
                ),
              ),
            ),
          ),
        ),
      );
    })
    .catch((err) => !stopped && replace(body, errorBox(err)));
  return () => {
    stopped = true;
  };
};

export const datasetView: View = (main, params, id) => {
  const datasetId = id!;
  let stopped = false;
  let strategy = params.get('strategy') ?? '';
  const title = h('h1', null, 'Dataset');
  const info = h('p', { class: 'muted' });
  const errors = h('div');
  const strategySelect = h('select', { id: 'd-strategy' }, h('option', { value: '' }, 'Source captions'));
  const strategyInfo = h('p', { class: 'muted small', id: 'd-strategy-info' });
  const diffA = h('select', { id: 'd-diff-a' });
  const diffB = h('select', { id: 'd-diff-b' });
  const grid = h('ul', { class: 'image-grid', id: 'dataset-images' });
  const diffBox = h('div', { id: 'caption-diff' });
  const full = h('dialog', { class: 'viewer', id: 'image-viewer' });

  replace(
    main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/datasets' }, 'Datasets'), ' / ', h('span', { id: 'crumb-dataset' })),
    h('div', { class: 'view-head' }, title),
    info,
    errors,
    h(
      'section',
      { 'aria-labelledby': 'h-images' },
      h('div', { class: 'section-head' }, h('h2', { id: 'h-images' }, 'Images'), h('label', { class: 'toggle', for: 'd-strategy' }, 'Captions as ', strategySelect)),
      strategyInfo,
      grid,
    ),
    h(
      'section',
      { 'aria-labelledby': 'h-diff' },
      h('h2', { id: 'h-diff' }, 'Two caption strategies side by side'),
      h('div', { class: 'filters' }, h('div', { class: 'field' }, h('label', { for: 'd-diff-a' }, 'A'), diffA), h('div', { class: 'field' }, h('label', { for: 'd-diff-b' }, 'B'), diffB)),
      diffBox,
    ),
    full,
  );

  function openImage(url: string, name: string) {
    replace(full, h('div', { class: 'viewer-head' }, h('h2', { class: 'grow' }, name), h('button', { type: 'button', class: 'small', onclick: () => full.close() }, 'Close')), h('div', { class: 'viewer-image' }, h('img', { src: url, alt: name })));
    full.showModal();
  }

  type Data = Awaited<ReturnType<typeof fetchDataset>>;
  type Image = NonNullable<Data['dataset']>['images']['edges'][number]['node'];
  const fetchDataset = () => gql(DATASET, { id: datasetId, strategy: strategy || '0', withCaption: !!strategy });
  /** The editor's parts of each image, by file name, so a save refreshes them in place (other unsaved edits stay). */
  const editors = new Map<string, { text: HTMLTextAreaElement; asRun: HTMLElement; status: HTMLElement }>();

  async function load() {
    try {
      const [data] = await Promise.all([fetchDataset(), whenRoleKnown()]);
      if (stopped) return;
      const d = data.dataset;
      if (!d) return replace(main, h('h1', null, 'Dataset not found'));
      title.textContent = d.name;
      document.getElementById('crumb-dataset')!.textContent = d.name;
      info.textContent = `${d.imageCount} images · ${d.stored ? 'stored in loralab' : d.uri.startsWith('loralab://') ? `${d.storedImageCount} of ${d.imageCount} uploaded` : d.uri}${d.description ? ` · ${d.description}` : ''}`;
      const options = (selected: string) => data.captionStrategies.map((s) => h('option', { value: s.id, selected: s.id === selected }, `${s.name} (${s.kind.toLowerCase()})`));
      replace(strategySelect, h('option', { value: '' }, 'Source captions'), options(strategy));
      if (!diffA.options.length && data.captionStrategies.length) {
        replace(diffA, options(data.captionStrategies[0]!.id));
        replace(diffB, options(data.captionStrategies[1]?.id ?? data.captionStrategies[0]!.id));
        void loadDiff();
      }
      if (d.images.totalCount > d.images.edges.length) info.append(` · the first ${d.images.edges.length} of ${d.images.totalCount} images shown`);
      const chosen = data.captionStrategies.find((s) => s.id === strategy) ?? null;
      const editing = chosen?.kind === 'STORED' && canEdit();
      replace(
        strategyInfo,
        !chosen
          ? 'The captions the dataset was created with.'
          : [
              chosen.kind === 'STORED' ? `Stored captions${chosen.template ? `, in the template “${chosen.template}”` : ''}` : chosen.kind === 'FILES' ? 'The dataset’s own caption files, as they are' : chosen.kind === 'TRIGGER_ONLY' ? 'The trigger word alone' : 'No captions',
              chosen.triggerWord ? ` · trigger word “${chosen.triggerWord}”` : '',
              editing ? ' · edit a caption and save it; under it, the caption as a run gets it.' : '',
            ],
      );
      editors.clear();
      grid.classList.toggle('editing', editing);
      replace(
        grid,
        d.images.edges.map(({ node: img }) => {
          const thumb = img.thumbnailUrl
            ? h('button', { type: 'button', class: 'thumb', 'aria-label': `Open ${img.fileName}`, onclick: () => openImage(img.url!, img.fileName) }, h('img', { src: img.thumbnailUrl, alt: '', loading: 'lazy', decoding: 'async' }))
            : h('div', { class: 'no-image muted small' }, img.url ? 'no preview' : 'not uploaded');
          const name = h('div', { class: 'small' }, h('strong', null, img.fileName), img.width ? h('span', { class: 'muted' }, ` ${img.width}×${img.height}`) : '');
          if (editing) return h('li', { 'data-file': img.fileName }, thumb, captionEditor(img, name));
          const caption = strategy ? img.caption : img.sourceCaption;
          return h('li', { 'data-file': img.fileName }, thumb, name, h('p', { class: 'caption small' }, caption ?? h('span', { class: 'muted' }, strategy ? 'no caption with this strategy' : 'no caption')));
        }),
      );
    } catch (err) {
      if (!stopped) replace(errors, errorBox(err));
    }
  }

  /** An image's stored caption to edit, its Save, the API's error next to it, and the caption as a run gets it. */
  function captionEditor(img: Image, name: HTMLElement) {
    const id = `cap-${img.id}`;
    const text = h('textarea', { id, rows: 3, 'aria-describedby': `${id}-error ${id}-run` }) as HTMLTextAreaElement;
    text.value = img.storedCaption ?? '';
    const error = h('span', { class: 'field-error', id: `${id}-error`, role: 'alert' });
    const status = h('span', { class: 'muted small', role: 'status' });
    const asRun = h('span', { class: 'as-run' });
    const saveButton = h('button', { type: 'button', class: 'small', 'aria-label': `Save caption of ${img.fileName}` }, 'Save');
    editors.set(img.fileName, { text, asRun, status });
    showAsRun(asRun, img.caption);

    async function save() {
      error.textContent = '';
      text.removeAttribute('aria-invalid');
      status.textContent = 'Saving…';
      saveButton.disabled = true;
      try {
        await gql(SET_CAPTIONS, { d: datasetId, s: strategy, c: [{ fileName: img.fileName, text: text.value }] });
        if (stopped) return;
        status.textContent = 'Saved';
        await refresh(img.fileName);
      } catch (err) {
        status.textContent = '';
        text.setAttribute('aria-invalid', 'true');
        // "captions.0.text: must be …" reads "must be …" next to the caption.
        const message = err instanceof Error ? err.message : String(err);
        error.textContent = err instanceof ApiError && err.field && message.startsWith(`${err.field}: `) ? message.slice(err.field.length + 2) : message;
      } finally {
        saveButton.disabled = false;
      }
    }
    saveButton.addEventListener('click', () => void save());
    text.addEventListener('input', () => (status.textContent = 'Not saved'));
    text.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        void save();
      }
    });
    return h(
      'div',
      { class: 'caption-edit' },
      name,
      h('label', { for: id, class: 'small muted' }, 'Stored caption'),
      text,
      error,
      h('div', { class: 'caption-actions' }, saveButton, status),
      h('p', { class: 'caption small', id: `${id}-run` }, h('span', { class: 'muted' }, 'As a run gets it: '), asRun),
    );
  }

  function showAsRun(el: HTMLElement, caption: string | null | undefined) {
    replace(el, caption ?? h('span', { class: 'muted' }, 'no caption (stored text missing)'));
  }

  /** After a save: what the server now stores and gives runs, for every image shown; the saved one's text too. */
  async function refresh(saved: string) {
    const data = await fetchDataset();
    if (stopped || !data.dataset) return;
    for (const { node: img } of data.dataset.images.edges) {
      const editor = editors.get(img.fileName);
      if (!editor) continue;
      showAsRun(editor.asRun, img.caption);
      if (img.fileName === saved) editor.text.value = img.storedCaption ?? '';
    }
    void loadDiff();
  }

  async function loadDiff() {
    if (!diffA.value || !diffB.value) return;
    try {
      const { dataset } = await gql(DIFF, { id: datasetId, a: diffA.value, b: diffB.value });
      if (stopped || !dataset) return;
      replace(
        diffBox,
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { id: 'diff-table', class: 'wrap' },
            h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Image'), h('th', { scope: 'col' }, diffA.selectedOptions[0]?.textContent ?? 'A'), h('th', { scope: 'col' }, diffB.selectedOptions[0]?.textContent ?? 'B'))),
            h('tbody', null, dataset.captionDiff.map((p) => h('tr', { class: p.a === p.b ? 'same' : null }, h('th', { scope: 'row' }, p.fileName), h('td', null, p.a ?? dash), h('td', null, p.b ?? dash)))),
          ),
        ),
      );
    } catch (err) {
      if (!stopped) replace(diffBox, errorBox(err));
    }
  }

  strategySelect.addEventListener('change', () => {
    strategy = strategySelect.value;
    history.replaceState(null, '', `#/datasets/${datasetId}${strategy ? `?strategy=${strategy}` : ''}`);
    void load();
  });
  diffA.addEventListener('change', () => void loadDiff());
  diffB.addEventListener('change', () => void loadDiff());
  void load();
  return () => {
    stopped = true;
    full.close();
  };
};
