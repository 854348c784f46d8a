// #/compare: chosen runs' curves overlaid, runs grouped by chosen dimensions (rank × LR as a heat
// table), and the checkpoint × step matrix.
import { gql } from '../api.js';
import { color, OverlayChart } from '../chart.js';
import { dash, errorBox, fmtDuration, fmtLoss, fmtLr, h, replace, statusBadge } from '../dom.js';
import type { View } from '../main.js';

const DIMENSIONS: [string, string][] = [
  ['RANK', 'Rank'],
  ['LEARNING_RATE', 'Learning rate'],
  ['STEPS', 'Steps'],
  ['CAPTION_STRATEGY', 'Caption strategy'],
  ['DATASET', 'Dataset'],
  ['OPTIMIZER', 'Optimizer'],
  ['BATCH_SIZE', 'Batch size'],
  ['BASE_MODEL', 'Base model'],
];

interface GroupKey {
  rank: number | null;
  learningRate: number | null;
  steps: number | null;
  captionStrategy: { id: string; name: string } | null;
  dataset: { id: string; name: string } | null;
  optimizer: string | null;
  batchSize: number | null;
  baseModel: string | null;
}

interface Group {
  key: GroupKey;
  runCount: number;
  succeeded: number;
  meanLastLoss: number | null;
  minLoss: number | null;
  meanEmaLoss: number | null;
  bestMeanRating: number | null;
  meanCostUsd: number | null;
  meanDurationSeconds: number | null;
}

type Metric = 'meanEmaLoss' | 'minLoss' | 'meanLastLoss' | 'bestMeanRating';
const METRICS: [Metric, string][] = [
  ['meanEmaLoss', 'Mean EMA loss'],
  ['minLoss', 'Min loss'],
  ['meanLastLoss', 'Mean last loss'],
  ['bestMeanRating', 'Best rating'],
];

const keyValue = (dim: string, k: GroupKey): string => {
  switch (dim) {
    case 'RANK': return String(k.rank ?? dash);
    case 'LEARNING_RATE': return fmtLr(k.learningRate);
    case 'STEPS': return String(k.steps ?? dash);
    case 'CAPTION_STRATEGY': return k.captionStrategy?.name ?? dash;
    case 'DATASET': return k.dataset?.name ?? dash;
    case 'OPTIMIZER': return k.optimizer ?? dash;
    case 'BATCH_SIZE': return String(k.batchSize ?? dash);
    default: return k.baseModel ?? dash;
  }
};

const fmtMetric = (m: Metric, v: number | null) => (v == null ? dash : m === 'bestMeanRating' ? v.toFixed(2) : fmtLoss(v));

/** Green for the best value of the table, red for the worst (lower loss is better, higher rating is). */
function heat(metric: Metric, v: number | null, lo: number, hi: number) {
  if (v == null || hi === lo) return null;
  let t = (v - lo) / (hi - lo);
  if (metric !== 'bestMeanRating') t = 1 - t;
  return `background: hsl(${Math.round(t * 120)} 65% 85%)`;
}

export const compareView: View = (main, params) => {
  const state = {
    runs: new Set((params.get('runs') ?? '').split(',').filter(Boolean)),
    experiment: params.get('experiment') ?? '',
    group: (params.get('group') ?? 'RANK,LEARNING_RATE').split(',').filter((d) => DIMENSIONS.some(([k]) => k === d)),
    metric: (METRICS.some(([m]) => m === params.get('metric')) ? params.get('metric') : 'meanEmaLoss') as Metric,
    log: params.get('log') === '1',
  };
  let stopped = false;

  const errors = h('div');
  const experimentSelect = h('select', { id: 'c-experiment' }, h('option', { value: '' }, 'All experiments'));
  const picker = h('ul', { class: 'picker', id: 'run-picker', 'aria-label': 'Runs to overlay' });
  const chartBox = h('div', { id: 'compare-chart', role: 'figure', 'aria-label': 'Loss curves of the selected runs' });
  const chart = new OverlayChart(chartBox);
  const legend = h('ul', { class: 'legend' });
  const logToggle = h('input', { type: 'checkbox', id: 'c-log', checked: state.log });
  const dims = h(
    'fieldset',
    { class: 'dims' },
    h('legend', null, 'Group by'),
    DIMENSIONS.map(([k, label]) => h('label', null, h('input', { type: 'checkbox', name: 'dim', value: k, checked: state.group.includes(k) }), ` ${label}`)),
  );
  const metricSelect = h('select', { id: 'c-metric' }, METRICS.map(([m, label]) => h('option', { value: m, selected: state.metric === m }, label)));
  const groupsBox = h('div', { id: 'groups' });
  const heatBox = h('div', { id: 'heat' });
  const matrixBox = h('div', { id: 'matrix' });

  replace(
    main,
    h('div', { class: 'view-head' }, h('h1', null, 'Compare'), h('button', { type: 'button', class: 'secondary', onclick: () => void loadAll() }, 'Refresh')),
    h('div', { class: 'filters' }, h('div', { class: 'field' }, h('label', { for: 'c-experiment' }, 'Experiment'), experimentSelect)),
    errors,
    h(
      'section',
      { 'aria-labelledby': 'h-curves' },
      h('div', { class: 'section-head' }, h('h2', { id: 'h-curves' }, 'Loss curves'), h('label', { class: 'toggle' }, logToggle, ' Log scale')),
      h('div', { class: 'split' }, h('div', { class: 'picker-wrap' }, picker), h('div', { class: 'grow' }, chartBox, legend)),
    ),
    h(
      'section',
      { 'aria-labelledby': 'h-groups' },
      h('h2', { id: 'h-groups' }, 'Grouped'),
      h('div', { class: 'filters' }, dims, h('div', { class: 'field' }, h('label', { for: 'c-metric' }, 'Heat table shows'), metricSelect)),
      heatBox,
      groupsBox,
    ),
    h('section', { 'aria-labelledby': 'h-matrix' }, h('h2', { id: 'h-matrix' }, 'Checkpoints by step'), matrixBox),
  );

  function syncUrl() {
    const q = new URLSearchParams();
    if (state.runs.size) q.set('runs', [...state.runs].join(','));
    if (state.experiment) q.set('experiment', state.experiment);
    q.set('group', state.group.join(','));
    if (state.metric !== 'meanEmaLoss') q.set('metric', state.metric);
    if (state.log) q.set('log', '1');
    history.replaceState(null, '', `#/compare?${q.toString()}`);
  }

  const filter = () => (state.experiment ? { experimentId: state.experiment } : {});

  async function loadPicker() {
    const data = await gql<{ experiments: { edges: { node: { id: string; name: string } }[] }; runs: { edges: { node: { id: string; name: string; status: string } }[] } }>(
      `query ComparePicker($filter: RunFilter) { experiments(first: 500) { edges { node { id name } } } runs(filter: $filter, first: 200) { edges { node { id name status } } } }`,
      { filter: filter() },
    );
    if (stopped) return;
    replace(experimentSelect, h('option', { value: '' }, 'All experiments'), data.experiments.edges.map(({ node }) => h('option', { value: node.id, selected: node.id === state.experiment }, node.name)));
    const runs = data.runs.edges.map((e) => e.node);
    replace(
      picker,
      runs.length
        ? runs.map((r) =>
            h(
              'li',
              null,
              h(
                'label',
                null,
                h('input', {
                  type: 'checkbox',
                  value: r.id,
                  checked: state.runs.has(r.id),
                  onchange: (e: Event) => {
                    if ((e.target as HTMLInputElement).checked) state.runs.add(r.id);
                    else state.runs.delete(r.id);
                    syncUrl();
                    void loadCurves().catch(showError);
                  },
                }),
                ` ${r.name} `,
                statusBadge(r.status),
              ),
            ),
          )
        : h('li', { class: 'muted' }, 'No runs.'),
    );
  }

  async function loadCurves() {
    const ids = [...state.runs];
    if (!ids.length) {
      chart.set([], state.log);
      replace(legend, h('li', { class: 'muted' }, 'Select runs to overlay their curves.'));
      return;
    }
    const { lossCurves } = await gql<{ lossCurves: { run: { id: string; name: string }; buckets: { step: number; mean: number }[] }[] }>(
      `query Curves($ids: [ID!]!) { lossCurves(runIds: $ids, maxPoints: 500) { run { id name } buckets { step mean } } }`,
      { ids },
    );
    if (stopped) return;
    chart.set(lossCurves.map((c) => ({ label: c.run.name, buckets: c.buckets })), state.log);
    replace(legend, lossCurves.map((c, i) => h('li', null, h('span', { class: 'swatch', style: `background:${color(i)}` }), ` ${c.run.name} (${c.buckets.length} buckets)`)));
  }

  async function loadGroups() {
    const groupBy = state.group;
    if (!groupBy.length) {
      replace(groupsBox, h('p', { class: 'muted' }, 'Choose at least one dimension.'));
      heatBox.replaceChildren();
      return;
    }
    const { compareRuns } = await gql<{ compareRuns: Group[] }>(
      `query Groups($filter: RunFilter, $groupBy: [RunDimension!]!) { compareRuns(filter: $filter, groupBy: $groupBy) {
        key { rank learningRate steps captionStrategy { id name } dataset { id name } optimizer batchSize baseModel }
        runCount succeeded meanLastLoss minLoss meanEmaLoss bestMeanRating meanCostUsd meanDurationSeconds } }`,
      { filter: filter(), groupBy },
    );
    if (stopped) return;
    const metric = state.metric;
    const values = compareRuns.map((g) => g[metric]).filter((v): v is number => v != null);
    const [lo, hi] = [Math.min(...values), Math.max(...values)];
    const num = (m: Metric | 'meanCostUsd', g: Group, text: string) => h('td', { class: 'num', 'data-metric': m, 'data-value': g[m] ?? '' }, text);
    replace(
      groupsBox,
      compareRuns.length
        ? h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              { id: 'groups-table' },
              h(
                'thead',
                null,
                h(
                  'tr',
                  null,
                  groupBy.map((d) => h('th', { scope: 'col' }, DIMENSIONS.find(([k]) => k === d)![1])),
                  ['Runs', 'Succeeded', 'Mean last loss', 'Min loss', 'Mean EMA loss', 'Best rating', 'Mean cost', 'Mean duration'].map((t) => h('th', { scope: 'col', class: 'num' }, t)),
                ),
              ),
              h(
                'tbody',
                null,
                compareRuns.map((g) =>
                  h(
                    'tr',
                    null,
                    groupBy.map((d, i) => h(i === 0 ? 'th' : 'td', { scope: i === 0 ? 'row' : null, 'data-dim': d }, keyValue(d, g.key))),
                    h('td', { class: 'num', 'data-metric': 'runCount' }, g.runCount),
                    h('td', { class: 'num', 'data-metric': 'succeeded' }, g.succeeded),
                    num('meanLastLoss', g, fmtLoss(g.meanLastLoss)),
                    num('minLoss', g, fmtLoss(g.minLoss)),
                    num('meanEmaLoss', g, fmtLoss(g.meanEmaLoss)),
                    num('bestMeanRating', g, fmtMetric('bestMeanRating', g.bestMeanRating)),
                    num('meanCostUsd', g, g.meanCostUsd != null ? `$${g.meanCostUsd.toFixed(2)}` : dash),
                    h('td', { class: 'num' }, fmtDuration(g.meanDurationSeconds)),
                  ),
                ),
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'No runs to group.'),
    );

    // Rank × learning rate: the classic sweep read as a grid.
    const isGrid = groupBy.length === 2 && groupBy.includes('RANK') && groupBy.includes('LEARNING_RATE');
    if (!isGrid || !compareRuns.length) {
      replace(heatBox, groupBy.length === 2 || !compareRuns.length ? '' : h('p', { class: 'muted' }, 'Group by exactly rank and learning rate for the heat table.'));
      return;
    }
    const ranks = [...new Set(compareRuns.map((g) => g.key.rank!))].sort((a, b) => a - b);
    const rates = [...new Set(compareRuns.map((g) => g.key.learningRate!))].sort((a, b) => a - b);
    const at = (rank: number, lr: number) => compareRuns.find((g) => g.key.rank === rank && g.key.learningRate === lr);
    replace(
      heatBox,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'heat', id: 'heat-table' },
          h('caption', null, `${METRICS.find(([m]) => m === metric)![1]} by rank (rows) and learning rate (columns)`),
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Rank \\ LR'), rates.map((lr) => h('th', { scope: 'col', class: 'num' }, fmtLr(lr))))),
          h(
            'tbody',
            null,
            ranks.map((rank) =>
              h(
                'tr',
                null,
                h('th', { scope: 'row', class: 'num' }, rank),
                rates.map((lr) => {
                  const g = at(rank, lr);
                  const v = g?.[metric] ?? null;
                  return h(
                    'td',
                    { class: 'num', style: heat(metric, v, lo, hi), 'data-rank': rank, 'data-lr': lr, 'data-value': v ?? '' },
                    g ? fmtMetric(metric, v) : dash,
                    g ? h('span', { class: 'muted small' }, ` (${g.runCount})`) : '',
                  );
                }),
              ),
            ),
          ),
        ),
      ),
    );
  }

  async function loadMatrix() {
    const { checkpointMatrix: m } = await gql<{
      checkpointMatrix: { steps: number[]; rows: { run: { id: string; name: string; bestCheckpoint: { id: string } | null }; cells: ({ step: number; checkpoint: { id: string }; meanRating: number | null; emaLoss: number | null } | null)[] }[] };
    }>(
      `query Matrix($filter: RunFilter) { checkpointMatrix(filter: $filter) { steps rows { run { id name bestCheckpoint { id } } cells { step checkpoint { id } meanRating emaLoss } } } }`,
      { filter: filter() },
    );
    if (stopped) return;
    const rows = m.rows.filter((row) => row.cells.some(Boolean));
    const hidden = m.rows.length - rows.length;
    if (!rows.length) return replace(matrixBox, h('p', { class: 'muted' }, 'No checkpoints yet.'));
    replace(
      matrixBox,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { id: 'matrix-table', class: 'matrix' },
          h('caption', null, 'EMA loss at each checkpoint, with its mean rating (★)'),
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Run'), m.steps.map((s) => h('th', { scope: 'col', class: 'num' }, s)))),
          h(
            'tbody',
            null,
            rows.map((row) =>
              h(
                'tr',
                null,
                h('th', { scope: 'row' }, h('a', { href: `#/runs/${row.run.id}` }, row.run.name)),
                row.cells.map((c) =>
                  h(
                    'td',
                    { class: `num${c && row.run.bestCheckpoint?.id === c.checkpoint.id ? ' best' : ''}` },
                    c ? [fmtLoss(c.emaLoss), c.meanRating != null ? h('span', { class: 'rating' }, ` ★${c.meanRating.toFixed(1)}`) : ''] : '',
                  ),
                ),
              ),
            ),
          ),
        ),
      ),
      hidden ? h('p', { class: 'muted small' }, `${hidden} run${hidden === 1 ? '' : 's'} without checkpoints not shown.`) : '',
    );
  }

  const showError = (err: unknown) => {
    if (!stopped) replace(errors, errorBox(err));
  };

  function loadAll() {
    errors.replaceChildren();
    return Promise.all([loadPicker(), loadCurves(), loadGroups(), loadMatrix()]).catch(showError);
  }

  experimentSelect.addEventListener('change', () => {
    state.experiment = experimentSelect.value;
    syncUrl();
    void Promise.all([loadPicker(), loadGroups(), loadMatrix()]).catch(showError);
  });
  dims.addEventListener('change', () => {
    state.group = [...dims.querySelectorAll<HTMLInputElement>('input:checked')].map((i) => i.value);
    syncUrl();
    void loadGroups().catch(showError);
  });
  metricSelect.addEventListener('change', () => {
    state.metric = metricSelect.value as Metric;
    syncUrl();
    void loadGroups().catch(showError);
  });
  logToggle.addEventListener('change', () => {
    state.log = logToggle.checked;
    syncUrl();
    void loadCurves().catch(showError);
  });

  void loadAll();
  return () => {
    stopped = true;
    chart.destroy();
  };
};
