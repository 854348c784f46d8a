// Column helpers shared by the schema: every timestamp is timestamptz, read as a JS Date.
import { timestamp } from 'drizzle-orm/pg-core';

export {
  bigint,
  bigserial,
  check,
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  text,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

export const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
