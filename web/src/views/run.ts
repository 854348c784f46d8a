// #/runs/:id: one run's loss curve (live), progress, checkpoints (rate, promote, download), the sample
// grid (prompt × step thumbnails opening the viewer), events and config.
import { canEdit, gql, graphql, whenRoleKnown } from '../api.js';
import { LossChart } from '../chart.js';
import { dash, errorBox, fmtBytes, fmtDuration, fmtLoss, fmtLr, fmtTime, h, replace, statusBadge } from '../dom.js';
import type { RunDetailFragment, RunEventFieldsFragment } from '../gql/graphql.js';
import { onReconnect, subscribe, type Subscription } from '../live.js';
import type { View } from '../main.js';
import { downloadLink, fmtRating, promote, ratingForm, ratingNotes, usable, type Checkpoint } from '../rating.js';
import { sampleGrid } from '../samples.js';
import { closeViewer, openViewer, samplerPrompts, type Pane } from '../viewer.js';
import { progressCell } from './runs.js';

graphql(`
  fragment RunDetail on Run {
    id name status attempt maxAttempts priority queuedAt startedAt finishedAt tags notes
    experiment { id name } dataset { id name imageCount }
    captionStrategy { id name kind style triggerWord template }
    hyperparameters { baseModel rank alpha learningRate steps batchSize gradientAccumulation optimizer lrScheduler saveEvery sampleEvery samplePrompts resolutions quantize dtype }
    progress { step totalSteps secondsPerStep etaSeconds vramUsedMb gpuUtilization }
    lossSummary { points lastStep lastLoss minLoss minLossStep emaLoss }
    agent { id name hostname }
    error { code message logTail }
    gpuSeconds costUsd storageBytes
    sweep { id }
    resumedSteps
    resumedFrom { id step run { id } }
    parent { id name }
    continuations { id name status }
    bestCheckpoint { id }
    checkpoints { ...CheckpointFields }
    samples { ...SampleFields }
  }
`);

graphql(`fragment RunEventFields on RunEvent { id type message data at }`);

type RunDetail = RunDetailFragment;
type RunEvent = RunEventFieldsFragment;

const CURVE = graphql(`query Curve($id: ID!) { run(id: $id) { id lossCurve(maxPoints: 1000) { step toStep min max mean count } } }`);
const LOSS_LIVE = graphql(`subscription RunLoss($id: ID!, $since: Int) { runLoss(runId: $id, sinceStep: $since) { points { step loss } } }`);
const PAGE = graphql(`query RunPage($id: ID!) { run(id: $id) { ...RunDetail trainerConfig events(first: 100) { ...RunEventFields } } agents { id name } }`);
const RUN_LIVE = graphql(`subscription RunLive($id: ID!) { runUpdated(runId: $id) { ...RunDetail } }`);
const EVENTS_LIVE = graphql(`subscription RunEventsLive($id: ID!) { runEvents(runId: $id) { ...RunEventFields } }`);
const CANCEL = graphql(`mutation CancelRun($id: ID!) { cancelRun(id: $id) { ...RunDetail } }`);
const RETRY = graphql(`mutation RetryRun($id: ID!) { retryRun(id: $id) { ...RunDetail } }`);
const CONTINUE = graphql(`mutation ContinueRun($id: ID!, $steps: Int!) { continueRun(runId: $id, steps: $steps) { id } }`);

const ACTIVE = ['QUEUED', 'CLAIMED', 'RUNNING'];
const FINISHED_BADLY = ['FAILED', 'CANCELLED'];

export const runView: View = (main, _params, id) => {
  const runId = id!;
  let run: RunDetail | null = null;
  let stopped = false;
  let chart: LossChart | null = null;
  let loss: Subscription<{ id: string; since: number }> | null = null;
  const subs: Subscription<Record<string, unknown>>[] = [];
  const agentNames = new Map<string, string>();

  const title = h('h1', null, 'Run');
  const lineage = h('p', { class: 'muted lineage', id: 'run-lineage', hidden: true });
  const errors = h('div');
  const stats = h('dl', { class: 'stats', id: 'run-stats' });
  const hyper = h('dl', { class: 'stats compact' });
  const actionMessage = h('span', { class: 'muted', role: 'status', id: 'action-message' });
  const cancelButton = h('button', { type: 'button', class: 'danger', hidden: true, onclick: () => void cancel() }, 'Cancel run');
  const retryButton = h('button', { type: 'button', hidden: true, onclick: () => void act(RETRY, 'Queued again') }, 'Retry run');
  const bestDownload = h('span', { id: 'best-download' });
  // continueRun from the final (else newest stored) checkpoint, to this many total steps.
  const trainOnSteps = h('input', { type: 'number', id: 'train-on-steps', min: 1, step: 1, 'aria-label': 'Train on to this many steps in all' });
  const trainOnForm = h(
    'form',
    { class: 'train-on', hidden: true, onsubmit: (e: Event) => (e.preventDefault(), void trainOn()) },
    h('label', { class: 'muted', for: 'train-on-steps' }, 'to'),
    trainOnSteps,
    h('span', { class: 'muted' }, 'steps'),
    h('button', { type: 'submit', class: 'secondary' }, 'Train on'),
  );
  const chartBox = h('div', { id: 'loss-chart', role: 'figure', 'aria-label': 'Loss curve' });
  const logToggle = h('input', { type: 'checkbox', id: 'log-scale', onchange: () => chart?.setLog(logToggle.checked) });
  const chartNote = h('p', { class: 'muted', id: 'chart-note' });
  const checkpointsBody = h('tbody');
  const checkpointsEmpty = h('p', { class: 'muted' }, 'No checkpoints yet.');
  const samplesBox = h('div', { id: 'samples-box' });
  const eventsList = h('ol', { class: 'events', id: 'run-events' });
  const config = h('pre', { class: 'config' });
  const errorPanel = h('div');
  const events = new Map<string, RunEvent>();

  replace(
    main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/runs' }, 'Runs'), ' / ', h('span', { id: 'crumb-run' })),
    h('div', { class: 'view-head' }, title, h('div', { class: 'actions' }, bestDownload, trainOnForm, cancelButton, retryButton, h('a', { class: 'button secondary', href: `#/compare?runs=${runId}` }, 'Compare'), actionMessage)),
    lineage,
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
    h('section', { 'aria-labelledby': 'h-samples' }, h('h2', { id: 'h-samples' }, 'Samples'), samplesBox),
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
          { id: 'checkpoints', class: 'checkpoints' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              h('th', { scope: 'col', class: 'num' }, 'Step'),
              h('th', { scope: 'col', class: 'num' }, 'Size'),
              h('th', { scope: 'col', class: 'num' }, 'EMA loss'),
              h('th', { scope: 'col', class: 'num' }, 'Rating'),
              h('th', { scope: 'col' }, 'Rate'),
              h('th', { scope: 'col' }, 'Best'),
              h('th', { scope: 'col' }, 'File'),
            ),
          ),
          checkpointsBody,
        ),
      ),
    ),
    h('section', { 'aria-labelledby': 'h-hyper' }, h('h2', { id: 'h-hyper' }, 'Hyperparameters'), hyper),
    h('section', { 'aria-labelledby': 'h-events' }, h('h2', { id: 'h-events' }, 'Events'), eventsList),
    h('section', null, h('details', null, h('summary', null, 'ai-toolkit config'), config)),
  );

  const stat = (label: string, value: unknown, id?: string) => h('div', null, h('dt', null, label), h('dd', id ? { id } : null, value as string));

  function renderStats(r: RunDetail) {
    const p = r.progress;
    const s = r.lossSummary;
    const step = Math.max(p?.step ?? 0, s.lastStep ?? 0);
    replace(
      stats,
      stat('Status', statusBadge(r.status), 'stat-status'),
      stat('Progress', p || s.lastStep != null || r.status === 'SUCCEEDED' ? [progressCell(r), h('div', { class: 'small' }, `step ${step} of ${p?.totalSteps || r.hyperparameters.steps}`)] : dash, 'stat-progress'),
      stat('ETA', ACTIVE.includes(r.status) ? fmtDuration(p?.etaSeconds) : dash),
      stat('s / step', p?.secondsPerStep != null ? p.secondsPerStep.toFixed(2) : dash),
      stat('VRAM', p?.vramUsedMb != null ? `${(p.vramUsedMb / 1024).toFixed(1)} GiB` : dash),
      stat('GPU', p?.gpuUtilization != null ? `${Math.round(p.gpuUtilization)}%` : dash),
      stat('Last loss', fmtLoss(s.lastLoss), 'stat-last'),
      stat('Min loss', s.minLoss != null ? `${fmtLoss(s.minLoss)} @ ${s.minLossStep}` : dash),
      stat('EMA loss', fmtLoss(s.emaLoss)),
      stat('Attempt', `${r.attempt} of ${r.maxAttempts}`),
      stat('Agent', r.agent ? `${r.agent.name}${r.agent.hostname ? ` (${r.agent.hostname})` : ''}` : dash),
      stat('GPU time / cost', `${fmtDuration(r.gpuSeconds)} / ${r.costUsd != null ? `$${r.costUsd.toFixed(2)}` : dash}`),
      r.resumedFrom || r.resumedSteps > 0 ? stat('Resumed', resumeText(r), 'stat-resume') : null,
      stat('Stored files', fmtBytes(r.storageBytes)),
      stat('Queued', fmtTime(r.queuedAt)),
      stat('Finished', fmtTime(r.finishedAt)),
    );
    const hp = r.hyperparameters;
    replace(
      hyper,
      stat('Experiment', r.experiment.name),
      stat('Dataset', h('a', { href: `#/datasets/${r.dataset.id}` }, `${r.dataset.name} (${r.dataset.imageCount} images)`)),
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
      r.sweep ? stat('Sweep', h('a', { href: `#/compare?sweep=${r.sweep.id}` }, 'compare the sweep')) : null,
    );
    renderLineage(r);
  }

  /** Where the latest attempt started, and what resuming saved: steps no attempt trained again. */
  function resumeText(r: RunDetail) {
    const from = r.resumedFrom ? `from step ${r.resumedFrom.step}${r.resumedFrom.run.id !== r.id ? ' of the parent run' : ''}` : 'from scratch (latest attempt)';
    return r.resumedSteps > 0 ? `${from} · resume saved ${r.resumedSteps} step${r.resumedSteps === 1 ? '' : 's'}` : from;
  }

  /** A continued run links to the run it continues, and a run to those continued from it. */
  function renderLineage(r: RunDetail) {
    const parts: (Node | string)[] = [];
    if (r.parent) {
      const step = r.resumedFrom?.run.id === r.parent.id ? ` from step ${r.resumedFrom.step}` : '';
      parts.push(h('span', null, 'Continues ', h('a', { href: `#/runs/${r.parent.id}` }, r.parent.name), step, ' (its curve in grey before this one)'));
      if (leadFor !== r.parent.id) {
        leadFor = r.parent.id;
        void loadLead(r.parent.id);
      }
    }
    if (r.continuations.length) {
      parts.push(h('span', null, r.parent ? ' · continued as ' : 'Continued as ', ...r.continuations.flatMap((c, i) => [i ? ', ' : '', h('a', { href: `#/runs/${c.id}` }, c.name), ` (${c.status.toLowerCase()})`])));
    }
    lineage.hidden = parts.length === 0;
    replace(lineage, ...parts);
  }

  // The parent's curve, drawn before this run's own on the chart.
  let leadFor: string | null = null;
  let lead: { step: number; mean: number }[] | null = null;
  async function loadLead(parentId: string) {
    try {
      const { run: parent } = await gql(CURVE, { id: parentId });
      if (stopped || !parent) return;
      lead = parent.lossCurve;
      chart?.setLead(lead);
    } catch {
      // the chart shows this run's own curve all the same
    }
  }

  function renderHeader(r: RunDetail) {
    title.replaceChildren(r.name, ' ', statusBadge(r.status));
    document.getElementById('crumb-run')!.textContent = r.name;
    document.title = `${r.name} · loralab`;
    cancelButton.hidden = !canEdit() || !ACTIVE.includes(r.status);
    retryButton.hidden = !canEdit() || !FINISHED_BADLY.includes(r.status);
    const stored = r.checkpoints.filter((c) => c.downloadUrl);
    trainOnForm.hidden = !canEdit() || ACTIVE.includes(r.status) || r.status === 'CANCELLING' || stored.length === 0;
    if (!trainOnSteps.value && stored.length) {
      const from = Math.max(...stored.map((c) => c.step));
      trainOnSteps.min = String(from + 1);
      trainOnSteps.value = String(from + Math.max(1, Math.round(r.hyperparameters.steps / 2)));
    }
    // "Cancel requested" means nothing once the run is no longer running.
    if (!ACTIVE.includes(r.status) && r.status !== 'CANCELLING' && actionMessage.dataset.kind === 'cancel') {
      actionMessage.textContent = '';
      delete actionMessage.dataset.kind;
    }
    const best = r.checkpoints.find((c) => c.id === r.bestCheckpoint?.id);
    replace(bestDownload, best && best.downloadUrl ? downloadLink(best, 'Download best') : null);
    if (r.error) {
      replace(
        errorPanel,
        h('div', { class: 'run-error', role: 'status' }, h('strong', null, r.error.code), ': ', r.error.message, r.error.logTail ? h('pre', null, r.error.logTail) : ''),
      );
    } else errorPanel.replaceChildren();
  }

  // Checkpoint rows are updated in place, so a rating being entered survives live updates.
  const checkpointRows = new Map<string, { tr: HTMLTableRowElement; size: HTMLElement; ema: HTMLElement; mean: HTMLElement; rate: HTMLElement; best: HTMLElement; file: HTMLElement; pruned: boolean }>();

  function updateCheckpoint(c: Checkpoint) {
    const cp = run?.checkpoints.find((x) => x.id === c.id);
    if (cp) Object.assign(cp, c);
    if (run) renderCheckpoints(run);
  }

  function checkpointRow(c: Checkpoint) {
    const cell = (cls?: string) => h('td', cls ? { class: cls } : null);
    const row = { tr: h('tr'), size: cell('num'), ema: cell('num'), mean: cell('num rating-cell'), rate: cell('rate-cell'), best: cell(), file: cell(), pruned: false };
    row.tr = h('tr', { 'data-checkpoint-id': c.id, 'data-step': c.step }, h('th', { scope: 'row', class: 'num' }, c.step, c.isFinal ? ' (final)' : ''), row.size, row.ema, row.mean, row.rate, row.best, row.file);
    checkpointRows.set(c.id, row);
    return row;
  }

  function renderCheckpoints(r: RunDetail) {
    const sorted = [...r.checkpoints].sort((a, b) => a.step - b.step);
    checkpointsEmpty.hidden = sorted.length > 0;
    // The table's head alone under "No checkpoints yet." reads as a broken table.
    (checkpointsBody.closest('.table-wrap') as HTMLElement).hidden = sorted.length === 0;
    sorted.forEach((c, i) => {
      const isNew = !checkpointRows.has(c.id);
      const row = checkpointRows.get(c.id) ?? checkpointRow(c);
      row.size.replaceChildren(fmtBytes(c.sizeBytes));
      row.ema.textContent = fmtLoss(c.emaLoss);
      replace(row.mean, h('span', { class: 'mean-rating' }, fmtRating(c)), ratingNotes(c));
      // The rating form is made once (a score being entered survives live updates) and goes when the checkpoint is pruned.
      if (isNew || row.pruned !== !usable(c)) {
        row.pruned = !usable(c);
        replace(row.rate, canEdit() && usable(c) ? ratingForm(c, updateCheckpoint) : dash);
      }
      const isBest = r.bestCheckpoint?.id === c.id;
      row.tr.classList.toggle('best', isBest);
      if (isBest) row.best.replaceChildren(h('span', { class: 'best-mark' }, '★ best'));
      else if (canEdit() && usable(c)) row.best.replaceChildren(h('button', { type: 'button', class: 'small secondary', onclick: () => void promoteOne(c) }, 'Promote as best'));
      else row.best.replaceChildren(dash);
      replace(row.file, downloadLink(c));
      if (checkpointsBody.children[i] !== row.tr) checkpointsBody.insertBefore(row.tr, checkpointsBody.children[i] ?? null);
    });
  }

  const pane = (r: RunDetail): Pane => ({
    runId: r.id,
    name: r.name,
    samples: r.samples,
    checkpoints: r.checkpoints,
    bestCheckpointId: r.bestCheckpoint?.id ?? null,
    prompts: samplerPrompts(r.hyperparameters.samplePrompts, r.captionStrategy.triggerWord),
  });

  function renderSamples(r: RunDetail) {
    replace(
      samplesBox,
      sampleGrid(pane(r), (at) =>
        openViewer([pane(r)], at, {
          onRated: (_id, c) => updateCheckpoint(c),
          onPromoted: (_id, best) => {
            if (!run) return;
            run.bestCheckpoint = best ? { id: best } : null;
            renderCheckpoints(run);
            renderHeader(run);
          },
        }),
      ),
    );
  }

  /** "Claimed by agent <id>" reads "Claimed by gpu-box-1". */
  function eventText(e: RunEvent) {
    const data = e.data as { agentId?: string } | null;
    const name = data?.agentId ? agentNames.get(data.agentId) : undefined;
    if (!e.message || !name) return e.message;
    return e.message.replace(`agent ${data!.agentId}`, name).replace(data!.agentId!, name);
  }

  function renderEvents() {
    const sorted = [...events.values()].sort((a, b) => Date.parse(b.at) - Date.parse(a.at) || Number(b.id) - Number(a.id));
    replace(
      eventsList,
      sorted.length
        ? sorted.map((e) => h('li', null, h('time', { datetime: e.at }, fmtTime(e.at)), ' ', h('strong', null, e.type), e.message ? ` ${eventText(e)}` : ''))
        : h('li', { class: 'muted' }, 'No events yet.'),
    );
  }

  // Redrawing the grid would reload every thumbnail: only when its samples (or their URLs) change.
  let samplesKey = '';
  function apply(r: RunDetail) {
    const attemptChanged = run != null && run.attempt !== r.attempt;
    run = r;
    if (r.agent) agentNames.set(r.agent.id, r.agent.name);
    renderHeader(r);
    renderStats(r);
    renderCheckpoints(r);
    const key = r.samples.map((s) => `${s.id}:${s.thumbnailUrl ? 1 : 0}`).join(',');
    if (key !== samplesKey) {
      samplesKey = key;
      renderSamples(r);
    }
    // A new attempt may resume from a checkpoint and report steps again: redraw from the server.
    if (attemptChanged) void loadCurve();
  }

  async function loadCurve() {
    const { run: r } = await gql(CURVE, { id: runId });
    performance.mark('loralab:curve-answered');
    if (r && !stopped) startCurve(r.lossCurve);
  }

  function startCurve(buckets: { step: number; toStep: number; min: number; max: number; mean: number; count: number }[]) {
    if (!chart) {
      chart = new LossChart(chartBox);
      if (lead) chart.setLead(lead);
    }
    chart.setBuckets(buckets);
    chartNote.textContent = buckets.length ? '' : 'No loss reported yet; the curve draws itself as the agent reports.';
    loss?.dispose();
    // Points after the last one drawn: replayed first, then live. A reconnect sends the variables
    // again, and `since` follows what has been drawn, so it fills only the gap.
    const since = buckets.length ? buckets[buckets.length - 1]!.toStep : -1;
    loss = subscribe(
      LOSS_LIVE,
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

  function applyPage(data: Awaited<ReturnType<typeof loadPage>>) {
    for (const a of data.agents) agentNames.set(a.id, a.name);
    const { trainerConfig, events: list, ...detail } = data.run!;
    config.textContent = trainerConfig;
    for (const e of list) events.set(e.id, e);
    renderEvents();
    apply(detail);
  }
  const loadPage = () => gql(PAGE, { id: runId });

  /** After a reconnect: what runUpdated and runEvents may have missed (runLoss replays by itself). */
  async function refresh() {
    try {
      const data = await loadPage();
      if (!stopped && data.run) applyPage(data);
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
      const [data] = await Promise.all([loadPage(), whenRoleKnown()]);
      if (stopped) return;
      if (!data.run) return replace(main, h('h1', null, 'Run not found'), h('p', null, h('a', { href: '#/runs' }, 'Back to runs')));
      applyPage(data);
      subs.push(
        subscribe(RUN_LIVE, { id: runId }, (d) => apply(d.runUpdated)),
        subscribe(EVENTS_LIVE, { id: runId }, (d) => {
          events.set(d.runEvents.id, d.runEvents);
          renderEvents();
        }),
      );
      await curve;
    } catch (err) {
      if (!stopped) replace(errors, errorBox(err));
    }
  }

  async function act(document: typeof CANCEL | typeof RETRY, done: string) {
    actionMessage.textContent = '';
    try {
      const r = document === CANCEL ? (await gql(CANCEL, { id: runId })).cancelRun : (await gql(RETRY, { id: runId })).retryRun;
      apply(r);
      actionMessage.textContent = r.status === 'CANCELLED' ? 'Cancelled' : done;
      if (r.status === 'CANCELLING') actionMessage.dataset.kind = 'cancel';
    } catch (err) {
      actionMessage.textContent = err instanceof Error ? err.message : String(err);
    }
  }

  async function trainOn() {
    actionMessage.textContent = '';
    try {
      const { continueRun } = await gql(CONTINUE, { id: runId, steps: Number(trainOnSteps.value) });
      location.hash = `#/runs/${continueRun.id}`;
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
    await act(CANCEL, 'Cancel requested');
  }

  async function promoteOne(c: Checkpoint) {
    try {
      const best = await promote(runId, c);
      if (run) {
        run.bestCheckpoint = best ? { id: best } : null;
        renderCheckpoints(run);
        renderHeader(run);
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
    closeViewer();
    loss?.dispose();
    for (const s of subs) s.dispose();
    chart?.destroy();
    document.title = 'loralab';
  };
};
