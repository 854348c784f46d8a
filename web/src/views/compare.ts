// #/compare: chosen runs' curves overlaid, runs grouped by chosen dimensions (rank × LR as a heat
// table), the checkpoint × step matrix with a thumbnail per cell (opening the viewer), and A/B of
// 2–4 runs' samples. The tables follow the picked runs, else the sweep, else the experiment; the
// view refreshes itself as the runs shown change.
import { gql, graphql } from '../api.js';
import { color, OverlayChart } from '../chart.js';
import { debounce, dash, errorBox, fmtDuration, fmtLoss, fmtLr, fmtTime, h, replace, statusBadge } from '../dom.js';
import type { CompareGroupsQuery, RunDimension, RunFilter } from '../gql/graphql.js';
import { onReconnect, subscribe, type Subscription } from '../live.js';
import type { View } from '../main.js';
import { downloadLink, type Checkpoint } from '../rating.js';
import { closeViewer, openViewer, promptText, sampleAt, samplerPrompts, type Pane } from '../viewer.js';

const PICKER = graphql(`
  query ComparePicker($filter: RunFilter, $all: RunFilter) {
    experiments(first: 500) { edges { node { id name } } }
    runs(filter: $filter, first: 200) { edges { node { id name status sweep { id } } } }
    sweeps: runs(filter: $all, first: 500) { edges { node { id sweep { id createdAt } } } }
  }
`);
const CURVES = graphql(`query Curves($ids: [ID!]!) { lossCurves(runIds: $ids, maxPoints: 500) { run { id name } buckets { step mean } } }`);
const GROUPS = graphql(`
  query CompareGroups($filter: RunFilter, $groupBy: [RunDimension!]!) {
    compareRuns(filter: $filter, groupBy: $groupBy) {
      key { rank learningRate steps captionStrategy { id name } dataset { id name } optimizer batchSize baseModel }
      runCount succeeded meanLastLoss minLoss meanEmaLoss bestMeanRating meanCostUsd meanDurationSeconds
    }
  }
`);
const MATRIX = graphql(`
  query Matrix($filter: RunFilter) {
    checkpointMatrix(filter: $filter) {
      steps
      rows {
        run { id name experiment { id } bestCheckpoint { id } captionStrategy { id triggerWord } hyperparameters { samplePrompts } checkpoints { ...CheckpointFields } samples { ...SampleFields } }
        cells { step checkpoint { id } meanRating emaLoss }
      }
    }
  }
`);
const SWEEP = graphql(`
  query SweepBest($id: ID!) {
    sweep(id: $id) {
      id queued running done createdAt
      byLoss: bestRun(by: EMA_LOSS) { id name lossSummary { emaLoss } bestCheckpoint { ...CheckpointFields } }
      byRating: bestRun(by: BEST_RATING) { id name bestCheckpoint { ...CheckpointFields } }
    }
  }
`);
const RUN_CHANGED = graphql(`subscription CompareLive($id: ID!) { runUpdated(experimentId: $id) { id status lossSummary { lastStep } } }`);

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

type Group = CompareGroupsQuery['compareRuns'][number];
type GroupKey = Group['key'];

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
    sweep: params.get('sweep') ?? '',
    group: (params.get('group') ?? 'RANK,LEARNING_RATE').split(',').filter((d) => DIMENSIONS.some(([k]) => k === d)) as RunDimension[],
    metric: (METRICS.some(([m]) => m === params.get('metric')) ? params.get('metric') : 'meanEmaLoss') as Metric,
    log: params.get('log') === '1',
    smooth: Math.min(0.99, Math.max(0, Number(params.get('smooth') ?? 0) || 0)),
    prompt: Number(params.get('prompt') ?? 0) || 0,
  };
  let stopped = false;
  let panes: Pane[] = [];

  const errors = h('div');
  const experimentSelect = h('select', { id: 'c-experiment' }, h('option', { value: '' }, 'All experiments'));
  const sweepSelect = h('select', { id: 'c-sweep' }, h('option', { value: '' }, 'Any sweep'));
  const picker = h('ul', { class: 'picker', id: 'run-picker', 'aria-label': 'Runs to compare' });
  const scope = h('p', { class: 'muted small', id: 'compare-scope', 'aria-live': 'polite' });
  const chartBox = h('div', { id: 'compare-chart', role: 'figure', 'aria-label': 'Loss curves of the selected runs' });
  const chart = new OverlayChart(chartBox);
  const legend = h('ul', { class: 'legend' });
  const logToggle = h('input', { type: 'checkbox', id: 'c-log', checked: state.log });
  const smoothing = h('input', { type: 'range', id: 'c-smooth', min: 0, max: 0.99, step: 0.01, value: state.smooth, 'aria-describedby': 'c-smooth-value' });
  const smoothValue = h('output', { id: 'c-smooth-value', for: 'c-smooth' }, state.smooth.toFixed(2));
  const dims = h(
    'fieldset',
    { class: 'dims' },
    h('legend', null, 'Group by'),
    DIMENSIONS.map(([k, label]) => h('label', null, h('input', { type: 'checkbox', name: 'dim', value: k, checked: state.group.includes(k as RunDimension) }), ` ${label}`)),
  );
  const metricSelect = h('select', { id: 'c-metric' }, METRICS.map(([m, label]) => h('option', { value: m, selected: state.metric === m }, label)));
  const groupsBox = h('div', { id: 'groups' });
  const heatBox = h('div', { id: 'heat' });
  const sweepBox = h('div', { id: 'sweep-best' });
  const matrixBox = h('div', { id: 'matrix' });
  const promptSelect = h('select', { id: 'c-prompt' });
  const abButton = h('button', { type: 'button', id: 'ab-open', onclick: () => openAb() }, 'A/B samples');
  const abNote = h('span', { class: 'muted small', id: 'ab-note' });

  replace(
    main,
    h('div', { class: 'view-head' }, h('h1', null, 'Compare'), h('button', { type: 'button', class: 'secondary', onclick: () => void loadAll() }, 'Refresh')),
    h(
      'div',
      { class: 'filters' },
      h('div', { class: 'field' }, h('label', { for: 'c-experiment' }, 'Experiment'), experimentSelect),
      h('div', { class: 'field' }, h('label', { for: 'c-sweep' }, 'Sweep'), sweepSelect),
    ),
    errors,
    sweepBox,
    h(
      'section',
      { 'aria-labelledby': 'h-curves' },
      h(
        'div',
        { class: 'section-head' },
        h('h2', { id: 'h-curves' }, 'Loss curves'),
        h('div', { class: 'actions' }, h('label', { class: 'toggle', for: 'c-smooth' }, 'Smoothing ', smoothing, smoothValue), h('label', { class: 'toggle' }, logToggle, ' Log scale')),
      ),
      h('div', { class: 'split' }, h('div', { class: 'picker-wrap' }, picker), h('div', { class: 'grow' }, chartBox, legend)),
      scope,
    ),
    h(
      'section',
      { 'aria-labelledby': 'h-groups' },
      h('h2', { id: 'h-groups' }, 'Grouped'),
      h('div', { class: 'filters' }, dims, h('div', { class: 'field' }, h('label', { for: 'c-metric' }, 'Heat table shows'), metricSelect)),
      heatBox,
      groupsBox,
    ),
    h(
      'section',
      { 'aria-labelledby': 'h-matrix' },
      h('div', { class: 'section-head' }, h('h2', { id: 'h-matrix' }, 'Checkpoints by step'), h('div', { class: 'actions' }, h('label', { for: 'c-prompt', class: 'toggle' }, 'Thumbnails of ', promptSelect), abButton, abNote)),
      matrixBox,
    ),
  );

  function syncUrl() {
    const q = new URLSearchParams();
    if (state.runs.size) q.set('runs', [...state.runs].join(','));
    if (state.experiment) q.set('experiment', state.experiment);
    if (state.sweep) q.set('sweep', state.sweep);
    q.set('group', state.group.join(','));
    if (state.metric !== 'meanEmaLoss') q.set('metric', state.metric);
    if (state.log) q.set('log', '1');
    if (state.smooth) q.set('smooth', String(state.smooth));
    if (state.prompt) q.set('prompt', String(state.prompt));
    history.replaceState(null, '', `#/compare?${q.toString()}`);
  }

  const listFilter = (): RunFilter => ({ ...(state.experiment ? { experimentId: state.experiment } : {}), ...(state.sweep ? { sweepId: state.sweep } : {}) });
  /** The tables show the picked runs; with none picked, the sweep's or the experiment's. */
  const filter = (): RunFilter => (state.runs.size ? { ids: [...state.runs] } : listFilter());

  function describeScope() {
    scope.textContent = state.runs.size
      ? `Tables below: the ${state.runs.size} picked run${state.runs.size === 1 ? '' : 's'}.`
      : `Tables below: every run of ${state.sweep ? 'the sweep' : state.experiment ? 'the experiment' : 'every experiment'}. Pick runs to narrow them.`;
  }

  let experimentIds: string[] = [];
  async function loadPicker() {
    const data = await gql(PICKER, { filter: listFilter(), all: state.experiment ? { experimentId: state.experiment } : {} });
    if (stopped) return;
    experimentIds = data.experiments.edges.map(({ node }) => node.id);
    follow();
    replace(experimentSelect, h('option', { value: '' }, 'All experiments'), data.experiments.edges.map(({ node }) => h('option', { value: node.id, selected: node.id === state.experiment }, node.name)));
    const sweeps = new Map<string, { createdAt: string; runs: number }>();
    for (const { node } of data.sweeps.edges) if (node.sweep) sweeps.set(node.sweep.id, { createdAt: node.sweep.createdAt, runs: (sweeps.get(node.sweep.id)?.runs ?? 0) + 1 });
    replace(
      sweepSelect,
      h('option', { value: '' }, 'Any sweep'),
      [...sweeps].sort((a, b) => Date.parse(b[1].createdAt) - Date.parse(a[1].createdAt)).map(([id, sw]) => h('option', { value: id, selected: id === state.sweep }, `${fmtTime(sw.createdAt)} (${sw.runs} runs)`)),
    );
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
                    describeScope();
                    void Promise.all([loadCurves(), loadGroups(), loadMatrix()]).catch(showError);
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

  /** An exponential moving average over the bucket means, as TensorBoard's smoothing slider does (debiased). */
  const smooth = (buckets: { step: number; mean: number }[]) => {
    if (!state.smooth) return buckets;
    let ema = 0;
    return buckets.map((b, i) => {
      ema = state.smooth * ema + (1 - state.smooth) * b.mean;
      return { step: b.step, mean: ema / (1 - Math.pow(state.smooth, i + 1)) };
    });
  };

  let curves: { run: { id: string; name: string }; buckets: { step: number; mean: number }[] }[] = [];
  function drawCurves() {
    chart.set(curves.map((c) => ({ label: c.run.name, buckets: smooth(c.buckets) })), state.log);
    replace(legend, curves.length ? curves.map((c, i) => h('li', null, h('span', { class: 'swatch', style: `background:${color(i)}` }), ` ${c.run.name} (${c.buckets.length} buckets)`)) : h('li', { class: 'muted' }, 'Select runs to overlay their curves.'));
  }

  async function loadCurves() {
    const ids = [...state.runs];
    if (!ids.length) {
      curves = [];
      drawCurves();
      return;
    }
    const { lossCurves } = await gql(CURVES, { ids });
    if (stopped) return;
    curves = lossCurves;
    drawCurves();
  }

  async function loadSweep() {
    if (!state.sweep) return sweepBox.replaceChildren();
    const { sweep } = await gql(SWEEP, { id: state.sweep });
    if (stopped || !sweep) return;
    const best = (label: string, r: { id: string; name: string; bestCheckpoint: Checkpoint | null } | null) =>
      r
        ? h('li', null, `${label}: `, h('a', { href: `#/runs/${r.id}` }, r.name), r.bestCheckpoint ? [' · step ', String(r.bestCheckpoint.step), ' ', downloadLink(r.bestCheckpoint, 'Download best')] : h('span', { class: 'muted' }, ' (no checkpoint yet)'))
        : h('li', { class: 'muted' }, `${label}: none yet`);
    replace(
      sweepBox,
      h(
        'section',
        { class: 'sweep-box', 'aria-labelledby': 'h-sweep' },
        h('h2', { id: 'h-sweep' }, `Sweep of ${fmtTime(sweep.createdAt)}`),
        h('p', { class: 'muted' }, `${sweep.queued} queued · ${sweep.running} running · ${sweep.done} done`),
        h('ul', { class: 'plain' }, best('Best by EMA loss', sweep.byLoss), best('Best by rating', sweep.byRating)),
      ),
    );
  }

  async function loadGroups() {
    const groupBy = state.group;
    if (!groupBy.length) {
      replace(groupsBox, h('p', { class: 'muted' }, 'Choose at least one dimension.'));
      heatBox.replaceChildren();
      return;
    }
    const { compareRuns } = await gql(GROUPS, { filter: filter(), groupBy });
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

  function openAt(runId: string, step: number) {
    const pane = panes.find((p) => p.runId === runId);
    if (pane) openViewer([pane], { step, promptIndex: state.prompt }, viewerEvents);
  }

  const viewerEvents = { onRated: () => void loadGroups().catch(showError), onPromoted: () => void loadMatrix().catch(showError) };

  function openAb() {
    const chosen = panes.filter((p) => state.runs.has(p.runId));
    const list = (chosen.length ? chosen : panes).slice(0, 4);
    if (list.length < 2) return;
    const steps = list.map((p) => Math.max(...p.samples.map((s) => s.step)));
    // Start at the latest step all of them sampled.
    openViewer(list, { step: Math.min(...steps), promptIndex: state.prompt }, viewerEvents);
  }

  async function loadMatrix() {
    const { checkpointMatrix: m } = await gql(MATRIX, { filter: filter() });
    if (stopped) return;
    const rows = m.rows.filter((row) => row.cells.some(Boolean));
    panes = m.rows.map((row) => ({
      runId: row.run.id,
      name: row.run.name,
      samples: row.run.samples,
      checkpoints: row.run.checkpoints,
      bestCheckpointId: row.run.bestCheckpoint?.id ?? null,
      prompts: samplerPrompts(row.run.hyperparameters.samplePrompts, row.run.captionStrategy.triggerWord),
    }));
    const withSamples = panes.filter((p) => p.samples.length);
    const chosen = withSamples.filter((p) => state.runs.has(p.runId));
    const abRuns = (chosen.length ? chosen : withSamples).length;
    abButton.disabled = abRuns < 2 || abRuns > 4;
    abNote.textContent = abRuns > 4 ? 'Pick 2–4 runs for A/B' : abRuns < 2 ? 'A/B needs 2–4 runs with samples' : '';
    const prompts = [...new Set(panes.flatMap((p) => p.samples.map((s) => s.promptIndex)))].sort((a, b) => a - b);
    if (!prompts.includes(state.prompt) && prompts.length) state.prompt = prompts[0]!;
    replace(promptSelect, prompts.length ? prompts.map((i) => h('option', { value: i, selected: i === state.prompt }, promptText(withSamples[0]!, i))) : h('option', { value: 0 }, 'no samples'));
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
          h('caption', null, 'EMA loss at each checkpoint, with its mean rating (★) and its sample; a thumbnail opens the viewer there'),
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Run'), m.steps.map((s) => h('th', { scope: 'col', class: 'num' }, s)))),
          h(
            'tbody',
            null,
            rows.map((row) => {
              const pane = panes.find((p) => p.runId === row.run.id)!;
              return h(
                'tr',
                { 'data-run-id': row.run.id },
                h('th', { scope: 'row' }, h('a', { href: `#/runs/${row.run.id}` }, row.run.name)),
                row.cells.map((c) => {
                  if (!c) return h('td', null, '');
                  const sample = sampleAt(pane.samples, c.step, state.prompt, 1);
                  return h(
                    'td',
                    { class: `num matrix-cell${row.run.bestCheckpoint?.id === c.checkpoint.id ? ' best' : ''}`, 'data-step': c.step },
                    sample?.thumbnailUrl
                      ? h(
                          'button',
                          { type: 'button', class: 'thumb', 'aria-label': `Open ${row.run.name} at step ${c.step}`, onclick: () => openAt(row.run.id, c.step) },
                          h('img', { src: sample.thumbnailUrl, alt: '', width: 64, height: 64, loading: 'lazy', decoding: 'async' }),
                        )
                      : null,
                    h('div', null, fmtLoss(c.emaLoss), c.meanRating != null ? h('span', { class: 'rating' }, ` ★${c.meanRating.toFixed(1)}`) : ''),
                  );
                }),
              );
            }),
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
    describeScope();
    return Promise.all([loadPicker(), loadCurves(), loadGroups(), loadMatrix(), loadSweep()]).catch(showError);
  }

  // Live: a change to any run of the experiments shown refreshes the view (at most every 2 s).
  const subs = new Map<string, Subscription<{ id: string }>>();
  const refresh = debounce(() => {
    if (!stopped) void Promise.all([loadCurves(), loadGroups(), loadMatrix(), loadSweep()]).catch(showError);
  }, 2000);
  function follow() {
    const wanted = new Set(state.experiment ? [state.experiment] : experimentIds);
    for (const [id, sub] of subs) if (!wanted.has(id)) (sub.dispose(), subs.delete(id));
    for (const id of wanted) if (!subs.has(id)) subs.set(id, subscribe(RUN_CHANGED, { id }, (d) => (state.runs.size && !state.runs.has(d.runUpdated.id) ? null : refresh())));
  }

  experimentSelect.addEventListener('change', () => {
    state.experiment = experimentSelect.value;
    state.sweep = '';
    syncUrl();
    void loadAll();
  });
  sweepSelect.addEventListener('change', () => {
    state.sweep = sweepSelect.value;
    syncUrl();
    void loadAll();
  });
  dims.addEventListener('change', () => {
    state.group = [...dims.querySelectorAll<HTMLInputElement>('input:checked')].map((i) => i.value as RunDimension);
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
    drawCurves();
  });
  smoothing.addEventListener('input', () => {
    state.smooth = Number(smoothing.value);
    smoothValue.textContent = state.smooth.toFixed(2);
    syncUrl();
    drawCurves();
  });
  promptSelect.addEventListener('change', () => {
    state.prompt = Number(promptSelect.value);
    syncUrl();
    void loadMatrix().catch(showError);
  });

  void loadAll();
  const offReconnect = onReconnect(() => refresh());
  return () => {
    stopped = true;
    offReconnect();
    for (const sub of subs.values()) sub.dispose();
    closeViewer();
    chart.destroy();
  };
};
