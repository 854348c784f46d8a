// #/runs/:id: one run's loss curve (live), progress, checkpoints with ratings, samples, events, config.
import { canEdit, gql, whenRoleKnown } from '../api.js';
import { LossChart, type Bucket } from '../chart.js';
import { dash, errorBox, fmtBytes, fmtDuration, fmtLoss, fmtLr, fmtTime, h, replace, statusBadge } from '../dom.js';
import { onReconnect, subscribe, type Subscription } from '../live.js';
import type { View } from '../main.js';
import { progressCell } from './runs.js';

const RUN_DETAIL = `id name status attempt maxAttempts priority queuedAt startedAt finishedAt tags notes
  experiment { id name } dataset { id name imageCount }
  captionStrategy { id name kind style triggerWord template }
  hyperparameters { baseModel rank alpha learningRate steps batchSize gradientAccumulation optimizer lrScheduler saveEvery sampleEvery samplePrompts resolutions quantize dtype }
  progress { step totalSteps secondsPerStep etaSeconds vramUsedMb gpuUtilization }
  lossSummary { points lastStep lastLoss minLoss minLossStep emaLoss }
  agent { id name hostname }
  error { code message logTail }
  gpuSeconds costUsd
  bestCheckpoint { id }
  checkpoints { id step path sizeBytes isFinal prunedAt createdAt meanRating emaLoss ratings { id score notes } }
  samples { id step promptIndex prompt path }`;

interface Checkpoint {
  id: string;
  step: number;
  path: string;
  sizeBytes: number | null;
  isFinal: boolean;
  prunedAt: string | null;
  createdAt: string;
  meanRating: number | null;
  emaLoss: number | null;
  ratings: { id: string; score: number; notes: string | null }[];
}

interface RunDetail {
  id: string;
  name: string;
  status: string;
  attempt: number;
  maxAttempts: number;
  priority: number;
  queuedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  tags: string[];
  notes: string | null;
  experiment: { id: string; name: string };
  dataset: { id: string; name: string; imageCount: number };
  captionStrategy: { id: string; name: string; kind: string; style: string | null; triggerWord: string | null; template: string | null };
  hyperparameters: {
    baseModel: string; rank: number; alpha: number; learningRate: number; steps: number; batchSize: number; gradientAccumulation: number;
    optimizer: string; lrScheduler: string; saveEvery: number; sampleEvery: number; samplePrompts: string[]; resolutions: number[]; quantize: boolean; dtype: string;
  };
  progress: { step: number; totalSteps: number; secondsPerStep: number | null; etaSeconds: number | null; vramUsedMb: number | null; gpuUtilization: number | null } | null;
  lossSummary: { points: number; lastStep: number | null; lastLoss: number | null; minLoss: number | null; minLossStep: number | null; emaLoss: number | null };
  agent: { id: string; name: string; hostname: string | null } | null;
  error: { code: string; message: string; logTail: string | null } | null;
  gpuSeconds: number | null;
  costUsd: number | null;
  bestCheckpoint: { id: string } | null;
  checkpoints: Checkpoint[];
  samples: { id: string; step: number; promptIndex: number; prompt: string | null; path: string }[];
}

interface RunEvent {
  id: string;
  type: string;
  message: string | null;
  at: string;
}

const ACTIVE = ['QUEUED', 'CLAIMED', 'RUNNING'];
const FINISHED_BADLY = ['FAILED', 'CANCELLED'];

export const runView: View = (main, _params, id) => {
  const runId = id!;
  let run: RunDetail | null = null;
  let stopped = false;
  let chart: LossChart | null = null;
  let loss: Subscription<{ id: string; since: number }> | null = null;
  const subs: Subscription<Record<string, unknown>>[] = [];

  const title = h('h1', null, 'Run');
  const errors = h('div');
  const stats = h('dl', { class: 'stats', id: 'run-stats' });
  const hyper = h('dl', { class: 'stats compact' });
  const actionMessage = h('span', { class: 'muted', role: 'status' });
  const cancelButton = h('button', { type: 'button', class: 'danger', hidden: true, onclick: () => void cancel() }, 'Cancel run');
  const retryButton = h('button', { type: 'button', hidden: true, onclick: () => void act('retryRun') }, 'Retry run');
  const chartBox = h('div', { id: 'loss-chart', role: 'figure', 'aria-label': 'Loss curve' });
  const logToggle = h('input', { type: 'checkbox', id: 'log-scale', onchange: () => chart?.setLog(logToggle.checked) });
  const chartNote = h('p', { class: 'muted', id: 'chart-note' });
  const checkpointsBody = h('tbody');
  const checkpointsEmpty = h('p', { class: 'muted' }, 'No checkpoints yet.');
  const samplesBox = h('div');
  const eventsList = h('ol', { class: 'events', id: 'run-events' });
  const config = h('pre', { class: 'config' });
  const errorPanel = h('div');
  const events = new Map<string, RunEvent>();

  replace(
    main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/runs' }, 'Runs'), ' / ', h('span', { id: 'crumb-run' })),
    h('div', { class: 'view-head' }, title, h('div', { class: 'actions' }, cancelButton, retryButton, h('a', { class: 'button secondary', href: `#/compare?runs=${runId}` }, 'Compare'), actionMessage)),
    errors,
    errorPanel,
    h('section', { 'aria-labelledby': 'h-progress' }, h('h2', { id: 'h-progress', class: 'visually-hidden' }, 'Progress'), stats),
    h(
      'section',
      { 'aria-labelledby': 'h-loss' },
      h('div', { class: 'section-head' }, h('h2', { id: 'h-loss' }, 'Loss'), h('label', { class: 'toggle' }, logToggle, ' Log scale')),
      chartBox,
      chartNote,
    ),
    h(
      'section',
      { 'aria-labelledby': 'h-checkpoints' },
      h('h2', { id: 'h-checkpoints' }, 'Checkpoints'),
      checkpointsEmpty,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { id: 'checkpoints' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              h('th', { scope: 'col', class: 'num' }, 'Step'),
              h('th', { scope: 'col', class: 'num' }, 'Size'),
              h('th', { scope: 'col', class: 'num' }, 'EMA loss'),
              h('th', { scope: 'col', class: 'num' }, 'Mean rating'),
              h('th', { scope: 'col' }, 'Rate'),
              h('th', { scope: 'col' }, 'Best'),
            ),
          ),
          checkpointsBody,
        ),
      ),
    ),
    h('section', { 'aria-labelledby': 'h-samples' }, h('h2', { id: 'h-samples' }, 'Samples'), samplesBox),
    h('section', { 'aria-labelledby': 'h-hyper' }, h('h2', { id: 'h-hyper' }, 'Hyperparameters'), hyper),
    h('section', { 'aria-labelledby': 'h-events' }, h('h2', { id: 'h-events' }, 'Events'), eventsList),
    h('section', null, h('details', null, h('summary', null, 'ai-toolkit config'), config)),
  );

  const stat = (label: string, value: unknown, id?: string) => h('div', null, h('dt', null, label), h('dd', id ? { id } : null, value as string));

  function renderStats(r: RunDetail) {
    const p = r.progress;
    const s = r.lossSummary;
    replace(
      stats,
      stat('Status', statusBadge(r.status), 'stat-status'),
      stat('Progress', p ? [progressCell(r), h('div', { class: 'small' }, `step ${p.step} of ${p.totalSteps}`)] : dash, 'stat-progress'),
      stat('ETA', fmtDuration(p?.etaSeconds)),
      stat('s / step', p?.secondsPerStep != null ? p.secondsPerStep.toFixed(2) : dash),
      stat('VRAM', p?.vramUsedMb != null ? `${(p.vramUsedMb / 1024).toFixed(1)} GiB` : dash),
      stat('GPU', p?.gpuUtilization != null ? `${Math.round(p.gpuUtilization)}%` : dash),
      stat('Last loss', fmtLoss(s.lastLoss), 'stat-last'),
      stat('Min loss', s.minLoss != null ? `${fmtLoss(s.minLoss)} @ ${s.minLossStep}` : dash),
      stat('EMA loss', fmtLoss(s.emaLoss)),
      stat('Attempt', `${r.attempt} of ${r.maxAttempts}`),
      stat('Agent', r.agent ? `${r.agent.name}${r.agent.hostname ? ` (${r.agent.hostname})` : ''}` : dash),
      stat('GPU time / cost', `${fmtDuration(r.gpuSeconds)} / ${r.costUsd != null ? `$${r.costUsd.toFixed(2)}` : dash}`),
      stat('Queued', fmtTime(r.queuedAt)),
      stat('Finished', fmtTime(r.finishedAt)),
    );
    const hp = r.hyperparameters;
    replace(
      hyper,
      stat('Experiment', r.experiment.name),
      stat('Dataset', `${r.dataset.name} (${r.dataset.imageCount} images)`),
      stat('Captions', `${r.captionStrategy.name} · ${r.captionStrategy.kind.toLowerCase()}${r.captionStrategy.style ? ` · ${r.captionStrategy.style.toLowerCase()}` : ''}`),
      stat('Base model', hp.baseModel),
      stat('Rank / alpha', `${hp.rank} / ${hp.alpha}`),
      stat('Learning rate', fmtLr(hp.learningRate)),
      stat('Steps', hp.steps),
      stat('Batch × accumulation', `${hp.batchSize} × ${hp.gradientAccumulation}`),
      stat('Optimizer', `${hp.optimizer}, ${hp.lrScheduler}`),
      stat('Resolutions', hp.resolutions.join(', ')),
      stat('Save / sample every', `${hp.saveEvery} / ${hp.sampleEvery}`),
      stat('Precision', `${hp.dtype}${hp.quantize ? ', quantized' : ''}`),
    );
  }

  function renderHeader(r: RunDetail) {
    title.replaceChildren(r.name, ' ', statusBadge(r.status));
    document.getElementById('crumb-run')!.textContent = r.name;
    document.title = `${r.name} · loralab`;
    cancelButton.hidden = !canEdit() || !ACTIVE.includes(r.status);
    retryButton.hidden = !canEdit() || !FINISHED_BADLY.includes(r.status);
    if (r.error) {
      replace(
        errorPanel,
        h('div', { class: 'run-error', role: 'status' }, h('strong', null, r.error.code), ': ', r.error.message, r.error.logTail ? h('pre', null, r.error.logTail) : ''),
      );
    } else errorPanel.replaceChildren();
  }

  // Checkpoint rows are updated in place, so a rating being entered survives live updates.
  const checkpointRows = new Map<string, { tr: HTMLTableRowElement; size: HTMLElement; ema: HTMLElement; mean: HTMLElement; best: HTMLElement }>();

  function checkpointRow(c: Checkpoint) {
    const size = h('td', { class: 'num' });
    const ema = h('td', { class: 'num' });
    const mean = h('td', { class: 'num mean-rating' });
    const best = h('td');
    const rate = h('td', { class: 'rate-cell' });
    if (canEdit()) {
      const name = `score-${c.id}`;
      const note = h('input', { type: 'text', name: 'notes', 'aria-label': `Notes for step ${c.step}`, placeholder: 'notes', class: 'notes' });
      const message = h('span', { class: 'muted', role: 'status' });
      const form = h(
        'form',
        {
          class: 'rate',
          onsubmit: async (e: Event) => {
            e.preventDefault();
            const score = (form.querySelector(`input[name="${name}"]:checked`) as HTMLInputElement | null)?.value;
            if (!score) {
              message.textContent = 'Pick 1–5';
              return;
            }
            try {
              const { rateCheckpoint } = await gql<{ rateCheckpoint: { checkpoint: Pick<Checkpoint, 'id' | 'meanRating' | 'ratings'> } }>(
                `mutation Rate($c: ID!, $s: Int!, $n: String) { rateCheckpoint(checkpointId: $c, score: $s, notes: $n) { id checkpoint { id meanRating ratings { id score notes } } } }`,
                { c: c.id, s: Number(score), n: note.value.trim() || null },
              );
              const cp = run?.checkpoints.find((x) => x.id === c.id);
              if (cp) Object.assign(cp, rateCheckpoint.checkpoint);
              message.textContent = 'Saved';
              note.value = '';
              if (run) renderCheckpoints(run);
            } catch (err) {
              message.textContent = err instanceof Error ? err.message : String(err);
            }
          },
        },
        h(
          'fieldset',
          { class: 'stars' },
          h('legend', { class: 'visually-hidden' }, `Score for step ${c.step}`),
          [1, 2, 3, 4, 5].map((n) =>
            h('label', null, h('input', { type: 'radio', name, value: n, 'aria-label': `${n} of 5` }), h('span', { 'aria-hidden': 'true' }, n)),
          ),
        ),
        note,
        h('button', { type: 'submit', class: 'small' }, 'Rate'),
        message,
      );
      rate.append(form);
    } else rate.append(dash);
    const tr = h('tr', { 'data-checkpoint-id': c.id, 'data-step': c.step }, h('th', { scope: 'row', class: 'num' }, c.step, c.isFinal ? ' (final)' : ''), size, ema, mean, rate, best);
    const row = { tr, size, ema, mean, best };
    checkpointRows.set(c.id, row);
    return row;
  }

  function renderCheckpoints(r: RunDetail) {
    const sorted = [...r.checkpoints].sort((a, b) => a.step - b.step);
    checkpointsEmpty.hidden = sorted.length > 0;
    sorted.forEach((c, i) => {
      const row = checkpointRows.get(c.id) ?? checkpointRow(c);
      row.size.replaceChildren(fmtBytes(c.sizeBytes), c.prunedAt ? h('span', { class: 'muted' }, ' (pruned)') : '');
      row.ema.textContent = fmtLoss(c.emaLoss);
      row.mean.textContent = c.meanRating != null ? `${c.meanRating.toFixed(2)} (${c.ratings.length})` : dash;
      const isBest = r.bestCheckpoint?.id === c.id;
      row.tr.classList.toggle('best', isBest);
      if (isBest) row.best.replaceChildren(h('span', { class: 'best-mark' }, '★ best'));
      else if (canEdit()) row.best.replaceChildren(h('button', { type: 'button', class: 'small secondary', onclick: () => void promote(c) }, 'Promote as best'));
      else row.best.replaceChildren(dash);
      if (checkpointsBody.children[i] !== row.tr) checkpointsBody.insertBefore(row.tr, checkpointsBody.children[i] ?? null);
    });
  }

  function renderSamples(r: RunDetail) {
    if (!r.samples.length) return replace(samplesBox, h('p', { class: 'muted' }, 'No samples yet.'));
    const steps = [...new Set(r.samples.map((s) => s.step))].sort((a, b) => a - b);
    const prompts = [...new Set(r.samples.map((s) => s.promptIndex))].sort((a, b) => a - b);
    const promptText = (i: number) => r.samples.find((s) => s.promptIndex === i && s.prompt)?.prompt ?? r.hyperparameters.samplePrompts[i] ?? `prompt ${i}`;
    replace(
      samplesBox,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { id: 'samples' },
          h('thead', null, h('tr', null, h('th', { scope: 'col', class: 'num' }, 'Step'), prompts.map((i) => h('th', { scope: 'col' }, promptText(i))))),
          h(
            'tbody',
            null,
            steps.map((step) =>
              h(
                'tr',
                null,
                h('th', { scope: 'row', class: 'num' }, step),
                prompts.map((i) => {
                  const s = r.samples.find((x) => x.step === step && x.promptIndex === i);
                  return h('td', null, s ? h('code', { class: 'path', title: s.path }, s.path) : dash);
                }),
              ),
            ),
          ),
        ),
      ),
    );
  }

  function renderEvents() {
    const sorted = [...events.values()].sort((a, b) => Date.parse(b.at) - Date.parse(a.at) || Number(b.id) - Number(a.id));
    replace(
      eventsList,
      sorted.length
        ? sorted.map((e) => h('li', null, h('time', { datetime: e.at }, fmtTime(e.at)), ' ', h('strong', null, e.type), e.message ? ` ${e.message}` : ''))
        : h('li', { class: 'muted' }, 'No events yet.'),
    );
  }

  function apply(r: RunDetail) {
    const attemptChanged = run != null && run.attempt !== r.attempt;
    run = r;
    renderHeader(r);
    renderStats(r);
    renderCheckpoints(r);
    renderSamples(r);
    // A new attempt may resume from a checkpoint and report steps again: redraw from the server.
    if (attemptChanged) void loadCurve();
  }

  const CURVE = `query Curve($id: ID!) { run(id: $id) { lossCurve(maxPoints: 1000) { step toStep min max mean count } } }`;

  async function loadCurve() {
    const { run: r } = await gql<{ run: { lossCurve: (Bucket & { toStep: number })[] } | null }>(CURVE, { id: runId });
    performance.mark('loralab:curve-answered');
    if (r && !stopped) startCurve(r.lossCurve);
  }

  function startCurve(buckets: (Bucket & { toStep: number })[]) {
    chart ??= new LossChart(chartBox);
    chart.setBuckets(buckets);
    chartNote.textContent = buckets.length ? '' : 'No loss reported yet; the curve draws itself as the agent reports.';
    loss?.dispose();
    // Points after the last one drawn: replayed first, then live. A reconnect sends the variables
    // again, and `since` follows what has been drawn, so it fills only the gap.
    const since = buckets.length ? buckets[buckets.length - 1]!.toStep : -1;
    loss = subscribe<{ runLoss: { points: { step: number; loss: number }[] } }, { id: string; since: number }>(
      `subscription RunLoss($id: ID!, $since: Int) { runLoss(runId: $id, sinceStep: $since) { points { step loss } } }`,
      { id: runId, since },
      (d) => {
        if (!chart) return;
        chart.append(d.runLoss.points);
        chartNote.textContent = '';
        if (loss && chart.lastStep != null) loss.variables.since = chart.lastStep;
      },
      (message) => (chartNote.textContent = message),
    );
  }

  const PAGE = `query RunPage($id: ID!) { run(id: $id) { ${RUN_DETAIL} trainerConfig events(first: 100) { id type message at } } }`;
  type PageData = { run: (RunDetail & { trainerConfig: string; events: RunEvent[] }) | null };

  /** After a reconnect: what runUpdated and runEvents may have missed (runLoss replays by itself). */
  async function refresh() {
    try {
      const data = await gql<PageData>(PAGE, { id: runId });
      if (stopped || !data.run) return;
      const { trainerConfig: _config, events: list, ...detail } = data.run;
      for (const e of list) events.set(e.id, e);
      renderEvents();
      apply(detail);
    } catch {
      // the next reconnect or update tries again
    }
  }

  async function load() {
    // The curve (the slow part on a long run) and the rest travel in parallel; each draws on arrival.
    const curve = loadCurve().catch((err) => {
      if (!stopped) chartNote.textContent = err instanceof Error ? err.message : String(err);
    });
    try {
      const [data] = await Promise.all([
        gql<PageData>(PAGE, { id: runId }),
        whenRoleKnown(),
      ]);
      if (stopped) return;
      if (!data.run) return replace(main, h('h1', null, 'Run not found'), h('p', null, h('a', { href: '#/runs' }, 'Back to runs')));
      const { trainerConfig, events: list, ...detail } = data.run;
      config.textContent = trainerConfig;
      for (const e of list) events.set(e.id, e);
      renderEvents();
      apply(detail);
      subs.push(
        subscribe<{ runUpdated: RunDetail }>(`subscription RunLive($id: ID!) { runUpdated(runId: $id) { ${RUN_DETAIL} } }`, { id: runId }, (d) => apply(d.runUpdated)),
        subscribe<{ runEvents: RunEvent }>(`subscription RunEventsLive($id: ID!) { runEvents(runId: $id) { id type message at } }`, { id: runId }, (d) => {
          events.set(d.runEvents.id, d.runEvents);
          renderEvents();
        }),
      );
      await curve;
    } catch (err) {
      if (!stopped) replace(errors, errorBox(err));
    }
  }

  async function act(mutation: 'cancelRun' | 'retryRun') {
    actionMessage.textContent = '';
    try {
      const data = await gql<Record<string, RunDetail>>(`mutation Act($id: ID!) { ${mutation}(id: $id) { ${RUN_DETAIL} } }`, { id: runId });
      apply(data[mutation]!);
      actionMessage.textContent = mutation === 'cancelRun' ? 'Cancel requested' : 'Queued again';
    } catch (err) {
      actionMessage.textContent = err instanceof Error ? err.message : String(err);
    }
  }

  // Cancelling hours of training takes two clicks.
  let confirmTimer: ReturnType<typeof setTimeout> | undefined;
  async function cancel() {
    if (cancelButton.dataset.confirm !== 'yes') {
      cancelButton.dataset.confirm = 'yes';
      cancelButton.textContent = 'Confirm cancel';
      confirmTimer = setTimeout(() => {
        delete cancelButton.dataset.confirm;
        cancelButton.textContent = 'Cancel run';
      }, 5000);
      return;
    }
    clearTimeout(confirmTimer);
    delete cancelButton.dataset.confirm;
    cancelButton.textContent = 'Cancel run';
    await act('cancelRun');
  }

  async function promote(c: Checkpoint) {
    try {
      const { promoteCheckpoint } = await gql<{ promoteCheckpoint: { bestCheckpoint: { id: string } | null } }>(
        `mutation Promote($r: ID!, $c: ID!) { promoteCheckpoint(runId: $r, checkpointId: $c) { id bestCheckpoint { id } } }`,
        { r: runId, c: c.id },
      );
      if (run) {
        run.bestCheckpoint = promoteCheckpoint.bestCheckpoint;
        renderCheckpoints(run);
      }
    } catch (err) {
      actionMessage.textContent = err instanceof Error ? err.message : String(err);
    }
  }

  void load();
  const offReconnect = onReconnect(() => void refresh());
  return () => {
    stopped = true;
    offReconnect();
    clearTimeout(confirmTimer);
    loss?.dispose();
    for (const s of subs) s.dispose();
    chart?.destroy();
    document.title = 'loralab';
  };
};
