// Loss charts with uPlot: a run's min–max band, mean and EMA over downsampled buckets, extended
// live point by point; and several runs' means overlaid.
import uPlot from 'uplot';

export interface Bucket {
  step: number;
  min: number;
  max: number;
  mean: number;
  count: number;
}

/** The server's EMA factor (per point); a bucket of n points moves the EMA as n points would. */
const EMA_ALPHA = 0.1;
/** Live points beyond this fold pairwise, so a long live session stays cheap to draw. */
const MAX_DRAWN = 4000;

const COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#4b5563'];
export const color = (i: number) => COLORS[i % COLORS.length]!;

declare global {
  interface Window {
    /** performance.now() when the first chart with data was drawn (read by the benchmark). */
    __firstChartAt?: number;
  }
}

function markDrawn(u: uPlot, el: HTMLElement) {
  const points = u.data[0]?.length ?? 0;
  el.dataset.points = String(points);
  if (points > 0 && window.__firstChartAt == null) window.__firstChartAt = performance.now();
}

/** Follows the container's width; uPlot draws at a fixed size. */
function autoSize(el: HTMLElement, plot: () => uPlot | null, height: () => number) {
  const observer = new ResizeObserver(() => {
    const u = plot();
    const width = Math.floor(el.clientWidth);
    if (u && width > 0 && (u.width !== width || u.height !== height())) u.setSize({ width, height: height() });
  });
  observer.observe(el);
  return () => observer.disconnect();
}

const chartHeight = () => (window.innerWidth < 600 ? 220 : 320);
const positive = (log: boolean) => (v: number | null) => (log && v != null && v <= 0 ? null : v);

export class LossChart {
  private steps: number[] = [];
  private mins: number[] = [];
  private maxs: number[] = [];
  private means: number[] = [];
  private counts: number[] = [];
  private emas: number[] = [];
  private plot: uPlot | null = null;
  private log = false;
  private frame = 0;
  private stopSizing: () => void;
  /** A curve this one continues (a continued run's parent), drawn in grey up to this one's first step. */
  private lead: { step: number; mean: number }[] = [];

  constructor(readonly el: HTMLElement) {
    el.classList.add('chart');
    el.dataset.points = '0';
    this.stopSizing = autoSize(el, () => this.plot, chartHeight);
  }

  setLead(buckets: { step: number; mean: number }[]) {
    this.lead = buckets;
    this.render();
  }

  get lastStep(): number | null {
    return this.steps.length ? this.steps[this.steps.length - 1]! : null;
  }

  setBuckets(buckets: Bucket[]) {
    this.steps = [];
    this.mins = [];
    this.maxs = [];
    this.means = [];
    this.counts = [];
    this.emas = [];
    for (const b of buckets) this.push(b.step, b.min, b.max, b.mean, b.count);
    this.render();
  }

  /** Live points (step order); a step at or before the last drawn one is a replay and skipped. */
  append(points: { step: number; loss: number }[]) {
    let added = false;
    for (const p of points) {
      const last = this.lastStep;
      if (last != null && p.step <= last) continue;
      this.push(p.step, p.loss, p.loss, p.loss, 1);
      added = true;
    }
    if (!added) return;
    if (this.steps.length > MAX_DRAWN) this.fold();
    this.schedule();
  }

  setLog(log: boolean) {
    this.log = log;
    this.render();
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    this.stopSizing();
    this.plot?.destroy();
    this.plot = null;
  }

  private push(step: number, min: number, max: number, mean: number, count: number) {
    const prev = this.emas.length ? this.emas[this.emas.length - 1]! : mean;
    const weight = 1 - Math.pow(1 - EMA_ALPHA, count);
    this.steps.push(step);
    this.mins.push(min);
    this.maxs.push(max);
    this.means.push(mean);
    this.counts.push(count);
    this.emas.push(this.emas.length ? prev + weight * (mean - prev) : mean);
  }

  /** Merges neighbouring buckets pairwise: the band keeps every extreme, the mean is weighted. */
  private fold() {
    const s: number[] = [], lo: number[] = [], hi: number[] = [], me: number[] = [], c: number[] = [], e: number[] = [];
    for (let i = 0; i < this.steps.length; i += 2) {
      const j = Math.min(i + 1, this.steps.length - 1);
      const n = i === j ? this.counts[i]! : this.counts[i]! + this.counts[j]!;
      s.push(this.steps[j]!);
      lo.push(Math.min(this.mins[i]!, this.mins[j]!));
      hi.push(Math.max(this.maxs[i]!, this.maxs[j]!));
      me.push(i === j ? this.means[i]! : (this.means[i]! * this.counts[i]! + this.means[j]! * this.counts[j]!) / n);
      c.push(n);
      e.push(this.emas[j]!);
    }
    [this.steps, this.mins, this.maxs, this.means, this.counts, this.emas] = [s, lo, hi, me, c, e];
  }

  private data(): uPlot.AlignedData {
    const f = positive(this.log);
    const first = this.steps.length ? this.steps[0]! : Infinity;
    const lead = this.lead.filter((b) => b.step < first);
    const own = (values: number[]) => [...lead.map(() => null), ...values.map(f)];
    return [
      [...lead.map((b) => b.step), ...this.steps],
      own(this.mins),
      own(this.maxs),
      own(this.means),
      own(this.emas),
      // The parent's series exists only on a continued run's chart (render() adds it then).
      ...(this.lead.length ? [[...lead.map((b) => f(b.mean)), ...this.steps.map(() => null)]] : []),
    ] as uPlot.AlignedData;
  }

  private schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      if (this.plot) this.plot.setData(this.data());
      else this.render();
    });
  }

  private render() {
    this.plot?.destroy();
    const el = this.el;
    const opts: uPlot.Options = {
      width: Math.max(200, Math.floor(el.clientWidth) || 600),
      height: chartHeight(),
      scales: { x: { time: false }, y: { distr: this.log ? 3 : 1 } },
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      axes: [{ label: 'step' }, { label: 'loss', size: 60 }],
      series: [
        { label: 'step' },
        { label: 'min', stroke: 'rgba(37,99,235,0.25)', width: 1, points: { show: false } },
        { label: 'max', stroke: 'rgba(37,99,235,0.25)', width: 1, points: { show: false } },
        { label: 'mean', stroke: '#2563eb', width: 1.5, points: { show: false } },
        { label: 'EMA', stroke: '#dc2626', width: 2, points: { show: false } },
        ...(this.lead.length ? [{ label: 'parent run', stroke: '#9ca3af', width: 1.5, points: { show: false } }] : []),
      ],
      bands: [{ series: [2, 1], fill: 'rgba(37,99,235,0.12)' }],
      hooks: { draw: [(u) => markDrawn(u, el)] },
    };
    this.plot = new uPlot(opts, this.data(), el);
  }
}

export interface Curve {
  label: string;
  buckets: { step: number; mean: number }[];
}

/** Several runs' mean curves on one x axis (steps joined; a run without a bucket there is a gap spanned). */
export class OverlayChart {
  private plot: uPlot | null = null;
  private stopSizing: () => void;

  constructor(readonly el: HTMLElement) {
    el.classList.add('chart');
    el.dataset.points = '0';
    this.stopSizing = autoSize(el, () => this.plot, chartHeight);
  }

  set(curves: Curve[], log: boolean) {
    this.plot?.destroy();
    this.plot = null;
    if (!curves.length) {
      this.el.dataset.points = '0';
      return;
    }
    const f = positive(log);
    const data = uPlot.join(curves.map((c) => [c.buckets.map((b) => b.step), c.buckets.map((b) => f(b.mean))] as uPlot.AlignedData));
    const el = this.el;
    this.plot = new uPlot(
      {
        width: Math.max(200, Math.floor(el.clientWidth) || 600),
        height: chartHeight(),
        scales: { x: { time: false }, y: { distr: log ? 3 : 1 } },
        axes: [{ label: 'step' }, { label: 'mean loss', size: 60 }],
        series: [{ label: 'step' }, ...curves.map((c, i) => ({ label: c.label, stroke: color(i), width: 1.5, spanGaps: true, points: { show: false } }))],
        hooks: { draw: [(u: uPlot) => markDrawn(u, el)] },
      },
      data,
      el,
    );
  }

  destroy() {
    this.stopSizing();
    this.plot?.destroy();
  }
}
