/**
 * A record a parent points to, read through a loader: it exists unless it was deleted while the
 * request ran, which is a bug worth an error rather than a null the schema does not allow.
 */
export const requireLoaded = <T>(value: T | null, what: string): T => {
  if (value == null) throw new Error(`${what} vanished while it was being read`);
  return value;
};
