import { badInput } from './errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** IDs are opaque to clients; a string that cannot be one of ours is bad input, not a SQL error. */
export function parseId(id: string, field: string): string {
  if (!UUID.test(id)) throw badInput(field, `"${id}" is not a valid id`);
  return id.toLowerCase();
}

export const isId = (id: string) => UUID.test(id);
