import { z } from 'zod';
import { cursorParts, decodeCursor, pageSize, toConnection } from '../../graphql/connection.js';
import { isId } from '../../graphql/ids.js';
import { name, optionalText, parseInput, tags } from '../validation.js';
import * as store from './experiments.store.js';
import type { ServiceDeps } from '../service-deps.js';

const createInput = z.object({
  name,
  goal: z.enum(['STYLE', 'CONCEPT', 'CHARACTER', 'OTHER']),
  description: optionalText,
  tags,
});

export function createExperiment({ db: { orm: db } }: ServiceDeps, input: unknown) {
  const values = parseInput(createInput, input, 'input');
  return store.insertExperiment(db, { ...values, description: values.description ?? null });
}

export async function listExperiments({ db: { orm: db } }: ServiceDeps, args: { first?: number | null; after?: string | null; search?: string | null }) {
  const first = pageSize(args.first);
  const after = decodeCursor(args.after, [cursorParts.time, cursorParts.id]) as [string, string] | null;
  const search = args.search?.trim() || undefined;
  const rows = await store.listExperiments(db, { limit: first + 1, after, search });
  return toConnection(rows, first, (r) => [r.cursorTs, r.id], () => store.countExperiments(db, search), after != null);
}

export async function getExperiment({ db: { orm: db } }: ServiceDeps, id: string) {
  if (!isId(id)) return null;
  const [row] = await store.findExperimentsByIds(db, [id]);
  return row ?? null;
}
