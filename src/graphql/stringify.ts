// A GraphQL answer as JSON text, written in slices with the event loop free between them.
//
// JSON.stringify of the largest answer the cost budget admits (four curves of 10,000 buckets,
// about 1.2 MB) holds the event loop for 10–15 ms in one piece, and every other request waits
// that long. Long lists are written a slice at a time instead, yielding to pending I/O between
// slices once a slice's time is used; everything else, and every small answer, goes through
// JSON.stringify as is. The text is exactly JSON.stringify's.

/** Lists at least this long are written in slices of this many items. */
const SLICE_ITEMS = 1000;
/**
 * Time written before the event loop gets a turn. With 3 ms, a light request's p99 while the
 * heaviest answers were written was 30–38 ms on PostgreSQL, 3.2–4.7× its quiet p99
 * (bench/fairness.ts); with 1 ms, 27–29 ms and 2.2–4.2×, for a heavy request about 4 % slower.
 */
const SLICE_MS = 1;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Apollo's `stringifyResult`: the answer and a newline, as Apollo's own writes it. */
export function stringifyResult(value: unknown): string | Promise<string> {
  return hasLongList(value, 0) ? new SliceWriter().write(value).then((text) => `${text}\n`) : `${JSON.stringify(value)}\n`;
}

/** Whether a long list is anywhere in an answer (a GraphQL answer nests as deep as its query, at most 12). */
function hasLongList(value: unknown, depth: number): boolean {
  if (value === null || typeof value !== 'object' || depth > 32) return false;
  if (Array.isArray(value)) return value.length >= SLICE_ITEMS || value.some((item) => hasLongList(item, depth + 1));
  for (const key in value) if (hasLongList((value as Record<string, unknown>)[key], depth + 1)) return true;
  return false;
}

class SliceWriter {
  private sliceStarted = performance.now();

  async write(value: unknown): Promise<string> {
    if (value === null || typeof value !== 'object' || typeof (value as { toJSON?: unknown }).toJSON === 'function') return JSON.stringify(value);
    if (Array.isArray(value)) return this.writeArray(value);
    const parts: string[] = [];
    for (const [key, item] of Object.entries(value)) {
      // As JSON.stringify: members whose value has no JSON form are left out.
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
      parts.push(`${JSON.stringify(key)}:${await this.write(item)}`);
    }
    return `{${parts.join(',')}}`;
  }

  private async writeArray(items: unknown[]): Promise<string> {
    if (items.length < SLICE_ITEMS) {
      const parts: string[] = [];
      for (const item of items) parts.push(item === undefined || typeof item === 'function' || typeof item === 'symbol' ? 'null' : await this.write(item));
      return `[${parts.join(',')}]`;
    }
    const slices: string[] = [];
    for (let from = 0; from < items.length; from += SLICE_ITEMS) {
      if (performance.now() - this.sliceStarted > SLICE_MS) {
        await nextTurn();
        this.sliceStarted = performance.now();
      }
      // A slice's items as JSON.stringify writes them inside the list, without its brackets.
      slices.push(JSON.stringify(items.slice(from, from + SLICE_ITEMS)).slice(1, -1));
    }
    return `[${slices.join(',')}]`;
  }
}
