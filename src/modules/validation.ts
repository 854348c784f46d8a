// Input rules shared by modules. Each service parses its input with zod and turns the first issue
// into BAD_USER_INPUT naming the field (see fromZodError).
import { z } from 'zod';
import { fromZodError } from '../graphql/errors.js';

export const name = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters');

export const optionalText = z.string().max(10_000, 'must be at most 10,000 characters').nullish();

export const tags = z
  .array(z.string().trim().min(1, 'a tag must not be empty').max(100, 'a tag must be at most 100 characters'))
  .max(50, 'at most 50 tags')
  .nullish()
  .transform((t) => [...new Set(t ?? [])]);

export function parseInput<S extends z.ZodType>(schema: S, value: unknown, root: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw fromZodError(parsed.error, root);
  return parsed.data;
}
