// Python's text formatting, for the few places where the fake trainer must print what ai-toolkit's
// Python would: `json.dumps(config, indent=4)`, `repr(float)`, `f"{x:.3e}"`, `f"{x:3.0f}"`.
// Exact .5 ties (Python rounds them to even, JS up) are only handled where they are common
// (percentages); in timings and losses they differ by one in the last digit at most.

/** `repr(x)` of a Python float: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, expText] = x.toExponential().split('e') as [string, string];
  const exp = Number(expText);
  const digits = mantissa.replace('-', '').replace('.', '');
  const sign = x < 0 ? '-' : '';
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  if (digits.length > exp + 1) return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  return `${sign}${digits.padEnd(exp + 1, '0')}.0`;
}

/** `str()` of a YAML scalar as Python loaded it: ints (parsed as bigint) without a dot, floats with one. */
export function pyStr(value: unknown): string {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return pyFloatRepr(value);
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

/** `f"{x:.{digits}e}"`: the exponent has at least two digits. */
export function pyExp(x: number, digits: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  return x.toExponential(digits).replace(/e([+-])(\d)$/, 'e$10$2');
}

/** `f"{x:{width}.{digits}f}"`. */
export function pyFixed(x: number, digits: number, width = 0): string {
  return x.toFixed(digits).padStart(width);
}

/** `f"{x:{width}.0f}"`, with Python's round-half-to-even. */
export function pyRound0(x: number, width = 0): string {
  const floor = Math.floor(x);
  const frac = x - floor;
  const rounded = frac > 0.5 ? floor + 1 : frac < 0.5 ? floor : floor % 2 === 0 ? floor : floor + 1;
  return String(rounded).padStart(width);
}

/** `json.dumps(value, indent=4)` with Python's defaults (ensure_ascii, ", "/": " separators). */
export function pyJsonDumps(value: unknown, indent = 4, level = 0): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return pyFloatRepr(value);
  if (typeof value === 'string') return pyJsonString(value);
  const pad = ' '.repeat(indent * (level + 1));
  const close = ' '.repeat(indent * level);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => pad + pyJsonDumps(v, indent, level + 1)).join(',\n')}\n${close}]`;
  }
  if (value instanceof Date) return pyJsonString(value.toISOString());
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, v]) => `${pad}${pyJsonString(k)}: ${pyJsonDumps(v, indent, level + 1)}`).join(',\n')}\n${close}}`;
  }
  return pyJsonString(String(value));
}

function pyJsonString(s: string): string {
  // JSON.stringify already escapes quotes, backslashes and control characters as Python does;
  // ensure_ascii also escapes DEL and everything above ASCII.
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
