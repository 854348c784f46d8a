// The caption a training image gets under a strategy: what the agent writes as <image>.txt and what
// DatasetImage.caption shows. It is the text ai-toolkit trains on: ai-toolkit replaces "[trigger]"
// (and "[name]") in a caption with the trigger word, or with nothing when there is none, and adds
// the trigger word to a caption that lacks it; done here, its own pass finds nothing left to change.
import type { CaptionStrategyRecord } from './captions.store.js';

type Strategy = Pick<CaptionStrategyRecord, 'kind' | 'triggerWord' | 'template'>;

export const TRIGGER_TAG = '[trigger]';
const CAPTION_TAGS = [TRIGGER_TAG, '[name]'];

export function renderCaption(strategy: Strategy, storedText: string | null | undefined): string | null {
  const trigger = triggerOf(strategy);
  switch (strategy.kind) {
    case 'NONE':
    case 'FILES':
      return null; // no caption files / the dataset's own files, untouched
    case 'TRIGGER_ONLY':
      return trigger;
    case 'STORED': {
      if (storedText == null) return null;
      let text = strategy.template ? strategy.template.replaceAll('{caption}', storedText) : storedText;
      for (const tag of CAPTION_TAGS) text = fillTag(text, tag, trigger);
      if (trigger && !text.includes(trigger)) text = `${trigger}, ${text}`;
      return text.trim();
    }
  }
}

export const triggerOf = (strategy: Pick<CaptionStrategyRecord, 'triggerWord'>) => strategy.triggerWord?.trim() || null;

/**
 * `tag` replaced by the trigger word; without one, taken out with the separator that joined it to
 * the text ("[trigger], portrait photo" → "portrait photo"), not left as a dangling ", portrait photo".
 */
export function fillTag(text: string, tag: string, trigger: string | null): string {
  if (!text.includes(tag)) return text;
  if (trigger) return text.replaceAll(tag, trigger);
  const escaped = tag.replace(/[[\]]/g, '\\$&');
  return text
    .replace(new RegExp(`${escaped}(?:\\s*,\\s*|\\s+)`, 'g'), '')
    .replace(new RegExp(`(?:\\s*,\\s*|\\s+)?${escaped}`, 'g'), '')
    .trim();
}
