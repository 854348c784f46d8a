// A tiny element builder and the formatting every view shares.

type Child = Node | string | number | null | undefined | false | Child[];
type Props = Record<string, unknown>;

/** h('a', { href, class, onclick, 'aria-label': … }, children…): on* become listeners, other keys attributes or properties. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Props | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value == null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value as EventListener);
    else if (name === 'value' || name === 'checked' || name === 'selected' || name === 'disabled') (el as unknown as Props)[name] = value;
    else el.setAttribute(name === 'className' ? 'class' : name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el: Node, children: Child[]) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

export function replace(el: Element, ...children: Child[]) {
  el.replaceChildren();
  append(el, children);
}

export const dash = '—';

export function fmtLoss(v: number | null | undefined) {
  return v == null ? dash : v < 0.001 ? v.toExponential(2) : v.toPrecision(4);
}

/** 0.0004 → "4e-4", 0.00015 → "1.5e-4". */
export function fmtLr(v: number | null | undefined) {
  if (v == null) return dash;
  const [m, e] = v.toExponential().split('e');
  return `${Number(Number(m).toPrecision(3))}e${Number(e)}`;
}

export function fmtDuration(seconds: number | null | undefined) {
  if (seconds == null || !Number.isFinite(seconds)) return dash;
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

export function fmtBytes(v: number | null | undefined) {
  if (v == null) return dash;
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) (v /= 1000), i++;
  return `${v.toFixed(i && v < 10 ? 1 : 0)} ${units[i]}`;
}

export function fmtAgo(iso: string | null | undefined) {
  if (!iso) return dash;
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  return seconds < 5 ? 'just now' : `${fmtDuration(seconds)} ago`;
}

export function fmtTime(iso: string | null | undefined) {
  return iso ? new Date(iso).toLocaleString() : dash;
}

export function statusBadge(status: string) {
  return h('span', { class: `status status-${status.toLowerCase()}` }, status);
}

/** A message region for a view's errors (announced to screen readers). */
export function errorBox(err: unknown) {
  return h('p', { class: 'error', role: 'alert' }, err instanceof Error ? err.message : String(err));
}

export function debounce<A extends unknown[]>(fn: (...args: A) => void, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return (...args: A) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
