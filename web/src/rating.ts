// Rating a checkpoint (1–5 and a note), promoting it as the run's best, and downloading it: the same
// controls in the checkpoints table, the sample viewer and the checkpoint matrix.
import { gql, graphql } from './api.js';
import { dash, h } from './dom.js';
import type { CheckpointFieldsFragment } from './gql/graphql.js';

export type Checkpoint = CheckpointFieldsFragment;

graphql(`
  fragment CheckpointFields on Checkpoint {
    id step sizeBytes isFinal prunedAt createdAt meanRating emaLoss downloadUrl
    ratings { id score notes createdAt }
  }
`);

const RATE = graphql(`
  mutation Rate($c: ID!, $s: Int!, $n: String) {
    rateCheckpoint(checkpointId: $c, score: $s, notes: $n) { id checkpoint { ...CheckpointFields } }
  }
`);

const PROMOTE = graphql(`
  mutation Promote($r: ID!, $c: ID!) { promoteCheckpoint(runId: $r, checkpointId: $c) { id bestCheckpoint { id } } }
`);

/** Pruned checkpoints have no bytes left: nothing to rate, promote or download. */
export const usable = (c: Pick<Checkpoint, 'prunedAt'>) => !c.prunedAt;

export async function rate(c: Pick<Checkpoint, 'id'>, score: number, notes: string | null): Promise<Checkpoint> {
  const { rateCheckpoint } = await gql(RATE, { c: c.id, s: score, n: notes });
  return rateCheckpoint.checkpoint;
}

export async function promote(runId: string, c: Pick<Checkpoint, 'id'>): Promise<string | null> {
  const { promoteCheckpoint } = await gql(PROMOTE, { r: runId, c: c.id });
  return promoteCheckpoint.bestCheckpoint?.id ?? null;
}

/** The score buttons and a note; calls back with the updated checkpoint. */
export function ratingForm(c: Checkpoint, onRated: (c: Checkpoint) => void, idPrefix = 'score') {
  const name = `${idPrefix}-${c.id}`;
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
          const updated = await rate(c, Number(score), note.value.trim() || null);
          message.textContent = 'Saved';
          note.value = '';
          onRated(updated);
        } catch (err) {
          message.textContent = err instanceof Error ? err.message : String(err);
        }
      },
    },
    h(
      'fieldset',
      { class: 'stars' },
      h('legend', { class: 'visually-hidden' }, `Score for step ${c.step}`),
      [1, 2, 3, 4, 5].map((n) => h('label', null, h('input', { type: 'radio', name, value: n, 'aria-label': `${n} of 5` }), h('span', { 'aria-hidden': 'true' }, n))),
    ),
    note,
    h('button', { type: 'submit', class: 'small' }, 'Rate'),
    message,
  );
  return form;
}

/** "3.50 (2)" */
export const fmtRating = (c: Pick<Checkpoint, 'meanRating' | 'ratings'>) => (c.meanRating != null ? `${c.meanRating.toFixed(2)} (${c.ratings.length})` : dash);

/** The notes people left with their ratings, newest first. */
export function ratingNotes(c: Pick<Checkpoint, 'ratings'>) {
  const notes = c.ratings.filter((r) => r.notes).sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
  return notes.length ? h('ul', { class: 'notes-list' }, notes.map((r) => h('li', null, h('strong', null, `${r.score}★`), ' ', r.notes!))) : null;
}

/** A link that downloads the checkpoint's file (the server names it <run name>-step<N>.safetensors). */
export function downloadLink(c: Pick<Checkpoint, 'step' | 'downloadUrl' | 'prunedAt' | 'isFinal'>, label = 'Download') {
  if (c.prunedAt) return h('span', { class: 'muted' }, 'pruned');
  if (!c.downloadUrl) return h('span', { class: 'muted', title: 'The agent has not uploaded this checkpoint yet' }, 'uploading…');
  return h('a', { class: 'button small secondary download', href: c.downloadUrl, download: '', 'aria-label': `${label} ${c.isFinal ? 'final checkpoint' : `step ${c.step}`}` }, label);
}
