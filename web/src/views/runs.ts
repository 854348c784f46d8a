// #/runs: every run (filtered, sorted), kept live through runUpdated per experiment.
import { gql, graphql } from '../api.js';
import { dash, errorBox, fmtDuration, fmtLoss, fmtLr, fmtTime, h, replace, statusBadge } from '../dom.js';
import type { RunFilter, RunOrderField, RunRowFragment, RunStatus } from '../gql/graphql.js';
import { onReconnect, subscribe, type Subscription } from '../live.js';
import type { View } from '../main.js';

graphql(`
  fragment RunRow on Run {
    id name status priority queuedAt costUsd
    experiment { id name } dataset { id name } captionStrategy { id name style }
    hyperparameters { rank learningRate steps }
    progress { step totalSteps secondsPerStep etaSeconds }
    lossSummary { lastStep lastLoss minLoss emaLoss }
    agent { id name }
    sweep { id createdAt }
    bestCheckpoint { id meanRating }
  }
`);

export type RunRow = RunRowFragment;

const RUNS = graphql(`
  query Runs($filter: RunFilter, $orderBy: RunOrder, $first: Int) {
    runs(filter: $filter, orderBy: $orderBy, first: $first) { totalCount edges { node { ...RunRow } } }
  }
`);
const RUNS_LIVE = graphql(`subscription RunsLive($id: ID!) { runUpdated(experimentId: $id) { ...RunRow } }`);
const CHOICES = graphql(`
  query RunChoices($filter: RunFilter) {
    experiments(first: 500) { edges { node { id name } } }
    captionStrategies { id name }
    runs(filter: $filter, first: 500) { edges { node { id sweep { id createdAt } } } }
  }
`);

export const STATUSES: RunStatus[] = ['QUEUED', 'CLAIMED', 'RUNNING', 'CANCELLING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
const LIMIT = 200;

interface Filters {
  experiment: string;
  status: string;
  rank: string;
  lr: string;
  strategy: string;
  sweep: string;
  sort: RunOrderField;
  dir: 'ASC' | 'DESC';
}

const SORTS: Partial<Record<RunOrderField, { label: string; value: (r: RunRow) => number | null }>> = {
  QUEUED_AT: { label: 'Queued', value: (r) => Date.parse(r.queuedAt) },
  RANK: { label: 'Rank', value: (r) => r.hyperparameters.rank },
  LEARNING_RATE: { label: 'LR', value: (r) => r.hyperparameters.learningRate },
  STEPS: { label: 'Steps', value: (r) => r.hyperparameters.steps },
  LAST_LOSS: { label: 'Last loss', value: (r) => r.lossSummary.lastLoss },
  MIN_LOSS: { label: 'Min loss', value: (r) => r.lossSummary.minLoss },
  EMA_LOSS: { label: 'EMA loss', value: (r) => r.lossSummary.emaLoss },
  BEST_RATING: { label: 'Rating', value: (r) => r.bestCheckpoint?.meanRating ?? null },
  COST_USD: { label: 'Cost', value: (r) => r.costUsd },
  PRIORITY: { label: 'Priority', value: (r) => r.priority },
};

/** A learning rate as typed ("4e-4", "0.0004"); null when it is not a positive number. */
export const parseLr = (text: string) => {
  const v = Number(text.trim());
  return text.trim() && Number.isFinite(v) && v > 0 ? v : null;
};

function readFilters(params: URLSearchParams): Filters {
  const sort = (params.get('sort') ?? 'QUEUED_AT') as RunOrderField;
  return {
    experiment: params.get('experiment') ?? '',
    status: params.get('status') ?? '',
    rank: params.get('rank') ?? '',
    lr: params.get('lr') ?? '',
    strategy: params.get('strategy') ?? '',
    sweep: params.get('sweep') ?? '',
    sort: sort in SORTS ? sort : 'QUEUED_AT',
    dir: params.get('dir') === 'ASC' ? 'ASC' : 'DESC',
  };
}

function toFilter(f: Filters): RunFilter {
  const filter: RunFilter = {};
  if (f.experiment) filter.experimentId = f.experiment;
  if (f.status) filter.status = [f.status as RunStatus];
  if (f.rank && Number.isFinite(Number(f.rank))) filter.rank = { eq: Number(f.rank) };
  const lr = parseLr(f.lr);
  if (lr != null) filter.learningRate = { eq: lr };
  if (f.strategy) filter.captionStrategyId = f.strategy;
  if (f.sweep) filter.sweepId = f.sweep;
  return filter;
}

/** The same conditions as the server's filter, for runs that arrive live. */
function matches(r: RunRow, f: Filters) {
  if (f.experiment && r.experiment.id !== f.experiment) return false;
  if (f.status && r.status !== f.status) return false;
  if (f.rank && r.hyperparameters.rank !== Number(f.rank)) return false;
  const lr = parseLr(f.lr);
  if (lr != null && Math.abs(r.hyperparameters.learningRate - lr) > lr * 1e-9) return false;
  if (f.strategy && r.captionStrategy.id !== f.strategy) return false;
  if (f.sweep && r.sweep?.id !== f.sweep) return false;
  return true;
}

/** Nulls last in either direction; ties keep the newest first. */
function comparator(f: Filters) {
  const value = SORTS[f.sort]?.value ?? SORTS.QUEUED_AT!.value;
  const sign = f.dir === 'ASC' ? 1 : -1;
  return (a: RunRow, b: RunRow) => {
    const va = value(a);
    const vb = value(b);
    if (va == null || vb == null) return va == null && vb == null ? 0 : va == null ? 1 : -1;
    return (va - vb) * sign || Date.parse(b.queuedAt) - Date.parse(a.queuedAt);
  };
}

/**
 * Progress from the newest of the heartbeat's step and the last loss step (heartbeats come every
 * few seconds, loss points more often); a succeeded run is done whatever its last heartbeat said.
 */
export function progressOf(r: { status: string; progress: { step: number; totalSteps: number } | null; lossSummary: { lastStep?: number | null }; hyperparameters: { steps: number } }) {
  const total = r.progress?.totalSteps || r.hyperparameters.steps;
  const step = r.status === 'SUCCEEDED' ? total : Math.min(total, Math.max(r.progress?.step ?? 0, r.lossSummary.lastStep ?? 0));
  const known = r.progress != null || r.lossSummary.lastStep != null || r.status === 'SUCCEEDED';
  return known ? { step, total } : null;
}

export function progressCell(r: Parameters<typeof progressOf>[0]) {
  const p = progressOf(r);
  if (!p) return dash;
  const pct = p.total ? Math.min(100, (100 * p.step) / p.total) : 0;
  return h('span', { class: 'progress' }, h('progress', { max: p.total, value: p.step, 'aria-label': `step ${p.step} of ${p.total}` }), ` ${pct.toFixed(0)}%`);
}

export const runsView: View = (main, params) => {
  const f = readFilters(params);
  const rows = new Map<string, RunRow>();
  const trs = new Map<string, HTMLTableRowElement>();
  const selected = new Set<string>((params.get('selected') ?? '').split(',').filter(Boolean));
  const subs = new Map<string, Subscription<Record<string, unknown>>>();
  let total = 0;
  let stopped = false;

  const status = h('p', { class: 'muted', 'aria-live': 'polite', id: 'runs-count' });
  const errors = h('div');
  const tbody = h('tbody');
  const compareLink = h('a', { class: 'button', href: '#/compare', id: 'compare-selected' }, 'Compare selected');

  const experimentSelect = h('select', { id: 'f-experiment', name: 'experiment' }, h('option', { value: '' }, 'All experiments'));
  const strategySelect = h('select', { id: 'f-strategy', name: 'strategy' }, h('option', { value: '' }, 'All caption strategies'));
  const sweepSelect = h('select', { id: 'f-sweep', name: 'sweep' }, h('option', { value: '' }, 'Any sweep'), f.sweep ? h('option', { value: f.sweep, selected: true }, 'this sweep') : null);
  const statusSelect = h('select', { id: 'f-status', name: 'status' }, h('option', { value: '' }, 'Any status'), STATUSES.map((s) => h('option', { value: s, selected: f.status === s }, s)));
  const rankInput = h('input', { id: 'f-rank', name: 'rank', type: 'number', min: 1, step: 1, inputmode: 'numeric', value: f.rank, placeholder: 'any' });
  const lrInput = h('input', { id: 'f-lr', name: 'lr', type: 'text', inputmode: 'decimal', value: f.lr, placeholder: 'any, e.g. 4e-4', 'aria-describedby': 'f-lr-error' });
  const lrError = h('span', { class: 'field-error', id: 'f-lr-error', role: 'alert' });
  const sortSelect = h('select', { id: 'f-sort', name: 'sort' }, Object.entries(SORTS).map(([k, s]) => h('option', { value: k, selected: f.sort === k }, s!.label)));
  const dirSelect = h('select', { id: 'f-dir', name: 'dir' }, h('option', { value: 'DESC', selected: f.dir === 'DESC' }, 'Descending'), h('option', { value: 'ASC', selected: f.dir === 'ASC' }, 'Ascending'));

  const field = (id: string, label: string, control: HTMLElement, error?: HTMLElement) => h('div', { class: 'field' }, h('label', { for: id }, label), control, error);
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter runs', onsubmit: (e: Event) => e.preventDefault(), onchange: () => applyFilters() },
    field('f-experiment', 'Experiment', experimentSelect),
    field('f-sweep', 'Sweep', sweepSelect),
    field('f-status', 'Status', statusSelect),
    field('f-rank', 'Rank', rankInput),
    field('f-lr', 'Learning rate', lrInput, lrError),
    field('f-strategy', 'Caption strategy', strategySelect),
    field('f-sort', 'Sort by', sortSelect),
    field('f-dir', 'Order', dirSelect),
  );
  // On a phone the filters fold away behind one line, so the runs come first.
  const activeFilters = () => ['experiment', 'sweep', 'status', 'rank', 'lr', 'strategy'].filter((k) => f[k as keyof Filters]).length;
  const filtersSummary = h('summary', null);
  const wide = window.matchMedia('(min-width: 641px)');
  const filtersBox = h('details', { class: 'filters-box', open: wide.matches }, filtersSummary, form);
  const fold = () => (filtersBox.open = wide.matches);
  wide.addEventListener('change', fold);
  const renderSummary = () => (filtersSummary.textContent = `Filters and sort${activeFilters() ? ` (${activeFilters()} active)` : ''}`);
  renderSummary();

  const sortHeader = (key: RunOrderField, label: string) => {
    const active = f.sort === key;
    return h(
      'th',
      { scope: 'col', class: 'num', 'aria-sort': active ? (f.dir === 'ASC' ? 'ascending' : 'descending') : null },
      h('button', { type: 'button', class: 'sort', onclick: () => setSort(key) }, label, active ? (f.dir === 'ASC' ? ' ▲' : ' ▼') : ''),
    );
  };
  const thead = h('thead');
  const renderHead = () =>
    replace(
      thead,
      h(
        'tr',
        null,
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Select')),
        h('th', { scope: 'col' }, 'Run'),
        h('th', { scope: 'col' }, 'Status'),
        sortHeader('RANK', 'Rank'),
        sortHeader('LEARNING_RATE', 'LR'),
        sortHeader('STEPS', 'Steps'),
        h('th', { scope: 'col' }, 'Progress'),
        h('th', { scope: 'col', class: 'num' }, 'ETA'),
        sortHeader('LAST_LOSS', 'Last'),
        sortHeader('MIN_LOSS', 'Min'),
        sortHeader('EMA_LOSS', 'EMA'),
        sortHeader('BEST_RATING', 'Rating'),
        sortHeader('COST_USD', 'Cost'),
        h('th', { scope: 'col', class: 'wide' }, 'Agent'),
      ),
    );
  renderHead();

  replace(
    main,
    h('div', { class: 'view-head' }, h('h1', null, 'Runs'), compareLink),
    filtersBox,
    errors,
    status,
    h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Runs table' }, h('table', { class: 'runs', id: 'runs-table' }, thead, tbody)),
  );

  function syncUrl() {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(f)) if (v && !(k === 'sort' && v === 'QUEUED_AT') && !(k === 'dir' && v === 'DESC')) q.set(k, v);
    const query = q.toString();
    history.replaceState(null, '', `#/runs${query ? `?${query}` : ''}`);
  }

  function updateCompareLink() {
    compareLink.setAttribute('href', `#/compare?runs=${[...selected].join(',')}`);
    compareLink.textContent = selected.size ? `Compare selected (${selected.size})` : 'Compare';
  }
  updateCompareLink();

  function rowCells(r: RunRow): HTMLTableCellElement[] {
    return [
      h(
        'th',
        { scope: 'row', class: 'run-name' },
        h('a', { href: `#/runs/${r.id}` }, r.name),
        h('div', { class: 'muted small wide', title: `${r.experiment.name} · ${r.dataset.name} · ${r.captionStrategy.name}` }, `${r.experiment.name} · ${r.dataset.name} · ${r.captionStrategy.name}${r.captionStrategy.style ? ` (${r.captionStrategy.style.toLowerCase()})` : ''}`),
      ),
      h('td', null, statusBadge(r.status)),
      h('td', { class: 'num' }, r.hyperparameters.rank),
      h('td', { class: 'num' }, fmtLr(r.hyperparameters.learningRate)),
      h('td', { class: 'num' }, r.hyperparameters.steps),
      h('td', null, progressCell(r)),
      h('td', { class: 'num' }, ['QUEUED', 'CLAIMED', 'RUNNING'].includes(r.status) ? fmtDuration(r.progress?.etaSeconds) : dash),
      h('td', { class: 'num' }, fmtLoss(r.lossSummary.lastLoss)),
      h('td', { class: 'num' }, fmtLoss(r.lossSummary.minLoss)),
      h('td', { class: 'num' }, fmtLoss(r.lossSummary.emaLoss)),
      h('td', { class: 'num' }, r.bestCheckpoint?.meanRating != null ? `★${r.bestCheckpoint.meanRating.toFixed(1)}` : dash),
      h('td', { class: 'num' }, r.costUsd != null ? `$${r.costUsd.toFixed(2)}` : dash),
      h('td', { class: 'wide' }, r.agent?.name ?? dash),
    ];
  }

  function rowFor(r: RunRow) {
    let tr = trs.get(r.id);
    if (!tr) {
      const box = h('input', {
        type: 'checkbox',
        checked: selected.has(r.id),
        'aria-label': `Select ${r.name} for comparison`,
        onchange: (e: Event) => {
          if ((e.target as HTMLInputElement).checked) selected.add(r.id);
          else selected.delete(r.id);
          updateCompareLink();
        },
      });
      tr = h('tr', null, h('td', null, box));
      trs.set(r.id, tr);
    }
    tr.dataset.runId = r.id;
    tr.dataset.status = r.status;
    while (tr.children.length > 1) tr.lastChild!.remove();
    tr.append(...rowCells(r));
    return tr;
  }

  function renderRows() {
    const ordered = [...rows.values()].sort(comparator(f));
    for (const [id, tr] of trs) if (!rows.has(id)) (tr.remove(), trs.delete(id));
    ordered.forEach((r, i) => {
      const tr = trs.get(r.id) ?? rowFor(r);
      if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] ?? null);
    });
    status.textContent = rows.size ? `${total > rows.size ? `${rows.size} of ${total}` : rows.size} run${rows.size === 1 ? '' : 's'}` : 'No runs match.';
  }

  function onUpdate(r: RunRow) {
    const had = rows.has(r.id);
    if (matches(r, f)) {
      if (!had) total++;
      rows.set(r.id, r);
      rowFor(r);
    } else if (had) {
      rows.delete(r.id);
      total--;
    } else return;
    renderRows();
  }

  let loads = 0;
  async function load() {
    const mine = ++loads; // an answer to an older filter must not overwrite a newer one
    try {
      const data = await gql(RUNS, { filter: toFilter(f), orderBy: { field: f.sort, direction: f.dir }, first: LIMIT });
      if (stopped || mine !== loads) return;
      rows.clear();
      for (const { node } of data.runs.edges) {
        rows.set(node.id, node);
        if (trs.has(node.id)) rowFor(node);
      }
      total = data.runs.totalCount;
      errors.replaceChildren();
      renderRows();
    } catch (err) {
      if (!stopped) replace(errors, errorBox(err));
    }
  }

  /** runUpdated needs an experiment: one subscription per experiment the filter shows. */
  function follow(experimentIds: string[]) {
    const wanted = new Set(f.experiment ? experimentIds.filter((id) => id === f.experiment) : experimentIds);
    for (const [id, sub] of subs) if (!wanted.has(id)) (sub.dispose(), subs.delete(id));
    for (const id of wanted) {
      if (subs.has(id)) continue;
      subs.set(
        id,
        subscribe(RUNS_LIVE, { id }, (d) => onUpdate(d.runUpdated)),
      );
    }
  }

  let knownExperiments: string[] = [];
  let choicesLoaded = false;
  async function loadChoices() {
    try {
      const data = await gql(CHOICES, { filter: f.experiment ? { experimentId: f.experiment } : {} });
      if (stopped) return;
      const experiments = data.experiments.edges.map((e) => e.node);
      const ids = experiments.map((e) => e.id);
      // A new experiment's first run announces itself only to subscribers of that experiment.
      const fresh = ids.filter((id) => !knownExperiments.includes(id));
      knownExperiments = ids;
      if (fresh.length || experimentSelect.options.length - 1 !== experiments.length) {
        replace(experimentSelect, h('option', { value: '' }, 'All experiments'), experiments.map((e) => h('option', { value: e.id, selected: f.experiment === e.id }, e.name)));
        replace(strategySelect, h('option', { value: '' }, 'All caption strategies'), data.captionStrategies.map((s) => h('option', { value: s.id, selected: f.strategy === s.id }, s.name)));
      }
      const sweeps = new Map<string, { createdAt: string; runs: number }>();
      for (const { node } of data.runs.edges) if (node.sweep) sweeps.set(node.sweep.id, { createdAt: node.sweep.createdAt, runs: (sweeps.get(node.sweep.id)?.runs ?? 0) + 1 });
      if (sweeps.size !== sweepSelect.options.length - 1 || (f.sweep && !sweeps.has(f.sweep))) {
        const list = [...sweeps].sort((a, b) => Date.parse(b[1].createdAt) - Date.parse(a[1].createdAt));
        replace(
          sweepSelect,
          h('option', { value: '' }, 'Any sweep'),
          list.map(([id, s]) => h('option', { value: id, selected: f.sweep === id }, `${fmtTime(s.createdAt)} (${s.runs} runs)`)),
          f.sweep && !sweeps.has(f.sweep) ? h('option', { value: f.sweep, selected: true }, 'this sweep') : null,
        );
      }
      follow(ids);
      // Runs of an experiment that was new since the last look may have been queued unannounced.
      if (fresh.length && choicesLoaded) void load();
      choicesLoaded = true;
    } catch (err) {
      if (!stopped) replace(errors, errorBox(err));
    }
  }

  function applyFilters() {
    // A learning rate that is not a number is said so next to the field, not silently ignored.
    const lrText = lrInput.value.trim();
    const lrBad = lrText !== '' && parseLr(lrText) == null;
    lrError.textContent = lrBad ? 'Not a learning rate: a positive number such as 4e-4 or 0.0001' : '';
    lrInput.setAttribute('aria-invalid', String(lrBad));
    Object.assign(f, {
      experiment: experimentSelect.value,
      sweep: sweepSelect.value,
      status: statusSelect.value,
      rank: rankInput.value.trim(),
      lr: lrBad ? '' : lrText,
      strategy: strategySelect.value,
      sort: sortSelect.value as RunOrderField,
      dir: dirSelect.value as Filters['dir'],
    });
    renderSummary();
    syncUrl();
    renderHead();
    follow(knownExperiments);
    void load();
  }

  function setSort(key: RunOrderField) {
    if (f.sort === key) f.dir = f.dir === 'ASC' ? 'DESC' : 'ASC';
    else (f.sort = key), (f.dir = key.endsWith('LOSS') ? 'ASC' : 'DESC');
    sortSelect.value = f.sort;
    dirSelect.value = f.dir;
    syncUrl();
    renderHead();
    (thead.querySelector('[aria-sort] button') as HTMLButtonElement | null)?.focus();
    void load();
  }

  void load();
  void loadChoices();
  const poll = setInterval(() => void loadChoices(), 10_000);
  const offReconnect = onReconnect(() => void load());
  return () => {
    stopped = true;
    wide.removeEventListener('change', fold);
    clearInterval(poll);
    offReconnect();
    for (const sub of subs.values()) sub.dispose();
  };
};
