// The series the Grafana dashboard (deploy/grafana/loralab.json) queries, without histogram suffixes.
import { readFileSync } from 'node:fs';
import path from 'node:path';

export function dashboardSeries(): string[] {
  const dashboard = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../deploy/grafana/loralab.json'), 'utf8')) as {
    panels: { targets?: { expr: string }[] }[];
  };
  const names = new Set<string>();
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) {
      for (const [name] of target.expr.matchAll(/\bloralab_[a-z0-9_]+/g)) names.add(name.replace(/_(bucket|count|sum)$/, ''));
    }
  }
  return [...names];
}
