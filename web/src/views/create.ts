// #/new: make an experiment, a dataset from a folder of images (with .txt captions as a STORED
// caption strategy), and queue a run or a sweep. A list in rank, learning rate or steps, or more than
// one caption strategy, makes a sweep over their product; the form says how many runs and about
// how many GPU hours and dollars before it queues. The API's errors show next to their fields.
import { ApiError, canEdit, gql, graphql, whenRoleKnown } from '../api.js';
import { errorBox, fmtBytes, h, replace } from '../dom.js';
import type { ExperimentGoal, QueueRunInput, SweepGridInput } from '../gql/graphql.js';
import type { View } from '../main.js';
import { readFolder, droppedFiles, uploadAll, type FolderImage } from '../upload.js';

const CHOICES = graphql(`
  query CreateChoices {
    experiments(first: 500) { edges { node { id name } } }
    datasets(first: 200) { edges { node { id name imageCount stored uri } } }
    captionStrategies { id name kind }
    agents { id hourlyCostUsd }
    runs(first: 50, filter: { status: [RUNNING, SUCCEEDED] }) { edges { node { id progress { secondsPerStep } } } }
  }
`);
const CREATE_EXPERIMENT = graphql(`mutation CreateExperiment($i: CreateExperimentInput!) { createExperiment(input: $i) { id name } }`);
const CREATE_DATASET = graphql(`mutation CreateDataset($i: CreateDatasetInput!) { createDataset(input: $i) { id name } }`);
const CREATE_STRATEGY = graphql(`mutation CreateStrategy($i: CreateCaptionStrategyInput!) { createCaptionStrategy(input: $i) { id name } }`);
const SET_CAPTIONS = graphql(`mutation SetCaptions($d: ID!, $s: ID!, $c: [CaptionInput!]!) { setCaptions(datasetId: $d, strategyId: $s, captions: $c) }`);
const QUEUE_RUN = graphql(`mutation QueueRun($i: QueueRunInput!) { queueRun(input: $i) { id name } }`);
const QUEUE_SWEEP = graphql(`mutation QueueSweep($i: QueueSweepInput!) { queueSweep(input: $i) { id name sweep { id } } }`);

/** Seconds per step when no run has reported any: FLUX.1 LoRA at 1024 px on a 24 GB card. */
const DEFAULT_SECONDS_PER_STEP = 2;

/** A form's error slots by field name; an API error lands next to the field its path names. */
function errorSlots(prefix: string) {
  const slots = new Map<string, HTMLElement>();
  const general = h('div', { role: 'alert' });
  return {
    general,
    slot(name: string) {
      const el = h('span', { class: 'field-error', id: `${prefix}-err-${name}`, role: 'alert' });
      slots.set(name, el);
      return el;
    },
    clear() {
      for (const el of slots.values()) el.textContent = '';
      general.replaceChildren();
    },
    show(err: unknown) {
      const path = err instanceof ApiError && err.field ? err.field.split('.').filter((p) => !/^\d+$/.test(p)) : [];
      const name = [...path].reverse().find((p) => slots.has(p));
      // "input.hyperparameters.rank: must be …" reads "must be …" next to the rank field.
      const message = err instanceof Error ? err.message : String(err);
      if (name) slots.get(name)!.textContent = err instanceof ApiError && err.field && message.startsWith(`${err.field}: `) ? message.slice(err.field.length + 2) : message;
      else replace(general, errorBox(err));
    },
  };
}

const field = (id: string, label: string, control: HTMLElement, error?: HTMLElement, hint?: string) =>
  h('div', { class: 'field' }, h('label', { for: id }, label), control, hint ? h('span', { class: 'muted small' }, hint) : null, error);

/** "8, 16 32" → [8, 16, 32]; null when any item is not a number. */
export function parseList(text: string): number[] | null {
  const items = text.split(/[\s,]+/).filter(Boolean);
  const values = items.map(Number);
  return values.every((v) => Number.isFinite(v)) ? [...new Set(values)] : null;
}

export const createView: View = (main) => {
  let stopped = false;
  const errors = h('div');
  replace(main, h('div', { class: 'view-head' }, h('h1', null, 'New')), errors);

  void whenRoleKnown().then(() => {
    if (stopped) return;
    if (!canEdit()) return replace(errors, h('p', { class: 'muted' }, 'Creating needs an EDITOR or ADMIN key.'));
    void build();
  });

  async function build() {
    let data: Awaited<ReturnType<typeof loadChoices>>;
    try {
      data = await loadChoices();
    } catch (err) {
      return replace(errors, errorBox(err));
    }
    if (stopped) return;

    // Experiment
    const ex = errorSlots('ex');
    const exName = h('input', { id: 'ex-name', name: 'name', required: true, placeholder: 'p3r5on portrait' });
    const exGoal = h('select', { id: 'ex-goal' }, ['CHARACTER', 'STYLE', 'CONCEPT', 'OTHER'].map((g) => h('option', { value: g }, g.toLowerCase())));
    const exDone = h('span', { class: 'muted', role: 'status' });
    const experimentForm = h(
      'form',
      {
        class: 'card filters',
        id: 'experiment-form',
        onsubmit: async (e: Event) => {
          e.preventDefault();
          ex.clear();
          try {
            const { createExperiment } = await gql(CREATE_EXPERIMENT, { i: { name: exName.value.trim(), goal: exGoal.value as ExperimentGoal } });
            exDone.textContent = `Created ${createExperiment.name}`;
            exName.value = '';
            await refreshChoices({ experiment: createExperiment.id });
          } catch (err) {
            ex.show(err);
          }
        },
      },
      field('ex-name', 'Name', exName, ex.slot('name')),
      field('ex-goal', 'Goal', exGoal, ex.slot('goal')),
      h('button', { type: 'submit' }, 'Create experiment'),
      exDone,
      ex.general,
    );

    // Dataset from a folder
    const ds = errorSlots('ds');
    const dsName = h('input', { id: 'ds-name', name: 'name', placeholder: 'folder name' });
    const dsTrigger = h('input', { id: 'ds-trigger', name: 'triggerWord', placeholder: 'e.g. p3r5on' });
    const folderInput = h('input', { id: 'ds-folder', type: 'file', multiple: true, accept: 'image/*,.txt' });
    folderInput.setAttribute('webkitdirectory', '');
    const drop = h('div', { class: 'drop', id: 'ds-drop', tabindex: 0 }, 'Drop a folder of images here (with .txt captions beside them), or ', h('label', { for: 'ds-folder', class: 'link' }, 'choose a folder'), folderInput);
    const dsSummary = h('p', { class: 'muted', id: 'ds-summary', role: 'status' });
    const dsProgress = h('progress', { id: 'ds-progress', max: 1, value: 0, hidden: true });
    const dsButton = h('button', { type: 'submit', disabled: true }, 'Upload dataset');
    let images: FolderImage[] = [];
    async function take(files: File[]) {
      dsSummary.textContent = 'Reading…';
      images = await readFolder(files, (done, total) => (dsSummary.textContent = `Reading ${done} of ${total}…`));
      const first = files[0] as File & { webkitRelativePath?: string };
      if (!dsName.value && first?.webkitRelativePath) dsName.value = first.webkitRelativePath.split('/')[0] ?? '';
      const captions = images.filter((i) => i.caption).length;
      dsSummary.textContent = images.length
        ? `${images.length} images (${fmtBytes(images.reduce((s, i) => s + i.file.size, 0))}), ${captions} with a .txt caption${captions ? ': they become a STORED caption strategy' : ''}`
        : 'No images (.jpg, .png, .webp) in what was chosen.';
      dsButton.disabled = !images.length;
    }
    folderInput.addEventListener('change', () => void take([...(folderInput.files ?? [])]));
    drop.addEventListener('dragover', (e) => (e.preventDefault(), drop.classList.add('over')));
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      if (e.dataTransfer) void droppedFiles(e.dataTransfer.items).then(take);
    });
    const datasetForm = h(
      'form',
      {
        class: 'card',
        id: 'dataset-form',
        onsubmit: async (e: Event) => {
          e.preventDefault();
          ds.clear();
          dsButton.disabled = true;
          try {
            const name = dsName.value.trim();
            const { createDataset } = await gql(CREATE_DATASET, {
              i: { name, images: images.map((i) => ({ fileName: i.fileName, sha256: i.sha256, width: i.width, height: i.height, caption: i.caption })) },
            });
            let strategyId: string | undefined;
            const captions = images.filter((i) => i.caption).map((i) => ({ fileName: i.fileName, text: i.caption! }));
            if (captions.length) {
              const { createCaptionStrategy } = await gql(CREATE_STRATEGY, { i: { name: `${name} captions`, kind: 'STORED', style: 'CUSTOM', triggerWord: dsTrigger.value.trim() || null } });
              await gql(SET_CAPTIONS, { d: createDataset.id, s: createCaptionStrategy.id, c: captions });
              strategyId = createCaptionStrategy.id;
            }
            dsProgress.hidden = false;
            await uploadAll(createDataset.id, images, (sent, total, stored) => {
              dsProgress.max = total;
              dsProgress.value = sent;
              dsSummary.textContent = `Uploading: ${fmtBytes(sent)} of ${fmtBytes(total)}, ${stored} of ${images.length} images stored`;
            });
            replace(dsSummary, `Stored ${images.length} images. `, h('a', { href: `#/datasets/${createDataset.id}`, id: 'ds-link' }, `Open ${createDataset.name}`));
            await refreshChoices({ dataset: createDataset.id, strategy: strategyId });
          } catch (err) {
            ds.show(err);
            dsButton.disabled = false;
          }
        },
      },
      drop,
      h('div', { class: 'filters' }, field('ds-name', 'Name', dsName, ds.slot('name')), field('ds-trigger', 'Trigger word for the captions', dsTrigger, ds.slot('triggerWord'))),
      dsSummary,
      dsProgress,
      h('div', { class: 'actions' }, dsButton),
      ds.slot('images'),
      ds.general,
    );

    // Run or sweep
    const rf = errorSlots('rf');
    const experimentSelect = h('select', { id: 'rf-experiment' });
    const datasetSelect = h('select', { id: 'rf-dataset' });
    const strategies = h('fieldset', { class: 'dims', id: 'rf-strategies' }, h('legend', null, 'Caption strategies (several: a sweep over them)'));
    const runName = h('input', { id: 'rf-name', placeholder: 'named by its settings' });
    const rank = h('input', { id: 'rf-rank', value: '16', inputmode: 'numeric' });
    const lr = h('input', { id: 'rf-lr', value: '4e-4', inputmode: 'decimal' });
    const steps = h('input', { id: 'rf-steps', value: '3000', inputmode: 'numeric' });
    const saveEvery = h('input', { id: 'rf-save', value: '250', type: 'number', min: 1 });
    const sampleEvery = h('input', { id: 'rf-sample', value: '250', type: 'number', min: 1 });
    const strengths = h('input', { id: 'rf-strengths', value: '1', inputmode: 'decimal' });
    const prompts = h('textarea', { id: 'rf-prompts', rows: 3 }, '[trigger], portrait photo, soft window light\n[trigger] walking through a forest at golden hour');
    const secondsPerStep = h('input', { id: 'rf-sps', type: 'number', min: 0.1, step: 0.1, value: data.secondsPerStep.toFixed(1) });
    const estimate = h('p', { class: 'estimate', id: 'sweep-estimate', 'aria-live': 'polite' });
    const queueButton = h('button', { type: 'submit', id: 'rf-queue' }, 'Queue');
    const queued = h('p', { role: 'status', id: 'rf-queued' });

    function plan() {
      const ranks = parseList(rank.value);
      const rates = parseList(lr.value);
      const stepList = parseList(steps.value);
      const chosen = [...strategies.querySelectorAll<HTMLInputElement>('input:checked')].map((i) => i.value);
      const ok = ranks?.length && rates?.length && stepList?.length && chosen.length;
      const count = ok ? ranks!.length * rates!.length * stepList!.length * chosen.length : 0;
      const stepsTotal = ok ? ranks!.length * rates!.length * chosen.length * stepList!.reduce((a, b) => a + b, 0) : 0;
      return { ranks, rates, stepList, chosen, count, hours: (stepsTotal * Number(secondsPerStep.value || DEFAULT_SECONDS_PER_STEP)) / 3600 };
    }
    function renderEstimate() {
      const p = plan();
      queueButton.textContent = p.count > 1 ? `Queue sweep of ${p.count} runs` : 'Queue run';
      estimate.dataset.runs = String(p.count);
      const price = data.hourlyPrice;
      estimate.textContent = p.count
        ? `${p.count} run${p.count === 1 ? '' : 's'} · ≈ ${p.hours.toFixed(1)} GPU hours${price != null ? ` · ≈ $${(p.hours * price).toFixed(2)} at $${price.toFixed(2)}/h (the agents' mean price)` : ' · no agent has a price set'}`
        : 'Fill in rank, learning rate and steps (numbers; lists make a sweep) and pick a caption strategy.';
    }

    const runForm = h(
      'form',
      {
        class: 'card',
        id: 'run-form',
        oninput: () => (rf.clear(), renderEstimate()),
        onchange: renderEstimate,
        onsubmit: async (e: Event) => {
          e.preventDefault();
          rf.clear();
          const p = plan();
          if (!p.chosen.length) return rf.show(new ApiError('BAD_USER_INPUT', 'Pick at least one caption strategy', 'captionStrategyId'));
          for (const [list, el, name] of [[p.ranks, rank, 'rank'], [p.rates, lr, 'learningRate'], [p.stepList, steps, 'steps']] as const) {
            if (!list?.length) {
              rf.show(new ApiError('BAD_USER_INPUT', `${el.value.trim() ? 'Not a number' : 'Required'}: give one value, or several separated by commas`, name));
              return;
            }
          }
          const base: QueueRunInput = {
            experimentId: experimentSelect.value,
            datasetId: datasetSelect.value,
            captionStrategyId: p.chosen[0] ?? '',
            name: runName.value.trim() || null,
            hyperparameters: {
              rank: p.ranks![0],
              learningRate: p.rates![0],
              steps: p.stepList![0],
              saveEvery: Number(saveEvery.value),
              sampleEvery: Number(sampleEvery.value),
              sampleStrengths: parseList(strengths.value) ?? [],
              samplePrompts: prompts.value.split('\n').map((l) => l.trim()).filter(Boolean),
            },
          };
          queueButton.disabled = true;
          try {
            if (p.count === 1) {
              const { queueRun } = await gql(QUEUE_RUN, { i: base });
              replace(queued, 'Queued ', h('a', { href: `#/runs/${queueRun.id}` }, queueRun.name));
            } else {
              const grid: SweepGridInput = {};
              if (p.ranks!.length > 1) grid.rank = p.ranks;
              if (p.rates!.length > 1) grid.learningRate = p.rates;
              if (p.stepList!.length > 1) grid.steps = p.stepList;
              if (p.chosen.length > 1) grid.captionStrategyId = p.chosen;
              const { queueSweep } = await gql(QUEUE_SWEEP, { i: { base, grid } });
              const sweepId = queueSweep[0]?.sweep?.id;
              replace(queued, `Queued a sweep of ${queueSweep.length} runs. `, sweepId ? h('a', { href: `#/compare?sweep=${sweepId}`, id: 'rf-sweep-link' }, 'Compare the sweep') : null);
            }
          } catch (err) {
            rf.show(err);
          } finally {
            queueButton.disabled = false;
          }
        },
      },
      h('div', { class: 'filters' }, field('rf-experiment', 'Experiment', experimentSelect, rf.slot('experimentId')), field('rf-dataset', 'Dataset', datasetSelect, rf.slot('datasetId')), field('rf-name', 'Name', runName, rf.slot('name'))),
      strategies,
      rf.slot('captionStrategyId'),
      h(
        'div',
        { class: 'filters' },
        field('rf-rank', 'Rank', rank, rf.slot('rank'), 'e.g. 16, or 8, 16, 32'),
        field('rf-lr', 'Learning rate', lr, rf.slot('learningRate'), 'e.g. 4e-4, or 1e-4, 4e-4'),
        field('rf-steps', 'Steps', steps, rf.slot('steps')),
        field('rf-save', 'Save every', saveEvery, rf.slot('saveEvery')),
        field('rf-sample', 'Sample every', sampleEvery, rf.slot('sampleEvery')),
        field('rf-strengths', 'Sample strengths', strengths, rf.slot('sampleStrengths'), 'e.g. 0.6, 0.8, 1'),
      ),
      field('rf-prompts', 'Sample prompts (one a line; [trigger] is the trigger word)', prompts, rf.slot('samplePrompts')),
      h('div', { class: 'filters' }, field('rf-sps', 'Seconds per step (estimate)', secondsPerStep, undefined, data.secondsPerStepSource)),
      estimate,
      h('div', { class: 'actions' }, queueButton),
      queued,
      rf.general,
    );

    function renderChoices(selected: { experiment?: string; dataset?: string; strategy?: string } = {}) {
      const keep = (sel: HTMLSelectElement, id?: string) => id ?? sel.value;
      const exId = keep(experimentSelect, selected.experiment);
      const dsId = keep(datasetSelect, selected.dataset);
      const checked = new Set([...strategies.querySelectorAll<HTMLInputElement>('input:checked')].map((i) => i.value));
      if (selected.strategy) checked.clear(), checked.add(selected.strategy);
      replace(experimentSelect, data.experiments.map((x) => h('option', { value: x.id, selected: x.id === exId }, x.name)));
      replace(datasetSelect, data.datasets.map((d) => h('option', { value: d.id, selected: d.id === dsId }, `${d.name} (${d.imageCount} images)`)));
      if (!checked.size && data.strategies[0]) checked.add(data.strategies[0].id);
      strategies.querySelectorAll('label').forEach((l) => l.remove());
      strategies.append(...data.strategies.map((s) => h('label', null, h('input', { type: 'checkbox', name: 'strategy', value: s.id, checked: checked.has(s.id) }), ` ${s.name} (${s.kind.toLowerCase()})`)));
      renderEstimate();
    }

    async function refreshChoices(selected: { experiment?: string; dataset?: string; strategy?: string }) {
      data = await loadChoices();
      if (!stopped) renderChoices(selected);
    }

    replace(
      main,
      h('div', { class: 'view-head' }, h('h1', null, 'New')),
      h('section', { 'aria-labelledby': 'h-new-run' }, h('h2', { id: 'h-new-run' }, 'Run or sweep'), runForm),
      h('section', { 'aria-labelledby': 'h-new-dataset' }, h('h2', { id: 'h-new-dataset' }, 'Dataset from a folder'), datasetForm),
      h('section', { 'aria-labelledby': 'h-new-experiment' }, h('h2', { id: 'h-new-experiment' }, 'Experiment'), experimentForm),
    );
    renderChoices();
  }

  async function loadChoices() {
    const d = await gql(CHOICES);
    const prices = d.agents.map((a) => a.hourlyCostUsd).filter((v): v is number => v != null);
    const speeds = d.runs.edges.map((e) => e.node.progress?.secondsPerStep).filter((v): v is number => v != null).sort((a, b) => a - b);
    return {
      experiments: d.experiments.edges.map((e) => e.node),
      datasets: d.datasets.edges.map((e) => e.node),
      strategies: d.captionStrategies,
      hourlyPrice: prices.length ? prices.reduce((a, b) => a + b, 0) / prices.length : null,
      secondsPerStep: speeds.length ? speeds[Math.floor(speeds.length / 2)]! : DEFAULT_SECONDS_PER_STEP,
      secondsPerStepSource: speeds.length ? `the median of ${speeds.length} recent runs` : 'no run has reported its speed yet',
    };
  }

  return () => {
    stopped = true;
  };
};
