// The caption a training image gets under a strategy: what the agent writes as <image>.txt and what
// DatasetImage.caption shows. Mirrors ai-toolkit, which replaces "[trigger]" in captions and adds the
// trigger word to a caption that lacks it.
import type { CaptionStrategyRecord } from './captions.store.js';

type Strategy = Pick<CaptionStrategyRecord, 'kind' | 'triggerWord' | 'template'>;

export function renderCaption(strategy: Strategy, storedText: string | null | undefined): string | null {
  const trigger = strategy.triggerWord?.trim() || null;
  switch (strategy.kind) {
    case 'NONE':
    case 'FILES':
      return null; // no caption files / the dataset's own files, untouched
    case 'TRIGGER_ONLY':
      return trigger;
    case 'STORED': {
      if (storedText == null) return null;
      let text = strategy.template ? strategy.template.replaceAll('{caption}', storedText) : storedText;
      if (trigger) {
        text = text.replaceAll('[trigger]', trigger);
        if (!text.includes(trigger)) text = `${trigger}, ${text}`;
      }
      return text.trim();
    }
  }
}
