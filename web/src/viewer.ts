// The sample viewer: full-size samples of one to four runs side by side at the same prompt, step and
// strength, moved with the keyboard (← → step, ↑ ↓ prompt, [ ] strength, 1–5 rates, Esc closes) or
// the buttons, with each run's checkpoint at that step to rate, promote and download.
import { canEdit, graphql } from './api.js';
import { h, replace } from './dom.js';
import type { SampleFieldsFragment } from './gql/graphql.js';
import { downloadLink, fmtRating, promote, rate, ratingNotes, usable, type Checkpoint } from './rating.js';

export type Sample = SampleFieldsFragment;

graphql(`
  fragment SampleFields on Sample { id step promptIndex strength prompt url thumbnailUrl }
`);

export interface Pane {
  runId: string;
  name: string;
  samples: Sample[];
  checkpoints: Checkpoint[];
  bestCheckpointId: string | null;
  /** The run's sample prompts as configured (a sample may carry its own rendered text). */
  prompts: string[];
}

export interface Position {
  step: number;
  promptIndex: number;
  strength?: number | null;
}

/** The LoRA strength a sample was made at (1: full weight, the default). */
export const strengthOf = (s: Pick<Sample, 'strength'>) => s.strength;
const sorted = (values: Iterable<number>) => [...new Set(values)].sort((a, b) => a - b);

/** The axes of a set of samples: steps, prompt indexes and strengths present. */
export function axes(samples: Sample[]) {
  return {
    steps: sorted(samples.map((s) => s.step)),
    prompts: sorted(samples.map((s) => s.promptIndex)),
    strengths: sorted(samples.map(strengthOf)),
  };
}

/** Prompts as the sampler got them: "[trigger]" is the strategy's trigger word (or left out). */
export const samplerPrompts = (prompts: string[], triggerWord: string | null | undefined) =>
  prompts.map((p) => p.replace(/\[trigger\]/gi, triggerWord ?? '').replace(/\s+/g, ' ').replace(/^[\s,]+|[\s,]+$/g, '').replace(/\s+,/g, ','));

export function promptText(pane: Pick<Pane, 'samples' | 'prompts'>, index: number) {
  return pane.samples.find((s) => s.promptIndex === index && s.prompt)?.prompt ?? pane.prompts[index] ?? `prompt ${index + 1}`;
}

export const sampleAt = (samples: Sample[], step: number, promptIndex: number, strength: number) =>
  samples.find((s) => s.step === step && s.promptIndex === promptIndex && strengthOf(s) === strength);

export interface ViewerEvents {
  /** A checkpoint was rated or promoted from the viewer. */
  onRated?: (runId: string, checkpoint: Checkpoint) => void;
  onPromoted?: (runId: string, checkpointId: string | null) => void;
}

let open: HTMLDialogElement | null = null;

export function openViewer(panes: Pane[], start: Position, events: ViewerEvents = {}) {
  open?.close();
  const all = panes.flatMap((p) => p.samples);
  const { steps, prompts, strengths } = axes(all);
  if (!steps.length) return;
  let si = Math.max(0, steps.indexOf(start.step));
  let pi = Math.max(0, prompts.indexOf(start.promptIndex));
  let ki = Math.max(0, strengths.indexOf(start.strength ?? (strengths.includes(1) ? 1 : strengths[0]!)));

  const title = h('h2', { id: 'viewer-title' });
  const where = h('p', { class: 'muted small', id: 'viewer-where' });
  const body = h('div', { class: `viewer-panes panes-${panes.length}` });
  const notes = h('input', { type: 'text', id: 'viewer-notes', placeholder: 'notes (saved with the rating)', 'aria-label': 'Notes' });
  const message = h('span', { class: 'muted', role: 'status', id: 'viewer-message' });
  const navButton = (label: string, text: string, fn: () => void) => h('button', { type: 'button', class: 'secondary small', 'aria-label': label, onclick: fn }, text);
  const dialog = h(
    'dialog',
    { class: 'viewer', id: 'viewer', 'aria-labelledby': 'viewer-title' },
    h(
      'div',
      { class: 'viewer-head' },
      h('div', { class: 'grow' }, title, where),
      h(
        'div',
        { class: 'viewer-nav' },
        navButton('Previous step', '←', () => move(-1, 0, 0)),
        navButton('Next step', '→', () => move(1, 0, 0)),
        navButton('Previous prompt', '↑', () => move(0, -1, 0)),
        navButton('Next prompt', '↓', () => move(0, 1, 0)),
        strengths.length > 1 ? [navButton('Lower strength', '[', () => move(0, 0, -1)), navButton('Higher strength', ']', () => move(0, 0, 1))] : null,
        h('button', { type: 'button', class: 'small', onclick: () => dialog.close() }, 'Close'),
      ),
    ),
    body,
    canEdit() ? h('div', { class: 'viewer-notes' }, notes, message) : null,
    h('p', { class: 'muted small viewer-help' }, '← → step · ↑ ↓ prompt', strengths.length > 1 ? ' · [ ] strength' : '', canEdit() && panes.length === 1 ? ' · 1–5 rates' : '', ' · Esc closes'),
  );

  const checkpointAt = (pane: Pane, step: number) => pane.checkpoints.find((c) => c.step === step) ?? null;

  async function doRate(pane: Pane, c: Checkpoint, score: number) {
    try {
      const updated = await rate(c, score, notes.value.trim() || null);
      Object.assign(c, updated);
      notes.value = '';
      message.textContent = `Rated step ${c.step} ${score} of 5`;
      events.onRated?.(pane.runId, c);
      render();
    } catch (err) {
      message.textContent = err instanceof Error ? err.message : String(err);
    }
  }

  async function doPromote(pane: Pane, c: Checkpoint) {
    try {
      pane.bestCheckpointId = await promote(pane.runId, c);
      message.textContent = `Step ${c.step} is ${pane.name}'s best`;
      events.onPromoted?.(pane.runId, pane.bestCheckpointId);
      render();
    } catch (err) {
      message.textContent = err instanceof Error ? err.message : String(err);
    }
  }

  function paneView(pane: Pane, step: number, promptIndex: number, strength: number) {
    const s = sampleAt(pane.samples, step, promptIndex, strength);
    const c = checkpointAt(pane, step);
    const image = s?.url
      ? h('img', { src: s.url, alt: `${pane.name}, step ${step}, ${promptText(pane, promptIndex)}`, 'data-run-id': pane.runId, 'data-sample-id': s.id })
      : h('div', { class: 'no-image muted', 'data-run-id': pane.runId }, s ? 'Uploading…' : 'No sample at this step');
    const controls: (Node | string | null)[] = [];
    if (c) {
      controls.push(h('span', { class: 'mean-rating' }, fmtRating(c)));
      if (usable(c) && canEdit()) {
        controls.push(
          h(
            'span',
            { class: 'score-buttons', role: 'group', 'aria-label': `Rate step ${step} of ${pane.name}` },
            [1, 2, 3, 4, 5].map((n) => h('button', { type: 'button', class: 'small secondary', 'aria-label': `Rate ${n} of 5`, onclick: () => void doRate(pane, c, n) }, n)),
          ),
        );
        controls.push(
          pane.bestCheckpointId === c.id
            ? h('span', { class: 'best-mark' }, '★ best')
            : h('button', { type: 'button', class: 'small secondary', onclick: () => void doPromote(pane, c) }, 'Promote as best'),
        );
      } else if (pane.bestCheckpointId === c.id) controls.push(h('span', { class: 'best-mark' }, '★ best'));
      controls.push(downloadLink(c));
    } else controls.push(h('span', { class: 'muted' }, 'No checkpoint at this step'));
    return h(
      'figure',
      { class: 'viewer-pane' },
      h('div', { class: 'viewer-image' }, image),
      h('figcaption', null, h('strong', null, pane.name), h('div', { class: 'viewer-controls' }, controls), c ? ratingNotes(c) : null),
    );
  }

  function render() {
    const step = steps[si]!;
    const promptIndex = prompts[pi]!;
    const strength = strengths[ki]!;
    title.textContent = promptText(panes[0]!, promptIndex);
    where.textContent = `step ${step} (${si + 1} of ${steps.length}) · prompt ${pi + 1} of ${prompts.length}${strengths.length > 1 ? ` · strength ${strength}` : ''}`;
    Object.assign(dialog.dataset, { step: String(step), prompt: String(promptIndex), strength: String(strength) });
    replace(body, panes.map((p) => paneView(p, step, promptIndex, strength)));
  }

  function move(ds: number, dp: number, dk: number) {
    si = Math.min(steps.length - 1, Math.max(0, si + ds));
    pi = Math.min(prompts.length - 1, Math.max(0, pi + dp));
    ki = Math.min(strengths.length - 1, Math.max(0, ki + dk));
    render();
  }

  dialog.addEventListener('keydown', (e) => {
    const typing = e.target instanceof HTMLInputElement && e.target.type === 'text';
    if (typing && e.key !== 'Escape' && e.key !== 'Enter') return;
    const keys: Record<string, [number, number, number]> = { ArrowLeft: [-1, 0, 0], ArrowRight: [1, 0, 0], ArrowUp: [0, -1, 0], ArrowDown: [0, 1, 0], '[': [0, 0, -1], ']': [0, 0, 1] };
    const delta = keys[e.key];
    if (delta) {
      e.preventDefault();
      move(...delta);
      return;
    }
    if (/^[1-5]$/.test(e.key) && panes.length === 1 && canEdit()) {
      const c = checkpointAt(panes[0]!, steps[si]!);
      if (c && usable(c)) {
        e.preventDefault();
        void doRate(panes[0]!, c, Number(e.key));
      }
    }
  });
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (open === dialog) open = null;
  });
  document.body.append(dialog);
  open = dialog;
  render();
  dialog.showModal();
  return dialog;
}

/** Closes the viewer when a view goes away. */
export function closeViewer() {
  open?.close();
}

