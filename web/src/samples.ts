// A run's sample grid: a row per step, a column per prompt (and per LoRA strength, when the run
// sampled several), each cell a thumbnail that opens the viewer there.
import { dash, h } from './dom.js';
import { axes, promptText, sampleAt, type Pane, type Position } from './viewer.js';

/** Thumbnails beyond this many load lazily (as they scroll into view). */
const EAGER = 240;

declare global {
  interface Window {
    /** performance.now() when every thumbnail of the first sample grid drawn had decoded (read by the benchmark). */
    __samplesDecodedAt?: number;
  }
}

function markDecoded(images: HTMLImageElement[]) {
  if (window.__samplesDecodedAt != null || !images.length) return;
  void Promise.all(images.map((img) => img.decode().catch(() => undefined))).then(() => {
    if (images.every((img) => img.complete && img.naturalWidth > 0)) window.__samplesDecodedAt ??= performance.now();
  });
}

export function sampleGrid(pane: Pane, onOpen: (at: Position) => void) {
  if (!pane.samples.length) return h('p', { class: 'muted' }, 'No samples yet.');
  const { steps, prompts, strengths } = axes(pane.samples);
  const columns = prompts.flatMap((promptIndex) => strengths.map((strength) => ({ promptIndex, strength })));
  const images: HTMLImageElement[] = [];
  let count = 0;
  const table = h(
    'table',
    { id: 'samples', class: 'samples' },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', { scope: 'col', class: 'num' }, 'Step'),
        columns.map(({ promptIndex, strength }) =>
          h('th', { scope: 'col', class: 'prompt', title: promptText(pane, promptIndex) }, promptText(pane, promptIndex), strengths.length > 1 ? h('div', { class: 'muted small' }, `strength ${strength}`) : ''),
        ),
      ),
    ),
    h(
      'tbody',
      null,
      steps.map((step) =>
        h(
          'tr',
          { 'data-step': step },
          h('th', { scope: 'row', class: 'num' }, step),
          columns.map(({ promptIndex, strength }) => {
            const s = sampleAt(pane.samples, step, promptIndex, strength);
            if (!s) return h('td', null, dash);
            const label = `Step ${step}, ${promptText(pane, promptIndex)}${strengths.length > 1 ? `, strength ${strength}` : ''}`;
            let content: Node;
            if (s.thumbnailUrl) {
              const img = h('img', { src: s.thumbnailUrl, alt: '', width: 96, height: 96, decoding: 'async', loading: ++count > EAGER ? 'lazy' : null });
              if (count <= EAGER) images.push(img);
              content = img;
            } else content = h('span', { class: 'muted small' }, 'uploading…');
            return h(
              'td',
              { class: 'thumb-cell' },
              h('button', { type: 'button', class: 'thumb', 'aria-label': label, title: label, 'data-sample-id': s.id, onclick: () => onOpen({ step, promptIndex, strength }) }, content),
            );
          }),
        ),
      ),
    ),
  );
  markDecoded(images);
  return h('div', { class: 'table-wrap', role: 'region', tabindex: 0, 'aria-label': 'Samples by step and prompt' }, table);
}
